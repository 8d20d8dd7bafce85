"""Phone jobs left unfinished, on the server (SQLite and PostgreSQL): the end ``abandoned``
is stored once however often it is reported; the sweep ends the jobs of a terminal offline
past its grace that moved no value (a running tube or cheque-book job is left to the
terminal's journal), and the jobs not started whose phone pairing ended; nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from branchline.server import fleet_registry as fr
from branchline.server.fleet_registry import DeviceRecord
from branchline.server.mobile import jobs, pairing
from branchline.server.mobile.job_sweep import OFFLINE_GRACE, sweep
from branchline.server.mobile.schema import mobile_jobs
from branchline.server.storage.schema import terminals

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
DEVICES = ("card_reader", "pin_pad", "tube_station", "printer", "cheque_printer")
FORMS = {
    "tube_withdrawal": {"currency": "CNY", "amount": "50"},
    "tube_deposit": {"asset_kind": "cash", "currency": "CNY", "amount": "50"},
    "statement_view": {"period_from": "2026-01-01", "period_to": "2026-01-31"},
    "video_teller": {"business_type": "loan"},
}


def _terminal(engine: Engine, terminal_id: str = "t1") -> None:
    devices = [DeviceRecord(name, "sim", "online") for name in DEVICES]
    fr.register_terminal(
        engine, terminal_id, "north", "self_service", "1", devices, "r1", T0,
        service_state="in_service",
    )  # fmt: skip


def _paired(engine: Engine, terminal_id: str = "t1") -> pairing.Opened:
    """A phone paired with ``terminal_id`` (registered here; one phone per terminal)."""
    _terminal(engine, terminal_id)
    offer = pairing.issue_handle(engine, terminal_id, T0)
    return pairing.open_handle(engine, offer.handle, T0)


def _job(engine: Engine, opened: pairing.Opened, service: str, state: str, key: str) -> jobs.Job:
    """A job from ``opened``'s phone, moved by its terminal up to ``state``."""
    form = jobs.JobForm(idempotency_key=key, service=service, auth="terminal", **FORMS[service])  # type: ignore[arg-type]
    paired = opened.pairing
    job = jobs.submit(
        engine, paired.pairing_id, paired.terminal_id, form, jobs.validate(form, None), "", T0
    )
    for step in jobs.ORDER[1 : jobs.ORDER.index(state) + 1]:
        job = jobs.advance(engine, paired.terminal_id, job.job_id, jobs.Progress(step), T0)
    return job


def _offline(engine: Engine, last_seen: datetime) -> None:
    """Every terminal offline, last heard from at ``last_seen``."""
    with engine.begin() as conn:
        conn.execute(
            update(terminals).values(online=False, connected_replica=None, last_seen_at=last_seen)
        )


def _state(engine: Engine, job: jobs.Job) -> tuple[str, str]:
    found = jobs.get(engine, job.job_id, job.pairing_id)
    return found.state, found.reason


def test_the_end_reported_twice_is_stored_once(engine: Engine) -> None:
    opened = _paired(engine)
    job = _job(engine, opened, "statement_view", "ready", "key-0001")
    first = jobs.advance(engine, "t1", job.job_id, jobs.Progress("abandoned", reason="timeout"), T0)
    later = T0 + timedelta(minutes=1)
    again = jobs.advance(
        engine, "t1", job.job_id, jobs.Progress("abandoned", reason="agent_restarted"), later
    )
    done = jobs.advance(engine, "t1", job.job_id, jobs.Progress("done"), later)
    assert (first.state, first.reason) == ("abandoned", "timeout")
    assert again == first and done == first  # the first end, untouched (updated_at too)
    with engine.connect() as conn:
        rows = conn.execute(mobile_jobs.select().where(mobile_jobs.c.job_id == job.job_id)).all()
    assert len(rows) == 1 and rows[0].updated_at == T0
    # Finished: the pairing may send another job.
    _job(engine, opened, "video_teller", "received", "key-0002")


def test_offline_terminal_ends_jobs_that_moved_no_value(engine: Engine) -> None:
    pairings = [_paired(engine, f"t{i}") for i in range(6)]
    cases = [
        ("tube_withdrawal", "confirming", "abandoned"),  # nothing released before running
        ("tube_deposit", "authenticating", "abandoned"),
        ("statement_view", "running", "abandoned"),  # moves no value
        ("video_teller", "received", "abandoned"),
        ("tube_withdrawal", "running", "running"),  # its transaction decides: the terminal's
        ("tube_deposit", "running", "running"),
    ]
    made = [
        _job(engine, pairings[i], service, state, f"key-{i:04d}")
        for i, (service, state, _) in enumerate(cases)
    ]
    # The sweep only reads pairings it is told ended: these phones stay paired meanwhile.
    now = T0 + timedelta(minutes=5)
    with engine.begin() as conn:
        conn.execute(update(pairing.table).values(session_expires_at=now + timedelta(hours=1)))
    # Online, or offline within the grace: nothing.
    assert sweep(engine, now) == []
    _offline(engine, now - OFFLINE_GRACE + timedelta(seconds=1))
    assert sweep(engine, now) == []
    _offline(engine, now - OFFLINE_GRACE - timedelta(seconds=1))
    ended = sweep(engine, now)
    assert sorted(ended) == sorted(
        j.job_id for j, c in zip(made, cases, strict=True) if c[2] == "abandoned"
    )
    for job, (service, _, expected) in zip(made, cases, strict=True):
        state, reason = _state(engine, job)
        assert state == expected, service
        if expected == "abandoned":
            assert reason == "terminal_offline"
    assert sweep(engine, now + timedelta(minutes=1)) == []  # once
    # The terminal comes back and reports its own end for one of them: the first end stays.
    again = jobs.advance(
        engine, "t0", made[0].job_id, jobs.Progress("abandoned", reason="agent_restarted"), now
    )
    assert (again.state, again.reason) == ("abandoned", "terminal_offline")


def test_pairing_ended_ends_only_jobs_not_started(engine: Engine) -> None:
    canceled, idle, timed, live = (_paired(engine, f"t{i}") for i in range(4))
    waiting = _job(engine, canceled, "video_teller", "ready", "key-0001")
    unsent = _job(engine, timed, "statement_view", "submitted", "key-0004")
    started = _job(engine, idle, "tube_deposit", "authenticating", "key-0002")
    kept = _job(engine, live, "statement_view", "received", "key-0003")
    pairing.cancel_by_phone(engine, canceled.session_token, T0 + timedelta(seconds=5))
    later = T0 + pairing.SESSION_IDLE + timedelta(seconds=1)  # idle's session timed out
    with engine.begin() as conn:  # live's phone kept using its session
        conn.execute(
            update(pairing.table)
            .where(pairing.table.c.handle == live.pairing.pairing_id)
            .values(session_expires_at=later + timedelta(minutes=5))
        )
    assert sorted(sweep(engine, later)) == sorted([waiting.job_id, unsent.job_id])
    assert _state(engine, waiting) == ("abandoned", "pairing_ended")
    assert _state(engine, unsent) == ("abandoned", "pairing_ended")
    assert jobs.waiting(engine, "t2") == []  # never pushed now
    # Someone is at the terminal with it: the terminal ends it.
    assert _state(engine, started) == ("authenticating", "")
    assert _state(engine, kept) == ("received", "")
    # The terminal's next step on the abandoned job is answered with its end.
    answer = jobs.advance(engine, "t0", waiting.job_id, jobs.Progress("authenticating"), later)
    assert (answer.state, answer.reason) == ("abandoned", "pairing_ended")
