"""``make bench``'s tube ingest in its smoke mode: every figure is there and the books balance.

Timing is not asserted (a bench prints figures beside a ceiling, never pass/fail); the
correctness figures are: every withdrawal the terminals saw posted is exactly one ledger
posting, with its hold captured and nothing left half done.
"""

from __future__ import annotations

import math

import pytest

from bench import tube_ingest

FIGURES = (
    "tube_txn_per_s",
    "tube_msgs_per_s",
    "tube_ack_p50_ms",
    "tube_ack_p99_ms",
    "tube_confirm_p50_ms",
    "tube_confirm_p99_ms",
    "tube_desk_send_p50_ms",
    "tube_solo_ack_p50_ms",
    "bare_msgs_per_s",
    "bare_ack_p50_ms",
    "bare_ack_p99_ms",
    "msgs_over_bare",
    "ack_p50_over_bare",
    "ack_p99_over_bare",
    "completed_total",
    "tube_half_offered_msgs_per_s",
    "tube_half_msgs_per_s",
    "tube_half_ack_p99_ms",
    "tube_sql_per_txn",
    "tube_sql_per_txn_solo",
    "tube_server_cpu_ms_per_msg",
    "cpu_per_msg_over_bare",
)
ZERO = (
    "postings_minus_completed",
    "posted_minus_completed",
    "active_holds_of_posted",
    "unfinished_txns",
    "ledger_audit_problems",
    "balance_error_cny",
    "server_log_errors",
    "heartbeat_timeouts",
    "tube_half_failed_steps",
)


@pytest.mark.timeout(120)
def test_smoke_run_reports_every_figure_and_one_posting_per_withdrawal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(tube_ingest.SMOKE_VARIABLE, "1")
    figures = tube_ingest.run()
    missing = [name for name in (*FIGURES, *ZERO) if name not in figures]
    assert not missing, f"figures missing: {missing}"
    assert all(math.isfinite(figures[name]) for name in FIGURES), figures
    assert figures["terminals"] == tube_ingest.SMOKE.terminals
    assert figures["completed_total"] > 0
    assert figures["postings_minus_completed"] == 0
    assert {name: figures[name] for name in ZERO} == dict.fromkeys(ZERO, 0.0)
