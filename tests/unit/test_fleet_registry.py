"""Fleet registry behaviour, run against SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import Engine

from branchline.server import fleet_history
from branchline.server import fleet_registry as fr
from branchline.server.auth import PRINCIPAL_METADATA_KEY, Authorizer
from branchline.server.fleet.servicer import FleetServicer
from branchline.server.fleet_registry import DeviceRecord
from branchline.server.storage import write_transaction
from branchline.v1 import common_pb2, fleet_pb2, fleet_pb2_grpc

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def printer(status: str = "DEVICE_STATUS_ONLINE", detail: str = "", **facts: str) -> DeviceRecord:
    return DeviceRecord(
        name="printer",
        driver="escpos_printer",
        status=status,
        detail=detail,
        facts=dict(facts),
        capabilities={"cut": "true"},
    )


CARD_READER = DeviceRecord("card_reader", "sim_card_reader", "DEVICE_STATUS_ONLINE")


def register(
    engine: Engine,
    terminal_id: str = "t1",
    branch: str = "north",
    replica: str = "r1",
    now: datetime = T0,
    devices: list[DeviceRecord] | None = None,
) -> fr.TerminalRecord:
    return fr.register_terminal(
        engine,
        terminal_id,
        branch,
        "TERMINAL_KIND_SELF_SERVICE",
        "0.1.0",
        [printer(), CARD_READER] if devices is None else devices,
        replica,
        now,
        service_state="SERVICE_STATE_IN_SERVICE",
    )


def kinds(engine: Engine, after: int = 0) -> list[tuple[str, str | None, str]]:
    return [(e.terminal_id, e.device, e.kind) for e in fr.events_after(engine, after)]


def test_register_stores_terminal_devices_and_an_event(engine: Engine) -> None:
    record = register(engine)
    assert record == fr.get_terminal(engine, "t1")
    assert record.online and record.connected_replica == "r1"
    assert record.service_state == "SERVICE_STATE_IN_SERVICE"
    assert record.registered_at == record.last_seen_at == T0
    assert record.registered_at.tzinfo == UTC
    assert [d.name for d in record.devices] == ["card_reader", "printer"]
    stored_printer = record.devices[1]
    assert stored_printer.capabilities == {"cut": "true"}
    assert stored_printer.updated_at == T0
    events = fr.events_after(engine, 0)
    assert [(e.terminal_id, e.branch, e.device, e.kind) for e in events] == [
        ("t1", "north", None, fr.EVENT_REGISTERED)
    ]
    assert events[0].at == T0 and "r1" in events[0].detail
    assert fr.latest_event_id(engine) == events[0].event_id


def test_reregistering_replaces_the_device_set(engine: Engine) -> None:
    register(engine)
    later = T0 + timedelta(minutes=5)
    record = register(engine, replica="r2", now=later, devices=[printer("DEVICE_STATUS_OFFLINE")])
    assert record.connected_replica == "r2"
    assert record.registered_at == later
    assert [(d.name, d.status) for d in record.devices] == [("printer", "DEVICE_STATUS_OFFLINE")]
    assert len(fr.list_terminals(engine)) == 1


def test_unknown_terminal(engine: Engine) -> None:
    assert fr.get_terminal(engine, "nope") is None
    assert fr.record_heartbeat(engine, "nope", "SERVICE_STATE_IN_SERVICE", T0) is False
    assert fr.mark_disconnected(engine, "nope", "r1", T0) is False
    with pytest.raises(fr.UnknownTerminal):
        fr.update_device(engine, "nope", printer(), T0)
    assert fr.events_after(engine, 0) == []
    assert fr.latest_event_id(engine) == 0


def test_update_device_writes_an_event_only_on_status_or_detail_change(engine: Engine) -> None:
    register(engine)
    start = fr.latest_event_id(engine)
    t1 = T0 + timedelta(seconds=1)
    assert fr.update_device(engine, "t1", printer(), t1) is False  # same as registered
    assert fr.update_device(engine, "t1", printer(paper="low"), t1) is False  # facts only
    stored = fr.get_terminal(engine, "t1")
    assert stored is not None and stored.devices[1].facts == {"paper": "low"}
    assert stored.devices[1].updated_at == t1
    assert fr.events_after(engine, start) == []

    t2 = T0 + timedelta(seconds=2)
    assert fr.update_device(engine, "t1", printer("DEVICE_STATUS_USER_ERROR", "paper out"), t2)
    assert fr.update_device(engine, "t1", printer("DEVICE_STATUS_USER_ERROR", "cover open"), t2)
    assert not fr.update_device(engine, "t1", printer("DEVICE_STATUS_USER_ERROR", "cover open"), t2)
    new_device = DeviceRecord("pin_pad", "sim_pin_pad", "DEVICE_STATUS_ONLINE")
    assert fr.update_device(engine, "t1", new_device, t2)
    events = fr.events_after(engine, start)
    assert [(e.device, e.kind, e.detail) for e in events] == [
        ("printer", fr.EVENT_DEVICE_STATUS, "DEVICE_STATUS_USER_ERROR: paper out"),
        ("printer", fr.EVENT_DEVICE_STATUS, "DEVICE_STATUS_USER_ERROR: cover open"),
        ("pin_pad", fr.EVENT_DEVICE_STATUS, "DEVICE_STATUS_ONLINE"),
    ]
    assert all(e.at == t2 for e in events)


def test_registering_without_a_service_state_keeps_the_stored_one(engine: Engine) -> None:
    new = fr.register_terminal(engine, "t9", "north", "kiosk", "0.1.0", [], "r1", T0)
    assert new.service_state == fr.UNKNOWN_SERVICE_STATE
    start = fr.latest_event_id(engine)
    # The first reported state is not a change.
    assert fr.record_heartbeat(engine, "t9", "in_service", T0)
    assert fr.events_after(engine, start) == []
    again = fr.register_terminal(engine, "t9", "north", "kiosk", "0.1.1", [], "r2", T0)
    assert again.service_state == "in_service" and again.agent_version == "0.1.1"


def test_heartbeat_updates_last_seen_and_reports_service_state_changes(engine: Engine) -> None:
    register(engine)
    start = fr.latest_event_id(engine)
    t1 = T0 + timedelta(seconds=10)
    assert fr.record_heartbeat(engine, "t1", "SERVICE_STATE_IN_SERVICE", t1)
    assert fr.events_after(engine, start) == []
    t2 = T0 + timedelta(seconds=20)
    assert fr.record_heartbeat(engine, "t1", "SERVICE_STATE_MAINTENANCE", t2)
    record = fr.get_terminal(engine, "t1")
    assert record is not None
    assert record.last_seen_at == t2 and record.service_state == "SERVICE_STATE_MAINTENANCE"
    [event] = fr.events_after(engine, start)
    assert event.kind == fr.EVENT_SERVICE_STATE
    assert event.detail == "SERVICE_STATE_IN_SERVICE -> SERVICE_STATE_MAINTENANCE"


def test_silent_terminals_go_offline_once(engine: Engine) -> None:
    register(engine, "quiet", now=T0)
    register(engine, "chatty", now=T0)
    register(engine, "gone", now=T0)
    fr.mark_disconnected(engine, "gone", "r1", T0)
    fr.record_heartbeat(engine, "chatty", "SERVICE_STATE_IN_SERVICE", T0 + timedelta(seconds=25))
    start = fr.latest_event_id(engine)
    now = T0 + timedelta(seconds=30)

    assert fr.mark_stale_offline(engine, 29.0, now) == ["quiet"]
    assert fr.mark_stale_offline(engine, 29.0, now) == []  # already offline: no second event
    quiet = fr.get_terminal(engine, "quiet")
    chatty = fr.get_terminal(engine, "chatty")
    assert quiet is not None and not quiet.online
    assert chatty is not None and chatty.online
    [event] = fr.events_after(engine, start)
    assert (event.terminal_id, event.kind, event.at) == ("quiet", fr.EVENT_HEARTBEAT_TIMEOUT, now)
    # Exactly at the timeout is not yet past it.
    assert fr.mark_stale_offline(engine, 5.0, T0 + timedelta(seconds=30)) == []
    assert fr.mark_stale_offline(engine, 4.0, T0 + timedelta(seconds=30)) == ["chatty"]


def test_a_replica_leaves_another_replicas_terminals_to_it_for_a_while(engine: Engine) -> None:
    """r1's sweep marks its own silent terminal offline after the timeout; r2's terminal,
    as late in the database (r2 writes liveness late under load), only after
    FOREIGN_GRACE timeouts — by then r2 is taken for dead."""
    register(engine, "mine", replica="r1", now=T0)
    register(engine, "theirs", replica="r2", now=T0)
    after_one = T0 + timedelta(seconds=11)
    assert fr.mark_stale_offline(engine, 10, after_one, replica="r1") == ["mine"]
    theirs = fr.get_terminal(engine, "theirs")
    assert theirs is not None and theirs.online
    # r2's own sweep (or a sweep that does not say which replica it is) judges it at once.
    assert fr.mark_stale_offline(engine, 10, after_one, replica="r2") == ["theirs"]
    register(engine, "theirs", replica="r2", now=T0)
    past_grace = T0 + timedelta(seconds=10 * fr.FOREIGN_GRACE + 1)
    assert fr.mark_stale_offline(engine, 10, past_grace - timedelta(seconds=2), replica="r1") == []
    assert fr.mark_stale_offline(engine, 10, past_grace, replica="r1") == ["theirs"]


def test_a_late_heartbeat_brings_a_timed_out_terminal_back(engine: Engine) -> None:
    register(engine)
    fr.mark_stale_offline(engine, 10, T0 + timedelta(seconds=60))
    start = fr.latest_event_id(engine)
    assert fr.record_heartbeat(engine, "t1", "SERVICE_STATE_IN_SERVICE", T0 + timedelta(seconds=61))
    record = fr.get_terminal(engine, "t1")
    assert record is not None and record.online
    assert [e.kind for e in fr.events_after(engine, start)] == [fr.EVENT_ONLINE]


def test_only_the_replica_holding_the_stream_can_disconnect_it(engine: Engine) -> None:
    register(engine, replica="r1")
    register(engine, replica="r2", now=T0 + timedelta(seconds=1))  # reconnected elsewhere
    start = fr.latest_event_id(engine)
    # r1 notices its old stream ended only now: must not take the terminal offline.
    assert fr.mark_disconnected(engine, "t1", "r1", T0 + timedelta(seconds=2)) is False
    record = fr.get_terminal(engine, "t1")
    assert record is not None and record.online and record.connected_replica == "r2"
    assert fr.events_after(engine, start) == []

    assert fr.mark_disconnected(engine, "t1", "r2", T0 + timedelta(seconds=3)) is True
    record = fr.get_terminal(engine, "t1")
    assert record is not None and not record.online and record.connected_replica is None
    assert kinds(engine, start) == [("t1", None, fr.EVENT_DISCONNECTED)]
    # A heartbeat straggling in after a clean disconnect does not resurrect it.
    fr.record_heartbeat(engine, "t1", "SERVICE_STATE_IN_SERVICE", T0 + timedelta(seconds=4))
    record = fr.get_terminal(engine, "t1")
    assert record is not None and not record.online


def test_list_terminals_by_branch(engine: Engine) -> None:
    register(engine, "b2", branch="south")
    register(engine, "a1", branch="north", devices=[CARD_READER])
    register(engine, "c3", branch="north", devices=[])
    assert [t.terminal_id for t in fr.list_terminals(engine)] == ["a1", "b2", "c3"]
    assert [t.terminal_id for t in fr.list_terminals(engine, "")] == ["a1", "b2", "c3"]
    north = fr.list_terminals(engine, "north")
    assert [(t.terminal_id, len(t.devices)) for t in north] == [("a1", 1), ("c3", 0)]
    assert fr.list_terminals(engine, "west") == []
    assert fr.list_terminals(engine) == [fr.get_terminal(engine, i) for i in ("a1", "b2", "c3")]


def test_events_after_pages_and_filters_by_branch(engine: Engine) -> None:
    for i in range(5):
        register(engine, f"n{i}", branch="north", now=T0 + timedelta(seconds=i))
        register(engine, f"s{i}", branch="south", now=T0 + timedelta(seconds=i))
    everything = fr.events_after(engine, 0)
    ids = [e.event_id for e in everything]
    assert len(ids) == 10 and ids == sorted(ids) and len(set(ids)) == 10
    assert fr.latest_event_id(engine) == ids[-1]

    paged: list[fr.FleetEvent] = []
    cursor = 0
    while page := fr.events_after(engine, cursor, limit=3):
        assert len(page) <= 3
        paged.extend(page)
        cursor = page[-1].event_id
    assert paged == everything

    north = fr.events_after(engine, 0, "north")
    assert [e.terminal_id for e in north] == [f"n{i}" for i in range(5)]
    assert [
        e.terminal_id for e in fr.events_after(engine, north[2].event_id, "north", limit=1)
    ] == ["n3"]
    assert fr.events_after(engine, ids[-1]) == []


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="naive"):
        register(engine, now=datetime(2025, 3, 1, 9, 0))
    assert fr.list_terminals(engine) == []


def test_concurrent_writers_lose_nothing(engine: Engine) -> None:
    """Many threads, as in the gRPC server: no 'database is locked', no lost or reused ids."""
    terminal_ids = [f"t{i}" for i in range(4)]
    for terminal_id in terminal_ids:
        register(engine, terminal_id)
    start = fr.latest_event_id(engine)
    errors: list[BaseException] = []
    rounds = 10

    def report(terminal_id: str) -> None:
        try:
            for n in range(rounds):
                now = T0 + timedelta(seconds=n + 1)
                fr.update_device(engine, terminal_id, printer(detail=f"round {n}"), now)
                fr.record_heartbeat(engine, terminal_id, "SERVICE_STATE_IN_SERVICE", now)
                fr.mark_stale_offline(engine, 3600, now)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=report, args=(i,)) for i in terminal_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    events = fr.events_after(engine, start, limit=1000)
    assert len(events) == rounds * len(terminal_ids)
    ids = [e.event_id for e in events]
    assert ids == sorted(set(ids))


def test_a_tailing_reader_never_skips_an_event(engine: Engine) -> None:
    """An event committed late must not get an id below one a reader has already seen."""
    register(engine, "slow")
    register(engine, "fast")
    cursor = fr.latest_event_id(engine)
    seen: list[str] = []

    def tail() -> None:
        nonlocal cursor
        for event in fr.events_after(engine, cursor):
            seen.append(event.terminal_id)
            cursor = event.event_id

    other = threading.Thread(
        target=fr.update_device, args=(engine, "fast", printer(detail="jam"), T0)
    )
    with write_transaction(engine) as slow:
        # An open transaction that has appended an event but not yet committed.
        fr._append_events(
            slow, [fr._event("slow", "north", None, fr.EVENT_DEVICE_STATUS, "late", T0)]
        )
        other.start()
        other.join(0.5)
        tail()
    other.join(10)
    assert not other.is_alive()
    tail()
    assert sorted(seen) == ["fast", "slow"]


def _fleet_refusal(engine: Engine, call: str, **fields: str) -> grpc.aio.AioRpcError:
    """Call the Fleet API of a real grpc.aio server as an operator; return its refusal."""

    async def run() -> grpc.aio.AioRpcError:
        server = grpc.aio.server()
        fleet_pb2_grpc.add_FleetServicer_to_server(
            FleetServicer(engine, Authorizer(insecure=True)), server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = fleet_pb2_grpc.FleetStub(channel)
                metadata = ((PRINCIPAL_METADATA_KEY, "operator:ops"),)
                try:
                    if call == "GetTerminal":
                        await stub.GetTerminal(
                            fleet_pb2.GetTerminalRequest(**fields), metadata=metadata
                        )
                    elif call == "ListTerminals":
                        await stub.ListTerminals(
                            fleet_pb2.ListTerminalsRequest(**fields), metadata=metadata
                        )
                    else:
                        async for _ in stub.WatchTerminals(
                            fleet_pb2.WatchTerminalsRequest(**fields), metadata=metadata
                        ):
                            pass
                except grpc.aio.AioRpcError as exc:
                    return exc
                raise AssertionError(f"{call} was not refused")
        finally:
            await server.stop(None)

    return asyncio.run(run())


def _violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an AioRpcError is a Call
    assert status is not None, "the status carries no details"
    found: list[tuple[str, str]] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend((v.field, v.reason) for v in bad.field_violations)
    return found


def test_the_fleet_api_refuses_an_over_long_terminal_id_with_a_truncated_echo(
    engine: Engine,
) -> None:
    refused = _fleet_refusal(engine, "GetTerminal", terminal_id="T" * 5000)
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(refused) == [("terminal_id", "too_long")]
    message = refused.details() or ""
    assert "(5000 characters)" in message and len(message) < 200
    empty = _fleet_refusal(engine, "GetTerminal", terminal_id="")
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(empty) == [("terminal_id", "required")]
    # Unknown: NOT_FOUND naming the field, the id echoed short.
    unknown = _fleet_refusal(engine, "GetTerminal", terminal_id="T-NOPE")
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert unknown.details() == "terminal_id: no terminal 'T-NOPE'"
    assert _violations(unknown) == [("terminal_id", "unknown_terminal")]
    for call in ("ListTerminals", "WatchTerminals"):
        branch = _fleet_refusal(engine, call, branch="B" * 500)
        assert branch.code() == grpc.StatusCode.INVALID_ARGUMENT, call
        assert _violations(branch) == [("branch", "too_long")], call


def test_device_status_changes_are_kept_per_device_newest_first(engine: Engine) -> None:
    register(engine)  # printer and card reader online: their first entries
    unplugged = printer("DEVICE_STATUS_OFFLINE", "port missing")
    assert fr.update_device(engine, "t1", unplugged, T0 + timedelta(seconds=1))
    assert not fr.update_device(engine, "t1", unplugged, T0 + timedelta(seconds=2))  # repeat
    assert fr.update_device(engine, "t1", printer(), T0 + timedelta(seconds=3))
    changes = fleet_history.changes(engine, "t1", 10)
    assert [(c.device, c.status, c.detail) for c in changes] == [
        ("printer", "DEVICE_STATUS_ONLINE", ""),
        ("printer", "DEVICE_STATUS_OFFLINE", "port missing"),
        ("card_reader", "DEVICE_STATUS_ONLINE", ""),
        ("printer", "DEVICE_STATUS_ONLINE", ""),
    ]
    assert changes[0].at == T0 + timedelta(seconds=3)
    assert [c.change_id for c in changes] == sorted((c.change_id for c in changes), reverse=True)
    # A reconnection with the same statuses adds nothing; a changed one is recorded.
    register(engine, now=T0 + timedelta(seconds=4))
    assert len(fleet_history.changes(engine, "t1", 10)) == 4
    register(engine, now=T0 + timedelta(seconds=5), devices=[printer("DEVICE_STATUS_OFFLINE")])
    assert fleet_history.changes(engine, "t1", 1)[0].status == "DEVICE_STATUS_OFFLINE"
    assert fleet_history.changes(engine, "nobody", 10) == []


def test_device_history_is_bounded_per_device(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_history, "KEEP_PER_DEVICE", 3)
    register(engine)
    for i in range(1, 6):
        fr.update_device(engine, "t1", printer(detail=f"report {i}"), T0 + timedelta(seconds=i))
    changes = fleet_history.changes(engine, "t1", 50)
    assert [c.detail for c in changes if c.device == "printer"] == [
        "report 5",
        "report 4",
        "report 3",
    ]
    assert [c.device for c in changes if c.device != "printer"] == ["card_reader"]


# Operators only: refused to a teller over mTLS in tests/unit/test_console_fleet.py (this
# server runs in insecure loopback mode, which lets every caller in).
async def _device_history(
    engine: Engine, who: str, request: fleet_pb2.DeviceHistoryRequest
) -> fleet_pb2.DeviceHistoryResponse | grpc.aio.AioRpcError:
    server = grpc.aio.server()
    fleet_pb2_grpc.add_FleetServicer_to_server(
        FleetServicer(engine, Authorizer(insecure=True)), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                reply: fleet_pb2.DeviceHistoryResponse = await fleet_pb2_grpc.FleetStub(
                    channel
                ).DeviceHistory(request, metadata=((PRINCIPAL_METADATA_KEY, who),))
                return reply
            except grpc.aio.AioRpcError as exc:
                return exc
    finally:
        await server.stop(None)


def test_the_fleet_api_answers_device_history_newest_first_to_operators(engine: Engine) -> None:
    register(engine, devices=[printer("online")])  # the agent's status names
    fr.update_device(engine, "t1", printer("offline", "unplugged"), T0 + timedelta(seconds=1))
    fr.update_device(engine, "t1", printer("online"), T0 + timedelta(seconds=2))

    def ask(terminal_id: str, limit: int = 0, who: str = "operator:ops") -> object:
        request = fleet_pb2.DeviceHistoryRequest(terminal_id=terminal_id, limit=limit)
        return asyncio.run(_device_history(engine, who, request))

    reply = ask("t1", limit=2)
    assert isinstance(reply, fleet_pb2.DeviceHistoryResponse)
    assert [(c.device, c.status, c.detail) for c in reply.changes] == [
        ("printer", common_pb2.DEVICE_STATUS_ONLINE, ""),
        ("printer", common_pb2.DEVICE_STATUS_OFFLINE, "unplugged"),
    ]
    assert reply.changes[0].at.ToDatetime(tzinfo=UTC) == T0 + timedelta(seconds=2)
    everything = ask("t1")
    assert isinstance(everything, fleet_pb2.DeviceHistoryResponse)
    assert len(everything.changes) == 3
    for terminal_id, limit, field, reason in (
        ("T" * 5000, 0, "terminal_id", "too_long"),
        ("", 0, "terminal_id", "required"),
        ("t1", 501, "limit", "out_of_range"),
    ):
        refused = ask(terminal_id, limit)
        assert isinstance(refused, grpc.aio.AioRpcError), field
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert _violations(refused) == [(field, reason)], field
    unknown = ask("T-NOPE")
    assert isinstance(unknown, grpc.aio.AioRpcError)
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
