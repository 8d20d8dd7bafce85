"""Assemble and run the dispatch server: services, health, reflection, TLS, graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from sqlalchemy import Engine

from branchline.common.logs import log_event
from branchline.server.auth import Authorizer
from branchline.server.dispatch import call_servicer, calls
from branchline.server.dispatch import servicer as dispatch
from branchline.server.dispatch.service import DispatchService
from branchline.server.fleet import FleetServicer
from branchline.server.hsm import HsmError, open_hsm
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.hsm_check import hsm_pin_check
from branchline.server.ledger.pan_token import PanTokenizer
from branchline.server.ledger.pin_service import PinSettings, PinVerifier
from branchline.server.link import TerminalLinkServicer, sweep_stale
from branchline.server.rate_feed import RateFeed
from branchline.server.receipts_service import ReceiptsServicer
from branchline.server.statement_link import install_statements
from branchline.server.storage.engine import open_database
from branchline.server.tube import servicer as tube
from branchline.server.tube.link import install_tube
from branchline.server.tube.service import TubeService
from branchline.v1 import (
    calls_pb2_grpc,
    customer_info_pb2,
    customer_info_pb2_grpc,
    fleet_pb2,
    fleet_pb2_grpc,
    terminal_link_pb2,
    terminal_link_pb2_grpc,
    tube_pb2_grpc,
)

log = logging.getLogger("branchline.server")

SERVICE_NAMES = (
    terminal_link_pb2.DESCRIPTOR.services_by_name["TerminalLink"].full_name,
    fleet_pb2.DESCRIPTOR.services_by_name["Fleet"].full_name,
    customer_info_pb2.DESCRIPTOR.services_by_name["Receipts"].full_name,
    *dispatch.SERVICE_NAMES,
    *call_servicer.SERVICE_NAMES,
    *tube.SERVICE_NAMES,
)


class StartupError(Exception):
    pass


@dataclass(frozen=True)
class ServerSettings:
    listen: str
    db_url: str
    tls_ca: Path | None
    tls_cert: Path | None
    tls_key: Path | None
    insecure_loopback: bool
    heartbeat_interval: float
    heartbeat_timeout: float
    shutdown_drain: float
    replica: str
    # Dispatch: how long a task offer waits for an answer, the default routing strategy
    # (a branch may set its own) and the largest material a task may carry.
    offer_timeout: float = 60.0
    routing_strategy: str = "longest_idle"
    max_material_bytes: int = 4 * 1024 * 1024
    # PIN verification: the HSM (soft:/payshield: URL; None: no PIN verification), the BDK
    # the terminals' PIN pads derive from, the wrong-PIN limit, and the PAN token key file.
    hsm_url: str | None = None
    bdk_name: str = "BDK"
    pin_try_limit: int = 3
    pan_token_key: Path = Path("var/server/pan-token.key")
    # FX rate feed: seconds between checks of the current rate version.
    rate_poll_seconds: float = 1.0
    # Video-teller calls: the zone PIN key (in the HSM keystore) a PIN asked for by a
    # teller is translated to; the teller side holds the same key.
    teller_zpk: str = "TELLER-ZPK"
    # Tube transactions: an unfinished one unchanged this long gets a "stale" incident.
    tube_stale_minutes: float = 30.0


def is_loopback_listen(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    if settings.insecure_loopback:
        if not is_loopback_listen(settings.listen):
            raise StartupError(
                f"--insecure-loopback: plaintext is allowed only on a loopback address, "
                f"not {settings.listen}"
            )
        return None
    missing = [
        n
        for n, p in (
            ("--tls-ca", settings.tls_ca),
            ("--tls-cert", settings.tls_cert),
            ("--tls-key", settings.tls_key),
        )
        if p is None
    ]
    if missing:
        raise StartupError(f"{', '.join(missing)}: required unless --insecure-loopback is given")
    files = {}
    for option, path in (
        ("--tls-ca", settings.tls_ca),
        ("--tls-cert", settings.tls_cert),
        ("--tls-key", settings.tls_key),
    ):
        assert path is not None
        try:
            files[option] = path.read_bytes()
        except OSError as exc:
            raise StartupError(f"{option}: cannot read {path}: {exc.strerror}") from None
    return grpc.ssl_server_credentials(
        [(files["--tls-key"], files["--tls-cert"])],
        root_certificates=files["--tls-ca"],
        require_client_auth=True,
    )


class DispatchServer:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._stop = asyncio.Event()
        self.port = 0

    def request_stop(self) -> None:
        self._stop.set()

    async def _set_health(self, status: int) -> None:
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, status)

    async def run(self) -> int:
        settings = self.settings
        credentials = _credentials(settings)
        engine = open_database(settings.db_url)
        # Materials arrive in one message: room for the largest one plus its envelope.
        server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", settings.max_material_bytes + (1 << 20))]
        )
        auth = Authorizer(insecure=credentials is None)
        pin_verifier = build_pin_verifier(settings, engine)
        link = TerminalLinkServicer(
            engine,
            settings.replica,
            settings.heartbeat_interval,
            auth,
            pin_verifier=pin_verifier,
        )
        rate_feed = RateFeed(engine, link.broadcast, link.push, settings.rate_poll_seconds)
        link.on_connect(rate_feed.on_connect)
        install_statements(link, engine, pin_verifier)
        terminal_link_pb2_grpc.add_TerminalLinkServicer_to_server(link, server)
        customer_info_pb2_grpc.add_ReceiptsServicer_to_server(
            ReceiptsServicer(engine, auth), server
        )
        tube_service = TubeService(
            engine,
            EmbeddedLedger(engine),
            pin_verifier.sessions if pin_verifier is not None else None,
            stale_after=timedelta(minutes=settings.tube_stale_minutes),
        )
        install_tube(link, tube_service)
        tube_pb2_grpc.add_TubeDeskServicer_to_server(
            tube.TubeDeskServicer(tube_service, auth), server
        )
        fleet_pb2_grpc.add_FleetServicer_to_server(FleetServicer(engine, auth), server)
        dispatch_service = DispatchService(
            engine,
            offer_timeout=settings.offer_timeout,
            strategy=settings.routing_strategy,
            max_material_bytes=settings.max_material_bytes,
        )
        dispatch.add_dispatch_services(server, dispatch_service, auth, engine)
        call_service = calls.CallService(
            dispatch_service,
            translate_pin=build_pin_translator(settings),
            ring_timeout=settings.offer_timeout,
        )
        calls_pb2_grpc.add_CallsServicer_to_server(
            call_servicer.CallsServicer(call_service, auth), server
        )
        call_link = call_servicer.CallLink(call_service, link, engine)
        self._health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (
                *SERVICE_NAMES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        try:
            if credentials is None:
                self.port = server.add_insecure_port(settings.listen)
            else:
                self.port = server.add_secure_port(settings.listen, credentials)
        except RuntimeError as exc:
            raise StartupError(f"--listen: cannot bind {settings.listen}: {exc}") from None
        await server.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        sweeper = asyncio.create_task(sweep_stale(engine, settings.heartbeat_timeout))
        dispatch_sweeper = asyncio.create_task(
            dispatch.sweep(dispatch_service, min(1.0, settings.offer_timeout / 4))
        )
        rate_poller = asyncio.create_task(rate_feed.run())
        # Often enough that a stale transaction is reported within a tenth of the limit.
        tube_sweeper = asyncio.create_task(
            tube.sweep(tube_service, min(60.0, settings.tube_stale_minutes * 6))
        )
        call_tasks = [
            asyncio.create_task(call_link.run()),
            asyncio.create_task(
                call_servicer.sweep(call_service, min(1.0, settings.offer_timeout / 4))
            ),
        ]
        log_event(
            log,
            "server_ready",
            listen=settings.listen,
            port=self.port,
            tls=credentials is not None,
            db=_safe_url(settings.db_url),
            replica=settings.replica,
        )
        print(
            f"branchline-server listening on {settings.listen.rsplit(':', 1)[0]}:{self.port}",
            flush=True,
        )

        await self._stop.wait()
        # Health goes NOT_SERVING first so load balancers drain us, then the grace period.
        log_event(log, "server_stopping", drain_seconds=settings.shutdown_drain)
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await asyncio.sleep(settings.shutdown_drain)
        for task in (sweeper, dispatch_sweeper, rate_poller, tube_sweeper, *call_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.stop(grace=2.0)
        engine.dispose()
        log_event(log, "server_stopped")
        return 0


def build_pin_verifier(settings: ServerSettings, engine: Engine) -> PinVerifier | None:
    if settings.hsm_url is None:
        return None
    try:
        hsm = open_hsm(settings.hsm_url)
        tokenizer = PanTokenizer.from_file(settings.pan_token_key)
    except (HsmError, OSError, ValueError) as exc:
        raise StartupError(f"--hsm: {exc}") from None
    return PinVerifier(
        engine,
        tokenizer,
        hsm_pin_check(hsm, settings.bdk_name),
        PinSettings(settings.pin_try_limit),
    )


def build_pin_translator(settings: ServerSettings) -> calls.PinTranslator | None:
    """PIN blocks a teller asks for, re-enciphered by the HSM from the PIN pad's DUKPT key
    to the teller side's zone PIN key (ISO 9564 format 0); None without an HSM."""
    if settings.hsm_url is None:
        return None
    try:
        hsm = open_hsm(settings.hsm_url)
    except (HsmError, OSError, ValueError) as exc:
        raise StartupError(f"--hsm: {exc}") from None
    bdk, zpk = settings.bdk_name, settings.teller_zpk

    def translate(
        pan: str, pin_block: bytes, ksn: bytes, pin_format: int
    ) -> tuple[bytes, int, str]:
        try:
            return hsm.translate_pin_dukpt_to_zpk(bdk, ksn, pin_block, pan, zpk, 0), 0, zpk
        except HsmError as exc:
            log_event(log, "pin_translation_failed", logging.WARNING, code=exc.code)
            raise calls.TranslationFailed(
                exc.code, f"the HSM refused the translation: {exc}"
            ) from None

    return translate


def _safe_url(url: str) -> str:
    """The database URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


def default_replica_name() -> str:
    return socket.gethostname()
