"""``make bench``'s face match in a short run: every figure is there and every live capture
of the enrolled person was decided a match (the bench raises otherwise). Timing is printed
by the bench, never asserted."""

from __future__ import annotations

import math

from bench import face_match


def test_face_match_bench_runs_and_reports_every_figure() -> None:
    figures = face_match.run(rounds=4)
    assert figures["rounds"] == 4.0
    for key in (
        "capture_to_decision_p50_ms",
        "capture_to_decision_p99_ms",
        "capture_only_p50_ms",
        "decision_only_p50_ms",
        "decision_cpu_p99_ms",
        "p99_ratio_to_goal",
        "capture_wire_ms_at_921600",
    ):
        assert math.isfinite(figures[key]) and figures[key] > 0, key
    assert figures["capture_to_decision_p99_ms"] >= figures["capture_to_decision_p50_ms"]
    assert figures["capture_reply_bytes"] > 10_000  # a real JPEG went over the wire
