"""``make bench``'s cheque book benchmark in a small run: every figure there and consistent.

Timing is not asserted (a bench prints figures beside a ceiling); the run itself checks that
every leaf of the book printed.
"""

from __future__ import annotations

import math

from bench import cheque_print


def test_cheque_print_bench_runs_a_small_book() -> None:
    figures = cheque_print.run(leaves=3)
    assert figures["leaves"] == 3.0
    for name in (
        "book_first_print_to_last_leaf_s",
        "book_first_print_to_last_accepted_s",
        "raw_ipp_transfer_s",
        "book_over_raw",
        "accepted_over_raw",
        "leaf_pdf_make_ms",
    ):
        assert math.isfinite(figures[name]) and figures[name] > 0, name
    assert (
        figures["book_first_print_to_last_accepted_s"] <= figures["book_first_print_to_last_leaf_s"]
    )
    assert math.isclose(
        figures["book_over_raw"],
        figures["book_first_print_to_last_leaf_s"] / figures["raw_ipp_transfer_s"],
    )
