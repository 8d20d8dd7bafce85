"""Phone pairing handles: issuing, rotation, expiry, single use, binding, cancel; and the
service list a paired phone sees. On SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from branchline.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from branchline.server import fleet_registry as fr
from branchline.server.fleet_registry import DeviceRecord
from branchline.server.mobile import pairing as p
from branchline.server.mobile.schema import mobile_pairings
from branchline.server.mobile.services import service_list

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
ALL_DEVICES = ("card_reader", "pin_pad", "tube_station", "printer", "cheque_printer")


def register(engine: Engine, terminal_id: str = "t1", **status: str) -> None:
    devices = [DeviceRecord(name, "sim", status.get(name, "online")) for name in ALL_DEVICES]
    fr.register_terminal(
        engine, terminal_id, "north", "self_service", "1", devices, "r1", T0,
        service_state="in_service",
    )  # fmt: skip


def test_handle_is_opaque_and_bound_to_its_terminal(engine: Engine) -> None:
    # A long id: a two-letter one turns up by chance in about 1 random handle in 180.
    terminal_id = "north-kiosk-0007"
    register(engine, terminal_id)
    offer = p.issue_handle(engine, terminal_id, T0)
    assert offer.terminal_id == terminal_id
    assert terminal_id not in offer.handle and len(offer.handle) >= 24
    assert offer.expires_at - offer.issued_at <= timedelta(minutes=2)
    assert len(offer.short_code) == 8
    assert p.issue_handle(engine, terminal_id, T0).handle != offer.handle


def test_unknown_terminal_gets_no_handle(engine: Engine) -> None:
    with pytest.raises(NotFound) as refused:
        p.issue_handle(engine, "ghost", T0)
    assert refused.value.field == "terminal_id"


def test_rotation_every_30_seconds(engine: Engine) -> None:
    register(engine)
    first = p.rotate(engine, "t1", T0).offer
    assert first is not None
    assert p.rotate(engine, "t1", T0 + timedelta(seconds=29)).offer == first
    second = p.rotate(engine, "t1", T0 + timedelta(seconds=30)).offer
    assert second is not None and second.handle != first.handle
    # The previous handle still opens until it expires (a phone that scanned just before).
    opened = p.open_handle(engine, first.handle, T0 + timedelta(seconds=40))
    assert opened.pairing.terminal_id == "t1"


def test_first_opening_pairs_and_later_openings_are_refused(engine: Engine) -> None:
    register(engine)
    offer = p.issue_handle(engine, "t1", T0)
    opened = p.open_handle(engine, offer.handle, T0 + timedelta(seconds=5))
    assert opened.pairing.state == p.PAIRED
    assert len(opened.pairing.matching_code) == 4 and opened.pairing.matching_code.isdigit()
    assert len(opened.session_token) >= 32
    with pytest.raises(FailedPrecondition) as refused:
        p.open_handle(engine, offer.handle, T0 + timedelta(seconds=6))
    assert refused.value.reason == "handle_used"
    assert "already used" in refused.value.message
    # The token is stored only as its hash.
    with engine.connect() as conn:
        stored = conn.execute(select(mobile_pairings.c.session_hash)).scalars().all()
    assert opened.session_token not in stored
    assert p.session_hash(opened.session_token) in stored


def test_pairing_voids_the_other_handles_and_stops_rotation(engine: Engine) -> None:
    register(engine)
    older = p.issue_handle(engine, "t1", T0)
    newer = p.issue_handle(engine, "t1", T0 + timedelta(seconds=30))
    opened = p.open_handle(engine, newer.handle, T0 + timedelta(seconds=31))
    with pytest.raises(FailedPrecondition) as refused:
        p.open_handle(engine, older.handle, T0 + timedelta(seconds=32))
    assert refused.value.reason == "terminal_busy"
    shown = p.rotate(engine, "t1", T0 + timedelta(seconds=90))
    assert shown.offer is None
    assert shown.pairing is not None
    assert shown.pairing.matching_code == opened.pairing.matching_code


def test_expired_handle_is_refused(engine: Engine) -> None:
    register(engine)
    offer = p.issue_handle(engine, "t1", T0)
    with pytest.raises(FailedPrecondition) as refused:
        p.open_handle(engine, offer.handle, T0 + p.HANDLE_TTL)
    assert refused.value.reason == "handle_expired"


def test_tampered_handle_is_refused(engine: Engine) -> None:
    register(engine)
    offer = p.issue_handle(engine, "t1", T0)
    tampered = offer.handle[:-1] + ("A" if offer.handle[-1] != "A" else "B")
    with pytest.raises(NotFound) as refused:
        p.open_handle(engine, tampered, T0)
    assert refused.value.reason == "unknown_handle"
    with pytest.raises(InvalidArgument) as too_long:
        p.open_handle(engine, "x" * 500, T0)
    assert too_long.value.field == "handle"


def test_other_terminals_handle_is_refused(engine: Engine) -> None:
    register(engine, "t1")
    register(engine, "t2")
    offer = p.issue_handle(engine, "t1", T0)
    with pytest.raises(PermissionDenied) as refused:
        p.open_handle(engine, offer.handle, T0, terminal_id="t2")
    assert refused.value.rule == "handle_bound_to_terminal"
    # Refusing it did not use it up.
    assert p.open_handle(engine, offer.handle, T0, terminal_id="t1").pairing.terminal_id == "t1"


def test_short_code_pairs_once(engine: Engine) -> None:
    register(engine)
    offer = p.issue_handle(engine, "t1", T0)
    typed = p.format_short_code(offer.short_code).lower().replace("-", " - ")
    assert p.open_short_code(engine, typed, T0).pairing.pairing_id == offer.handle
    with pytest.raises(FailedPrecondition) as refused:
        p.open_short_code(engine, offer.short_code, T0)
    assert refused.value.reason == "handle_used"
    with pytest.raises(InvalidArgument) as malformed:
        p.open_short_code(engine, "0O1I", T0)
    assert malformed.value.field == "short_code"


def test_session_is_bound_renewed_and_times_out(engine: Engine) -> None:
    register(engine, "t1")
    register(engine, "t2")
    token = p.open_handle(engine, p.issue_handle(engine, "t1", T0).handle, T0).session_token
    assert p.session(engine, token, T0 + timedelta(minutes=9), terminal_id="t1").live
    with pytest.raises(PermissionDenied) as other:
        p.session(engine, token, T0, terminal_id="t2")
    assert other.value.rule == "session_bound_to_terminal"
    with pytest.raises(PermissionDenied) as unknown:
        p.session(engine, "not-a-token", T0)
    assert unknown.value.rule == "unknown_session"
    # Renewed at minute 9, so alive at 18, gone at 29.
    assert p.session(engine, token, T0 + timedelta(minutes=18)).live
    with pytest.raises(FailedPrecondition) as ended:
        p.session(engine, token, T0 + timedelta(minutes=29))
    assert ended.value.reason == "pairing_ended"
    assert ended.value.metadata["end_reason"] == p.TIMED_OUT


def test_cancel_from_either_side(engine: Engine) -> None:
    register(engine)
    token = p.open_handle(engine, p.issue_handle(engine, "t1", T0).handle, T0).session_token
    ended = p.cancel_by_phone(engine, token, T0 + timedelta(seconds=3))
    assert (ended.state, ended.end_reason) == (p.ENDED, p.CANCELED_BY_PHONE)
    with pytest.raises(FailedPrecondition):
        p.session(engine, token, T0 + timedelta(seconds=4))
    # The terminal offers a fresh handle again at once.
    fresh = p.rotate(engine, "t1", T0 + timedelta(seconds=5))
    assert fresh.offer is not None and fresh.pairing is None

    token = p.open_handle(engine, fresh.offer.handle, T0 + timedelta(seconds=6)).session_token
    by_terminal = p.cancel_by_terminal(engine, "t1", T0 + timedelta(seconds=7))
    assert by_terminal is not None and by_terminal.end_reason == p.CANCELED_BY_TERMINAL
    with pytest.raises(FailedPrecondition) as refused:
        p.session(engine, token, T0 + timedelta(seconds=8))
    assert refused.value.metadata["end_reason"] == p.CANCELED_BY_TERMINAL
    assert p.cancel_by_terminal(engine, "t1", T0 + timedelta(seconds=9)) is None


def test_two_phones_racing_for_one_terminal_pair_once(engine: Engine) -> None:
    register(engine)
    handles = [p.issue_handle(engine, "t1", T0).handle for _ in range(4)]
    results: list[object] = []
    barrier = threading.Barrier(len(handles))

    def open_one(handle: str) -> None:
        barrier.wait()
        try:
            results.append(p.open_handle(engine, handle, T0 + timedelta(seconds=1)))
        except FailedPrecondition as exc:
            results.append(exc.reason)

    threads = [threading.Thread(target=open_one, args=(h,)) for h in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    paired = [r for r in results if isinstance(r, p.Opened)]
    assert len(paired) == 1
    assert sorted(r for r in results if isinstance(r, str)) == ["terminal_busy"] * 3


def test_purge_keeps_what_is_still_asked_about(engine: Engine) -> None:
    register(engine)
    used = p.issue_handle(engine, "t1", T0)
    p.open_handle(engine, used.handle, T0)
    p.cancel_by_terminal(engine, "t1", T0)
    p.issue_handle(engine, "t1", T0)
    assert p.purge(engine, T0 + timedelta(hours=1)) == 0
    assert p.purge(engine, T0 + timedelta(days=2)) == 2
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(mobile_pairings)).scalar_one() == 0


def test_service_list_follows_device_status(engine: Engine) -> None:
    register(engine)
    full = service_list(_terminal(engine))
    assert full.unavailable_reason == ""
    assert set(full.services) == {
        "tube_deposit",
        "tube_withdrawal",
        "statement_view",
        "statement_print",
        "cheque_book",
        "video_teller",
    }
    assert full.auth_methods == ("terminal",)

    fr.update_device(engine, "t1", DeviceRecord("tube_station", "sim", "user_error", "jam"), T0)
    fr.update_device(engine, "t1", DeviceRecord("printer", "sim", "user_error", "paper"), T0)
    fr.update_device(engine, "t1", DeviceRecord("card_reader", "sim", "hardware_error"), T0)
    fr.update_device(engine, "t1", DeviceRecord("cheque_printer", "sim", "offline"), T0)
    degraded = service_list(_terminal(engine))
    assert degraded.services == ("statement_view", "video_teller")
    assert degraded.auth_methods == ()


def test_service_list_empty_when_terminal_cannot_serve(engine: Engine) -> None:
    register(engine)
    fr.record_heartbeat(engine, "t1", "maintenance", T0)
    assert service_list(_terminal(engine)).unavailable_reason == "maintenance"
    fr.mark_disconnected(engine, "t1", "r1", T0)
    gone = service_list(_terminal(engine))
    assert (gone.unavailable_reason, gone.services) == ("offline", ())


def _terminal(engine: Engine) -> fr.TerminalRecord:
    record = fr.get_terminal(engine, "t1")
    assert record is not None
    return record


def test_pusher_round_shows_what_each_terminal_alone_would(engine: Engine) -> None:
    """The pusher's round (two queries for every terminal) against ``current_update`` (one
    terminal at a time), in every state; the round leaves the writes (a rotation due, a
    session run out) to ``current_update`` itself."""
    from branchline.server.mobile import link as ml
    from branchline.server.mobile import pairing_round

    now = T0 + timedelta(hours=1)
    for t in ("fresh", "stale", "none", "paired", "expired", "ended", "out"):
        register(engine, t)
    fresh = p.issue_handle(engine, "fresh", now - timedelta(seconds=10))
    p.issue_handle(engine, "stale", now - timedelta(seconds=40))
    p.open_handle(engine, p.issue_handle(engine, "paired", now).handle, now)
    old = now - timedelta(minutes=30)
    p.open_handle(engine, p.issue_handle(engine, "expired", old).handle, old)
    p.open_handle(engine, p.issue_handle(engine, "ended", now).handle, now)
    p.cancel_by_terminal(engine, "ended", now - timedelta(seconds=3))
    p.issue_handle(engine, "ended", now - timedelta(seconds=2))
    p.issue_handle(engine, "out", now - timedelta(seconds=5))
    fr.record_heartbeat(engine, "out", "out_of_service", now)
    ids = ["fresh", "stale", "none", "paired", "expired", "ended", "out", "ghost"]
    fell_back: list[str] = []

    def alone(terminal_id: str) -> object:
        return ml.current_update(engine, terminal_id, "https://g", now)

    def fallback(terminal_id: str) -> object:
        fell_back.append(terminal_id)
        return alone(terminal_id)

    def build(serving: bool, shown: p.TerminalPairing, last: str) -> object:
        return ml.build_update("https://g", serving, shown, last)

    got = dict(pairing_round.updates(engine, ids, now, ml.END_NOTICE, build, fallback))  # type: ignore[arg-type]
    assert sorted(fell_back) == ["expired", "none", "stale"]
    # Asked again at the same moment, one at a time: the same answers (the writes are done).
    assert got == {t: alone(t) for t in ids}
    states = {t: u.state for t, u in got.items()}  # type: ignore[attr-defined]
    assert states == {
        "fresh": ml.OFFERING, "stale": ml.OFFERING, "none": ml.OFFERING, "paired": ml.PAIRED,
        "expired": ml.OFFERING, "ended": ml.OFFERING, "out": ml.IDLE, "ghost": ml.IDLE,
    }  # fmt: skip
    assert got["fresh"].handle == fresh.handle  # type: ignore[attr-defined]
    assert got["expired"].last_end_reason == p.TIMED_OUT  # type: ignore[attr-defined]
    assert got["ended"].last_end_reason == p.CANCELED_BY_TERMINAL  # type: ignore[attr-defined]
