"""TCP stream reassembly: segments in (any order, any overlap), in-order bytes out."""
