"""Connections: TCP and UDP flows tracked in packet time.

Two stages, so that parallel decoding keeps exact results: `extract` summarizes one
decoded batch per flow, vectorized (in whichever process decoded it); `table` merges the
summaries in input order into the connection table, the only sequential state, and
emits a `Connection` record when a flow ends.
"""
