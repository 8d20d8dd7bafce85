"""``make bench``'s allocation-to-last-leaf benchmark in a small run: every figure there and
consistent (timing is not asserted; the run checks the order was allocated and each leaf
printed)."""

from __future__ import annotations

import math

from bench import cheque_allocate


def test_cheque_allocate_bench_runs_a_small_book() -> None:
    figures = cheque_allocate.run(leaves=3)
    assert figures["leaves"] == 3.0
    for name in ("allocation_ms", "allocation_to_last_leaf_s", "raw_ipp_transfer_s"):
        assert math.isfinite(figures[name]) and figures[name] > 0, name
    assert figures["allocation_ms"] / 1000 < figures["allocation_to_last_leaf_s"]
    assert math.isclose(
        figures["allocation_to_last_leaf_over_raw"],
        figures["allocation_to_last_leaf_s"] / figures["raw_ipp_transfer_s"],
    )
