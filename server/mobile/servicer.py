"""The Mobile gRPC service: the phone gateway's way in (callers with the mobile role).

Thin: each method checks the caller, bounds its input and calls the plain functions of
``pairing`` and ``services``; refusals travel as the error model's statuses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import grpc
from sqlalchemy import Engine

from branchline.common.errors import InvalidArgument
from branchline.common.grpc_errors import refusals
from branchline.common.logs import log_event
from branchline.server import fleet_registry as registry
from branchline.server.applier import Applier
from branchline.server.auth import MOBILE, Authorizer
from branchline.server.mobile import pairing
from branchline.server.mobile.convert import pairing_to_pb, services_to_pb
from branchline.server.mobile.job_recordings import RecordingMethods
from branchline.server.mobile.job_servicer import JobMethods
from branchline.server.mobile.services import ServiceList, service_list
from branchline.server.recordings.service import RecordingService
from branchline.server.writes import apply_write
from branchline.v1 import mobile_pb2 as pb
from branchline.v1 import mobile_pb2_grpc as pb_grpc

WATCH_POLL_SECONDS = 0.25

log = logging.getLogger("branchline.server.mobile")


def _now() -> datetime:
    return datetime.now(UTC)


def listed_for(engine: Engine, terminal_id: str, withheld: frozenset[str]) -> ServiceList:
    terminal = registry.get_terminal(engine, terminal_id)
    if terminal is None:  # the pairing outlived its terminal's row
        return ServiceList(terminal_id, "offline", (), ())
    return service_list(terminal, withheld)


def services_now(
    engine: Engine,
    token: str,
    terminal_id: str,
    now: datetime,
    *,
    renew: bool,
    withheld: frozenset[str] = frozenset(),
) -> pb.PhoneServiceList:
    """The paired terminal's service list for the phone holding ``token``."""
    paired = pairing.session(engine, token, now, terminal_id=terminal_id, renew=renew)
    return services_to_pb(listed_for(engine, paired.terminal_id, withheld), paired)


class MobileServicer(JobMethods, RecordingMethods, pb_grpc.MobileServicer):
    def __init__(
        self,
        engine: Engine,
        auth: Authorizer,
        clock: Callable[[], datetime] = _now,
        withheld: frozenset[str] = frozenset(),
        recordings: RecordingService | None = None,
        applier: Applier | None = None,
        on_pairing: Callable[[], None] = lambda: None,
        on_job: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._auth = auth
        self._clock = clock
        self._withheld = withheld
        # The recordings capability's service (None without it: no recordings on phones).
        self._recordings = recordings
        # Every call may write (a session's renewal, a pairing, a job): each joins the
        # TerminalLink's group-commit batches (server/writes.py).
        self._applier = applier
        # Wake this replica's pushers: a pairing started or ended, a job was stored.
        self._on_pairing = on_pairing
        self._on_job = on_job

    @refusals
    async def OpenHandle(
        self, request: pb.OpenHandleRequest, context: grpc.aio.ServicerContext
    ) -> pb.OpenedPairing:
        await self._auth.require(context, MOBILE, "Mobile.OpenHandle")
        if bool(request.handle) == bool(request.short_code):
            raise InvalidArgument(
                "handle", "give either the handle or the short code", reason="one_of"
            )
        if request.handle:
            opened = await apply_write(
                self._applier,
                pairing.open_handle,
                self._engine,
                request.handle,
                self._clock(),
                terminal_id=request.terminal_id,
            )
        else:
            opened = await apply_write(
                self._applier,
                pairing.open_short_code,
                self._engine,
                request.short_code,
                self._clock(),
            )
        self._on_pairing()
        log_event(
            log,
            "phone_paired",
            terminal_id=opened.pairing.terminal_id,
            pairing_id=opened.pairing.pairing_id,
        )
        return pb.OpenedPairing(
            pairing=pairing_to_pb(opened.pairing), session_token=opened.session_token
        )

    @refusals
    async def GetPairing(
        self, request: pb.SessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.PhonePairing:
        await self._auth.require(context, MOBILE, "Mobile.GetPairing")
        found = await apply_write(
            self._applier,
            pairing.session,
            self._engine,
            request.session_token,
            self._clock(),
            terminal_id=request.terminal_id,
        )
        return pairing_to_pb(found)

    @refusals
    async def GetServices(
        self, request: pb.SessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.PhoneServiceList:
        await self._auth.require(context, MOBILE, "Mobile.GetServices")
        return await apply_write(
            self._applier,
            services_now,
            self._engine,
            request.session_token,
            request.terminal_id,
            self._clock(),
            renew=True,
            withheld=self._withheld,
        )

    @refusals
    async def WatchServices(
        self, request: pb.SessionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.PhoneServiceList]:
        """The list now, then again on every change; ends (with a refusal) once the pairing
        ends. Staying open is no activity: the session's idle timeout still runs."""
        await self._auth.require(context, MOBILE, "Mobile.WatchServices")
        last: pb.PhoneServiceList | None = None
        while True:
            current = await apply_write(
                self._applier,
                services_now,
                self._engine,
                request.session_token,
                request.terminal_id,
                self._clock(),
                renew=last is None,
                withheld=self._withheld,
            )
            if current != last:
                yield current
                last = current
            await asyncio.sleep(WATCH_POLL_SECONDS)

    @refusals
    async def Cancel(
        self, request: pb.SessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.PhonePairing:
        await self._auth.require(context, MOBILE, "Mobile.Cancel")
        ended = await apply_write(
            self._applier,
            pairing.cancel_by_phone,
            self._engine,
            request.session_token,
            self._clock(),
        )
        self._on_pairing()
        log_event(log, "pairing_canceled", terminal_id=ended.terminal_id, by="phone")
        return pairing_to_pb(ended)
