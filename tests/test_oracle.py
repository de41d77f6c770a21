"""Decoded fields against the tshark oracle.

The comparison itself lives in tests/oracle_compare.py (run it as a script for per-file
and per-field agreement). Every disagreement with tshark must be listed, with its reason,
in tests/data/oracle_disagreements.tsv: a new disagreement and a fixed one both fail.
Regenerate the list with NETCAP_UPDATE_ORACLE=1 (reasons already given are kept; new
entries are marked UNEXPLAINED, which fails until a reason is written in).
"""

from __future__ import annotations

import json

import pytest

from netcap.decode.batch import Decoded
from oracle_compare import (
    DISAGREEMENTS,
    FIELDS,
    ORACLE,
    UNEXPLAINED,
    Result,
    compare_all,
    corpus_files,
    decoded_batches,
    load_reasons,
    update_requested,
    write_reasons,
)

pytestmark = pytest.mark.corpus  # every test here reads the public corpus (tests/corpus.py)

# 0.999 for the link-to-transport fields alone; the application fields add listed diffs
# (DNS over TCP and fragmented datagrams wait for reassembly, issue 4).
MIN_AGREEMENT = 0.998
Opened = dict[str, tuple[str, list[Decoded]] | None]


@pytest.fixture(scope="module")
def opened() -> Opened:
    return {name: decoded_batches(name) for name in corpus_files()}


@pytest.fixture(scope="module")
def result(opened: Opened) -> Result:
    res = compare_all(opened)
    if update_requested():
        write_reasons(res.diffs, load_reasons())
    return res


def test_agreement_with_tshark(result: Result) -> None:
    assert result.compared > 50_000  # the corpus holds ~55k comparable fields
    assert result.agreement >= MIN_AGREEMENT, (
        f"{result.agreed}/{result.compared} = {100 * result.agreement:.3f}% agree"
    )


def test_disagreements_are_exactly_the_listed_ones(result: Result) -> None:
    listed = load_reasons()
    actual = set(result.diffs)
    new = sorted(actual - set(listed))
    fixed = sorted(set(listed) - actual)
    hint = f"(inspect, then NETCAP_UPDATE_ORACLE=1 rewrites {DISAGREEMENTS.name})"
    assert not new, f"{len(new)} disagreements not listed {hint}: {new[:10]}"
    assert not fixed, f"{len(fixed)} listed disagreements no longer occur {hint}: {fixed[:10]}"


def test_every_listed_disagreement_has_a_reason(result: Result) -> None:
    listed = load_reasons()  # after `result`, which rewrites the list on request
    bad = [d for d, reason in listed.items() if not reason.strip() or reason == UNEXPLAINED]
    assert not bad, f"{len(bad)} disagreements without a reason: {bad[:10]}"


def test_every_field_and_file_is_compared(result: Result) -> None:
    compared, _ = result.by_field()
    assert set(FIELDS) <= set(compared)  # every mapped field met at least once
    meta = json.loads((ORACLE / "_meta.json").read_text())
    assert set(FIELDS) <= set(meta["fields"])
    for f in result.files:  # every file tshark read frames from took part
        if (ORACLE / f"{f.name}.jsonl").stat().st_size:
            assert f.compared["frame.len"] > 0, f.name
