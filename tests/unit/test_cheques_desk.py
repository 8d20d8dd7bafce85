"""ChequeDesk over a real grpc.aio server: who may (a teller with the back_office skill, own
branch only), refusals naming the rule or field, face enrolment from an upload (one clear
face), and the branch display pushed when a purchase changes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from branchline.common.grpc_errors import error_details
from branchline.server.auth import PRINCIPAL_METADATA_KEY, Authorizer
from branchline.server.cheques.servicer import ChequeDeskServicer
from branchline.server.storage import open_database
from branchline.v1 import cheques_pb2 as pb
from branchline.v1 import cheques_pb2_grpc as pb_grpc
from tests.unit.cheque_support import (
    BASIC,
    FACES,
    TERMINAL,
    World,
    add_desk_staff,
    make_world,
)
from tests.unit.sqlite_template import migrated_sqlite


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = open_database(migrated_sqlite(tmp_path / "server.db"))
    made = make_world(engine)
    add_desk_staff(engine)
    yield made
    engine.dispose()


Scenario = Callable[[pb_grpc.ChequeDeskStub, Callable[[str], Any]], Awaitable[None]]


def serve(world: World, scenario: Scenario) -> None:
    async def run() -> None:
        server = grpc.aio.server()
        pb_grpc.add_ChequeDeskServicer_to_server(
            ChequeDeskServicer(world.core, Authorizer(insecure=True)), server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.ChequeDeskStub(channel)

                def who(principal: str) -> Any:
                    return {"metadata": ((PRINCIPAL_METADATA_KEY, principal),), "timeout": 30}

                await scenario(stub, who)
        finally:
            await server.stop(None)

    asyncio.run(run())


def test_only_back_office_tellers_of_the_branch(world: World) -> None:
    async def scenario(stub: pb_grpc.ChequeDeskStub, who: Callable[[str], Any]) -> None:
        for principal, rule in (
            ("teller:T-9", "back_office_skill"),
            ("operator:ops", "back_office_skill"),
            ("teller:BO-2", "own_branch_only"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.LoadStock(
                    pb.LoadStockRequest(
                        terminal_id=TERMINAL,
                        book_type="transfer_cheque",
                        first_serial=30000001,
                        last_serial=30000025,
                    ),
                    **who(principal),
                )
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error_details(refused.value).reason == rule
        listed = await stub.ListStock(pb.ListStockRequest(), **who("teller:BO-1"))
        assert [r.books_free for r in listed.ranges] == [4, 2]
        with pytest.raises(grpc.aio.AioRpcError) as overlap:
            await stub.LoadStock(
                pb.LoadStockRequest(
                    terminal_id=TERMINAL,
                    book_type="transfer_cheque",
                    first_serial=10000090,
                    last_serial=10000200,
                ),
                **who("teller:BO-1"),
            )
        assert error_details(overlap.value).reason == "range_overlap"

    serve(world, scenario)


def test_enrolment_needs_one_clear_face_and_is_audited(world: World) -> None:
    async def scenario(stub: pb_grpc.ChequeDeskStub, who: Callable[[str], Any]) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as nobody:
            await stub.EnrolFace(
                pb.EnrolFaceRequest(
                    purchaser_id=BASIC.purchaser_id, image=(FACES / "no_face.jpg").read_bytes()
                ),
                **who("teller:BO-1"),
            )
        details = error_details(nobody.value)
        assert (details.field, details.reason) == ("enrolled_image", "no_face")
        done = await stub.EnrolFace(
            pb.EnrolFaceRequest(
                purchaser_id=BASIC.purchaser_id, image=(FACES / "obama_3.jpg").read_bytes()
            ),
            **who("teller:BO-1"),
        )
        assert done.enrolled and done.enrolled_by == "teller:BO-1"
        code = await stub.IssuePurchaseCode(
            pb.IssueCodeRequest(account_id=BASIC.account_id), **who("teller:BO-1")
        )
        assert len(code.code) == 8

    serve(world, scenario)
    from sqlalchemy import select

    from branchline.server.cheques.schema import cheque_audit

    with world.engine.connect() as conn:
        actions = [
            r.action
            for r in conn.execute(select(cheque_audit).where(cheque_audit.c.actor == "teller:BO-1"))
        ]
    assert actions == ["enrol_face", "issue_code"]


def test_the_display_is_pushed_when_identity_passes(world: World) -> None:
    async def scenario(stub: pb_grpc.ChequeDeskStub, who: Callable[[str], Any]) -> None:
        stream = stub.WatchDisplay(
            pb.WatchDisplayRequest(), metadata=((PRINCIPAL_METADATA_KEY, "teller:BO-1"),)
        )
        first = await stream.read()
        assert not first.purchases
        pid = await asyncio.to_thread(world.identified)
        shown = await stream.read()
        assert [p.purchase_id for p in shown.purchases] == [pid]
        assert shown.purchases[0].contact_name == BASIC.contact_name
        assert shown.purchases[0].id_number_masked.count("*") == 8
        stream.cancel()
        alerts = await stub.ListAlerts(pb.ListAlertsRequest(), **who("teller:BO-1"))
        assert not alerts.alerts

    serve(world, scenario)


# long: one purchase's photo through the push, the hand-out, each refusal, the sweep, the audit
def test_the_display_photo_is_handed_out_only_while_on_show_and_each_one_audited(
    world: World,
) -> None:
    import hashlib
    import json

    from sqlalchemy import select

    from branchline.server.cheques.identify import sweep_images
    from branchline.server.cheques.schema import cheque_audit

    photo = (FACES / "obama_1.jpg").read_bytes()

    async def scenario(stub: pb_grpc.ChequeDeskStub, who: Callable[[str], Any]) -> None:
        stream = stub.WatchDisplay(
            pb.WatchDisplayRequest(), metadata=((PRINCIPAL_METADATA_KEY, "teller:BO-1"),)
        )
        await stream.read()
        pid = await asyncio.to_thread(world.identified)
        shown = await stream.read()
        # The display says there is a photo, and not what it is: the bytes are asked for.
        assert shown.purchases[0].photo_format == "jpeg"
        assert shown.ByteSize() < len(photo)
        stream.cancel()
        got = await stub.GetDisplayPhoto(
            pb.DisplayPhotoRequest(purchase_id=pid), **who("teller:BO-1")
        )
        assert (got.purchase_id, got.photo_format, got.photo) == (pid, "jpeg", photo)
        refusals = (
            ("teller:BO-2", pid, grpc.StatusCode.NOT_FOUND, "not_on_display", "purchase_id"),
            ("teller:BO-1", "P-none", grpc.StatusCode.NOT_FOUND, "not_on_display", "purchase_id"),
            ("teller:BO-1", "", grpc.StatusCode.INVALID_ARGUMENT, "required", "purchase_id"),
            ("teller:BO-1", "x" * 65, grpc.StatusCode.INVALID_ARGUMENT, "too_long", "purchase_id"),
            ("teller:T-9", pid, grpc.StatusCode.PERMISSION_DENIED, "back_office_skill", ""),
        )
        for principal, asked, code, reason, field in refusals:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetDisplayPhoto(
                    pb.DisplayPhotoRequest(purchase_id=asked), **who(principal)
                )
            details = error_details(refused.value)
            assert (refused.value.code(), details.reason, details.field) == (code, reason, field)
        # Past the retention the photo is swept: the purchase is still on show, without it.
        world.clock.advance(days=31)
        assert await asyncio.to_thread(sweep_images, world.core) == 2
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await stub.GetDisplayPhoto(
                pb.DisplayPhotoRequest(purchase_id=pid), **who("teller:BO-1")
            )
        assert (error_details(gone.value).reason, error_details(gone.value).field) == (
            "no_photo",
            "purchase_id",
        )
        again = await stub.WatchDisplay(pb.WatchDisplayRequest(), **who("teller:BO-1")).read()
        assert [(p.purchase_id, p.photo_format) for p in again.purchases] == [(pid, "")]

    serve(world, scenario)
    with world.engine.connect() as conn:
        rows = conn.execute(
            select(cheque_audit).where(cheque_audit.c.action == "display_photo")
        ).all()
    # The one photo handed out; the refusals handed out nothing.
    assert [(r.actor, r.subject) for r in rows] == [("teller:BO-1", rows[0].subject)]
    assert json.loads(rows[0].detail) == {
        "format": "jpeg",
        "bytes": len(photo),
        "sha256": hashlib.sha256(photo).hexdigest(),
    }
