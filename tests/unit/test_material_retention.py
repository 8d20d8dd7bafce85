"""Task materials are personal data: every upload and read is audited in the database
(``material_audit``), and once a task has ended longer ago than the retention the bytes
are deleted (a blob another kept task refers to stays), a read of them then refused as
``material_deleted``; the audit CLI reads it; bad settings are refused naming the option.
On SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from branchline.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from branchline.server import main as server_main
from branchline.server.dispatch.model import Actor
from branchline.server.dispatch.schema import material_blobs, task_materials
from branchline.server.dispatch.tasks import DispatchService
from branchline.server.dispatch.tasks.material_audit import audit_of
from tests.unit.dispatch_invariants import check_invariants
from tests.unit.dispatch_support import L1, MC, T1, T2, T3, Clock, populate, teller

DAY = 24 * 3600.0
PHOTO = b"\x89PNG\r\n\x1a\n" + b"photo" * 20
SCAN = b"%PDF-1.7\nscan\n%%EOF\n"
OPS = Actor("operator", "ops")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def engine(engine: Engine) -> Iterator[Engine]:
    yield engine
    assert check_invariants(engine) == []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(engine: Engine, clock: Clock) -> DispatchService:
    service = DispatchService(
        engine, offer_timeout=30, clock=clock, material_retention=timedelta(days=30)
    )
    populate(service, clock)
    return service


def held_task(
    svc: DispatchService, clock: Clock, request_id: str, *files: tuple[str, bytes]
) -> str:
    """A task sent by MC-1 with ``files``, offered to a free teller of branch B (all on
    duty) and accepted."""
    for one in (T1, T2, T3):
        if not svc.staff(one).on_duty:
            svc.set_duty(one, True)
    task = svc.send_task(MC, "A", request_id, "B", "loan", "Loan application", {"amount": "1"})
    for name, data in files:
        svc.upload_material(MC, task.task_id, name, "application/octet-stream", data)
    svc.answer_offer(holder(svc, task.task_id), task.task_id, "accept")
    clock.advance(1)
    return task.task_id


def holder(svc: DispatchService, task_id: str) -> Actor:
    held_by = svc.get_task(OPS, task_id).teller_id
    assert held_by
    return teller(held_by)


def done(svc: DispatchService, task_id: str) -> None:
    svc.complete(holder(svc, task_id), task_id, True)


def blobs(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(material_blobs.c.sha256)).scalars())


def trail(engine: Engine, task_id: str) -> list[tuple[str, str, str, str]]:
    return [(a.actor, a.action, a.task_id, a.name) for a in audit_of(engine, task_id=task_id)]


def test_uploads_and_reads_are_audited_refusals_are_not(
    svc: DispatchService, engine: Engine, clock: Clock
) -> None:
    task_id = held_task(svc, clock, "a-1", ("id-front.png", PHOTO))
    assert holder(svc, task_id) == T1  # the first teller on duty, all idle
    svc.get_material(T1, task_id, sha(PHOTO))
    svc.get_material(L1, task_id, sha(PHOTO))
    svc.get_material(OPS, task_id, sha(PHOTO))
    with pytest.raises(PermissionDenied):
        svc.get_material(T2, task_id, sha(PHOTO))  # refused: not a viewing
    # Uploading the same content again under the same name changes nothing: no entry.
    svc.upload_material(MC, task_id, "id-front.png", "image/png", PHOTO)
    assert trail(engine, task_id=task_id) == [
        ("terminal MC-1", "uploaded", task_id, "id-front.png"),
        ("teller T1", "viewed", task_id, "id-front.png"),
        ("lobby manager L1", "viewed", task_id, "id-front.png"),
        ("operator ops", "viewed", task_id, "id-front.png"),
    ]
    entries = audit_of(engine, sha256=sha(PHOTO))
    assert {e.sha256 for e in entries} == {sha(PHOTO)} and len(entries) == 4
    assert entries[0].detail == f"application/octet-stream, {len(PHOTO)} bytes"
    assert entries[1].at == entries[0].at + timedelta(seconds=1)


def test_retention_deletes_only_expired_ended_tasks_and_keeps_shared_blobs(
    svc: DispatchService, engine: Engine, clock: Clock
) -> None:
    # Two tasks share the photo; the first also has a scan of its own.
    first = held_task(svc, clock, "r-1", ("id-front.png", PHOTO), ("scan.pdf", SCAN))
    second = held_task(svc, clock, "r-2", ("photo.png", PHOTO))
    still_open = held_task(svc, clock, "r-3", ("open.pdf", b"open task's own"))
    done(svc, first)
    clock.advance(20 * DAY)
    done(svc, second)
    # 29 days after the first ended: nothing is due yet.
    clock.advance(9 * DAY)
    assert svc.sweep_materials() == []
    # Past 30 days: the first task's two entries go; its photo stays for the second task.
    clock.advance(1 * DAY + 1)
    assert sorted(svc.sweep_materials()) == [(first, "id-front.png"), (first, "scan.pdf")]
    assert blobs(engine) == {sha(PHOTO), sha(b"open task's own")}
    assert svc.sweep_materials() == []  # nothing twice
    task = svc.get_task(OPS, first)
    assert [(m.name, m.deleted_at) for m in task.materials] == [
        ("id-front.png", clock.now),
        ("scan.pdf", clock.now),
    ]
    # The second task still reads the shared photo; the first one's read is refused.
    assert svc.get_material(OPS, second, sha(PHOTO))[1] == PHOTO
    with pytest.raises(FailedPrecondition) as refused:
        svc.get_material(OPS, first, sha(PHOTO))
    assert refused.value.reason == "material_deleted" and refused.value.field == "sha256"
    assert "'id-front.png' of task" in refused.value.message and "was deleted on" in str(
        refused.value
    )
    deleted = [e for e in audit_of(engine, task_id=first) if e.action == "deleted"]
    assert [(e.actor, e.name) for e in deleted] == [
        ("retention", "id-front.png"),
        ("retention", "scan.pdf"),
    ]
    assert deleted[0].detail.startswith("task done ") and "retention 30 days" in deleted[0].detail
    assert [e.action for e in audit_of(engine, task_id=first)].count("viewed") == 0
    # The second task's turn: now the photo's blob goes too; the open task keeps its own.
    clock.advance(20 * DAY)
    assert svc.sweep_materials() == [(second, "photo.png")]
    assert blobs(engine) == {sha(b"open task's own")}
    assert svc.get_material(OPS, still_open, sha(b"open task's own"))[1] == b"open task's own"
    with engine.connect() as conn:
        kept = conn.execute(select(func.count()).select_from(task_materials)).scalar_one()
    assert kept == 4  # the tasks' history still lists every material


def test_a_cancelled_task_expires_and_new_uploads_store_the_content_again(
    svc: DispatchService, engine: Engine, clock: Clock
) -> None:
    task = svc.send_task(MC, "A", "c-1", "B", "loan", "Loan application", {"amount": "1"})
    svc.upload_material(MC, task.task_id, "id-front.png", "image/png", PHOTO)
    svc.cancel_task(MC, task.task_id, "customer left")
    clock.advance(31 * DAY)
    assert svc.sweep_materials() == [(task.task_id, "id-front.png")]
    assert blobs(engine) == set()
    # The same photo for a new task: stored again, readable.
    again = held_task(svc, clock, "c-2", ("id-front.png", PHOTO))
    assert svc.get_material(OPS, again, sha(PHOTO))[1] == PHOTO


def test_the_sweep_works_in_batches(svc: DispatchService, engine: Engine, clock: Clock) -> None:
    task_id = held_task(svc, clock, "b-1", *((f"p{n}.png", PHOTO + bytes([n])) for n in range(3)))
    done(svc, task_id)
    clock.advance(31 * DAY)
    assert len(svc.sweep_materials(limit=2)) == 2
    assert len(svc.sweep_materials(limit=2)) == 1
    assert blobs(engine) == set()


def test_the_audit_cli_reads_it(
    svc: DispatchService, engine: Engine, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = held_task(svc, clock, "cli-1", ("id-front.png", PHOTO))
    svc.get_material(T1, task_id, sha(PHOTO))
    url = engine.url.render_as_string(hide_password=False)
    assert server_main.main(["--db", url, "materials", "audit", "--task", task_id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(e["actor"], e["action"], e["name"]) for e in data["entries"]] == [
        ("terminal MC-1", "uploaded", "id-front.png"),
        ("teller T1", "viewed", "id-front.png"),
    ]
    assert data["entries"][0]["sha256"] == sha(PHOTO) and data["entries"][0]["at"].endswith(
        "+00:00"
    )
    assert server_main.main(["--db", url, "materials", "audit", "--sha256", sha(PHOTO)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "viewed" in lines[1] and "teller T1" in lines[1]
    assert task_id in lines[1] and "id-front.png" in lines[1]
    # Bad input is refused naming the option.
    for bad, named in (
        (["--task", "no/such"], "task_id"),
        (["--sha256", "XYZ"], "sha256"),
        (["--limit", "0"], "limit"),
    ):
        assert server_main.main(["--db", url, "materials", "audit", *bad]) == 2
        assert f"({named})" in capsys.readouterr().err


def test_audit_of_refuses_bad_arguments(engine: Engine) -> None:
    with pytest.raises(InvalidArgument, match="limit: must be 1 to 10000"):
        audit_of(engine, limit=10001)
    with pytest.raises(InvalidArgument, match="sha256"):
        audit_of(engine, sha256="0" * 63)


@pytest.mark.parametrize("days", [0.0, -1.0, 36601.0, float("nan")])
def test_a_retention_out_of_bounds_stops_the_server_naming_the_option(
    tmp_path: Path, days: float
) -> None:
    from branchline.server.app import DispatchServer, StartupError
    from tests.unit.server_support import settings

    server = DispatchServer(settings(tmp_path, material_retention_days=days))
    with pytest.raises(StartupError) as refused:
        asyncio.run(server.run())
    assert "--material-retention-days: more than 0, at most 36600" in str(refused.value)


def test_the_flag_reaches_the_server_and_a_bad_one_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'server.db'}"
    argv = ["--listen", "127.0.0.1:0", "--insecure-loopback", "--db", db]
    argv += ["--recordings-dir", str(tmp_path / "r"), "--material-retention-days", "0"]
    assert server_main.main(argv) == 2
    assert "--material-retention-days: more than 0" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_the_server_sweeps_as_a_hub_background_task(tmp_path: Path) -> None:
    """Started on a database with a task cancelled long ago (the test clock's day, months
    before today): the server's own sweep deletes its material when it starts."""
    from branchline.server.app import DispatchServer
    from branchline.server.storage import open_database
    from tests.unit.server_support import run_until_ready, settings

    config = settings(tmp_path, material_retention_days=30.0)
    engine = open_database(config.db_url)
    try:
        old = DispatchService(engine, clock=Clock())
        populate(old)
        task = old.send_task(MC, "A", "old-1", "B", "loan", "Loan application", {"amount": "1"})
        old.upload_material(MC, task.task_id, "id-front.png", "image/png", PHOTO)
        old.cancel_task(MC, task.task_id, "customer left")

        async def serve() -> list[tuple[str, str, str, str]]:
            server = DispatchServer(config)
            running = await run_until_ready(server)
            try:
                for _ in range(500):
                    if any(a.action == "deleted" for a in audit_of(engine, task_id=task.task_id)):
                        break
                    await asyncio.sleep(0.02)
                return trail(engine, task.task_id)
            finally:
                server.request_stop()
                await running

        assert asyncio.run(serve())[-1] == ("retention", "deleted", task.task_id, "id-front.png")
        assert blobs(engine) == set()
    finally:
        engine.dispose()


def test_the_migration_keeps_existing_materials(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at 0007 with a task and its material: after 0013 the entry is kept (not
    deleted), its blob too, and the entry may outlive its blob (no foreign key, which
    SQLite enforces here as the server opens it)."""
    from alembic import command
    from sqlalchemy import insert, text

    from branchline.server.storage import engine as storage_engine
    from branchline.server.storage import open_database, write_transaction

    def to_0007(engine: Engine) -> None:
        config = storage_engine.alembic_config()
        with write_transaction(engine) as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0007_task_queue_index")

    upgrade_to_head = storage_engine.upgrade_to_head
    monkeypatch.setattr(storage_engine, "upgrade_to_head", to_0007)
    engine = open_database(empty_db_url)
    try:
        at = Clock()()
        with write_transaction(engine) as conn:
            conn.execute(text("INSERT INTO branches VALUES ('B', 'South', NULL, :at)"), {"at": at})
            conn.execute(
                text(
                    "INSERT INTO tasks (task_id, request_id, origin_terminal, origin_branch, "
                    "target_branch, business_type, title, fields, note, customer_ref, state, "
                    "created_at, updated_at) VALUES ('tk-1', 'r', 'MC-1', 'A', 'B', 'loan', "
                    "'Loan', '{}', '', '', 'done', :at, :at)"
                ),
                {"at": at},
            )
            conn.execute(
                insert(material_blobs).values(
                    sha256=sha(PHOTO), size=len(PHOTO), data=PHOTO, created_at=at
                )
            )
            conn.execute(
                text(
                    "INSERT INTO task_materials (task_id, name, content_type, sha256, size, "
                    "uploaded_at) VALUES ('tk-1', 'id-front.png', 'image/png', :sha, 1, :at)"
                ),
                {"sha": sha(PHOTO), "at": at},
            )
        upgrade_to_head(engine)
        with write_transaction(engine) as conn:
            row = conn.execute(select(task_materials)).one()
            assert (row.name, row.deleted_at) == ("id-front.png", None)
            conn.execute(material_blobs.delete())  # as the retention does
        assert blobs(engine) == set()
    finally:
        engine.dispose()
