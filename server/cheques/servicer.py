"""``ChequeDesk``: the staff's gRPC service, thin over ``desk`` and ``admin``. Refusals are
``branchline.common.errors`` errors turned into the call's status by ``@refusals``.
``WatchDisplay`` re-reads the branch's display when a purchase changes on this replica and
at least every ``DISPLAY_POLL_SECONDS`` (changes made on other replicas)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc
from sqlalchemy import select

from branchline.common.errors import InvalidArgument, check_text
from branchline.common.grpc_errors import refusals
from branchline.common.waiting import wait_set
from branchline.server.auth import LOBBY, OPERATOR, TELLER, TERMINAL, Authorizer, Principal
from branchline.server.cheques import admin, desk, rules
from branchline.server.cheques.core import ChequeCore
from branchline.server.cheques.schema import cheque_stock_ranges
from branchline.server.storage import write_transaction
from branchline.v1 import cheques_pb2 as pb
from branchline.v1 import cheques_pb2_grpc as pb_grpc

SERVICE_NAMES = (pb.DESCRIPTOR.services_by_name["ChequeDesk"].full_name,)
ANY_ROLE = (TELLER, LOBBY, OPERATOR, TERMINAL)
DISPLAY_POLL_SECONDS = 1.0
MAX_IMAGE = 4 * 1024 * 1024

T = TypeVar("T")


class ChequeDeskServicer(pb_grpc.ChequeDeskServicer):
    def __init__(self, core: ChequeCore, auth: Authorizer) -> None:
        self._core = core
        self._auth = auth
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        core.add_listener(self._changed)

    def _changed(self, branch: str, purchase_id: str) -> None:
        for loop, event in list(self._waiters):
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def _branch(self, context: grpc.aio.ServicerContext, rpc: str) -> tuple[Principal, str]:
        who = await self._auth.identify(context, ANY_ROLE, f"ChequeDesk.{rpc}")

        def read() -> str:
            with self._core.engine.connect() as conn:
                return desk.desk_branch(conn, who)

        return who, await asyncio.to_thread(read)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        def run() -> T:
            with self._core.engine.connect() as conn:
                return fn(conn, *args)

        return await asyncio.to_thread(run)

    async def _tell(self, find: Callable[..., list[str]], *args: Any) -> None:
        """After a desk change: the purchases it changed, pushed to their terminals."""
        ids = await self._read(find, *args)
        await asyncio.to_thread(self._core.changed_by_others, ids)

    @refusals
    async def LoadStock(
        self, request: pb.LoadStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.StockRange:
        who, branch = await self._branch(context, "LoadStock")
        terminal_id = check_text("terminal_id", request.terminal_id, max_len=128)
        book_type = check_text("book_type", request.book_type, max_len=32)
        await self._read(desk.check_terminal, terminal_id, branch)
        range_id = await asyncio.to_thread(
            admin.load_stock,
            self._core.engine,
            terminal_id,
            book_type,
            int(request.first_serial),
            int(request.last_serial),
            f"teller:{who.name}",
            self._core.clock(),
        )
        await self._tell(desk.offering, terminal_id)
        return await self._read(_range, range_id)

    @refusals
    async def UnloadStock(
        self, request: pb.StockRangeRef, context: grpc.aio.ServicerContext
    ) -> pb.StockRange:
        who, branch = await self._branch(context, "UnloadStock")
        found = await self._read(_range, int(request.range_id))
        await self._read(desk.check_terminal, found.terminal_id, branch)
        await asyncio.to_thread(
            admin.unload_stock,
            self._core.engine,
            int(request.range_id),
            f"teller:{who.name}",
            self._core.clock(),
        )
        await self._tell(desk.offering, found.terminal_id)
        return await self._read(_range, int(request.range_id))

    @refusals
    async def ListStock(
        self, request: pb.ListStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.StockList:
        _, branch = await self._branch(context, "ListStock")
        return await self._read(desk.list_stock, branch)

    @refusals
    async def ListPurchasers(
        self, request: pb.ListPurchasersRequest, context: grpc.aio.ServicerContext
    ) -> pb.PurchaserList:
        _, branch = await self._branch(context, "ListPurchasers")
        return pb.PurchaserList(purchasers=await self._read(desk.list_purchasers, branch))

    @refusals
    async def EnrolFace(
        self, request: pb.EnrolFaceRequest, context: grpc.aio.ServicerContext
    ) -> pb.Purchaser:
        who, branch = await self._branch(context, "EnrolFace")
        purchaser_id = check_text("purchaser_id", request.purchaser_id)
        if not request.image:
            raise InvalidArgument("image", "no image")
        if len(request.image) > MAX_IMAGE:
            raise InvalidArgument("image", f"at most {MAX_IMAGE} bytes")
        await self._read(desk.check_purchaser, purchaser_id, branch)
        settings = await self._read(rules.config)

        def run() -> None:
            admin.enrol_face(
                self._core.engine,
                self._core.matcher(),
                self._core.face_settings(settings),
                purchaser_id,
                bytes(request.image),
                f"teller:{who.name}",
                self._core.clock(),
            )

        await asyncio.to_thread(run)
        return (await self._read(desk.list_purchasers, branch, purchaser_id))[0]

    @refusals
    async def UnlockPurchaser(
        self, request: pb.PurchaserRef, context: grpc.aio.ServicerContext
    ) -> pb.Purchaser:
        who, branch = await self._branch(context, "UnlockPurchaser")
        purchaser_id = check_text("purchaser_id", request.purchaser_id)
        await self._read(desk.check_purchaser, purchaser_id, branch)
        await asyncio.to_thread(
            admin.unlock_purchaser,
            self._core.engine,
            purchaser_id,
            f"teller:{who.name}",
            self._core.clock(),
        )
        await self._tell(desk.buying, purchaser_id)
        return (await self._read(desk.list_purchasers, branch, purchaser_id))[0]

    @refusals
    async def IssuePurchaseCode(
        self, request: pb.IssueCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.PurchaseCode:
        who, branch = await self._branch(context, "IssuePurchaseCode")
        account_id = check_text("account_id", request.account_id)
        await self._read(desk.check_account, account_id, branch)
        code, expires = await asyncio.to_thread(
            admin.issue_code,
            self._core.engine,
            account_id,
            f"teller:{who.name}",
            self._core.clock(),
        )
        out = pb.PurchaseCode(account_id=account_id, code=code)
        out.expires_at.FromDatetime(expires)
        return out

    @refusals
    async def ListAlerts(
        self, request: pb.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AlertList:
        _, branch = await self._branch(context, "ListAlerts")
        return pb.AlertList(
            alerts=await self._read(desk.list_alerts, branch, request.include_resolved)
        )

    @refusals
    async def ResolveAlert(
        self, request: pb.ResolveAlertRequest, context: grpc.aio.ServicerContext
    ) -> pb.Alert:
        who, branch = await self._branch(context, "ResolveAlert")
        resolution = check_text("resolution", request.resolution, max_len=500)
        mine = await self._read(desk.list_alerts, branch, False)
        if not any(a.incident_id == request.incident_id for a in mine):
            raise InvalidArgument(
                "incident_id",
                f"no open alert {request.incident_id} in {branch}",
                reason="unknown_incident",
            )
        await asyncio.to_thread(
            admin.resolve_incident,
            self._core.engine,
            int(request.incident_id),
            resolution,
            f"teller:{who.name}",
            self._core.clock(),
        )
        every = await self._read(desk.list_alerts, branch, True)
        return next(a for a in every if a.incident_id == request.incident_id)

    @refusals
    async def GetDisplayPhoto(
        self, request: pb.DisplayPhotoRequest, context: grpc.aio.ServicerContext
    ) -> pb.DisplayPhoto:
        who, branch = await self._branch(context, "GetDisplayPhoto")
        purchase_id = check_text("purchase_id", request.purchase_id, max_len=64)

        def run() -> pb.DisplayPhoto:
            # Read and audit in one transaction: a photo handed out is one audited.
            with write_transaction(self._core.engine) as conn:
                return desk.display_photo(
                    conn, branch, purchase_id, f"teller:{who.name}", self._core.clock()
                )

        return await asyncio.to_thread(run)

    @refusals
    async def WatchDisplay(
        self, request: pb.WatchDisplayRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.BranchDisplay]:
        _, branch = await self._branch(context, "WatchDisplay")
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        self._waiters.add(waiter)
        last = b""
        try:
            while True:
                event.clear()
                shown = await self._read(desk.display, branch, self._core.clock())
                data = shown.SerializeToString(deterministic=True)
                if data != last:
                    last = data
                    yield shown
                await wait_set(event, DISPLAY_POLL_SECONDS)
        finally:
            self._waiters.discard(waiter)


def _range(conn: Any, range_id: int) -> pb.StockRange:
    row = conn.execute(
        select(cheque_stock_ranges).where(cheque_stock_ranges.c.range_id == range_id)
    ).first()
    if row is None:
        raise InvalidArgument("range_id", f"no range {range_id}", reason="unknown_range")
    return desk.stock_range(conn, row)
