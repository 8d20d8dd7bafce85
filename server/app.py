"""Assemble and run the server: TLS, the TerminalLink, every capability through one hub,
health and reflection, graceful stop.

The capabilities themselves (``branchline.server.capabilities.CAPABILITIES``) register
their servicers, TerminalLink handlers, connect hooks and background tasks in their own
``setup``; nothing here knows what they are.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from branchline.common.logs import log_event
from branchline.server.auth import Authorizer
from branchline.server.capabilities import CAPABILITIES
from branchline.server.capability import Capability, Hub, StartupError
from branchline.server.link import TerminalLinkServicer
from branchline.server.storage.engine import open_database
from branchline.v1 import terminal_link_pb2, terminal_link_pb2_grpc

log = logging.getLogger("branchline.server")

LINK_SERVICE = terminal_link_pb2.DESCRIPTOR.services_by_name["TerminalLink"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

__all__ = ["DispatchServer", "ServerSettings", "StartupError", "default_replica_name"]


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
    # Days a task's materials are kept once the task ended (then their bytes are deleted).
    material_retention_days: float = 90.0
    # PIN verification: the HSM (soft:/payshield: URL; None: no PIN verification), the BDK
    # the terminals' PIN pads derive from, the wrong-PIN limit, and the PAN token key file.
    hsm_url: str | None = None
    bdk_name: str = "BDK"
    pin_try_limit: int = 3
    pan_token_key: Path = Path("var/server/pan-token.key")
    # FX rate feed: seconds between checks of the current rate version.
    rate_poll_seconds: float = 1.0
    # Replicas (PostgreSQL): how long a pusher woken by the delivery bus waits at most
    # without a signal (server/delivery/bus.py, wait_for_change).
    bus_backstop_seconds: float = 2.0
    # Video-teller calls: the zone PIN key (in the HSM keystore) a PIN asked for by a
    # teller is translated to; the teller side holds the same key.
    teller_zpk: str = "TELLER-ZPK"
    # Tube transactions: an unfinished one unchanged this long gets a "stale" incident.
    tube_stale_minutes: float = 30.0
    # Prometheus endpoint HOST:PORT (None: no metrics endpoint).
    metrics_listen: str | None = None
    # Recordings: the content-addressed store's folder and how long recordings are kept.
    recordings_dir: Path = Path("var/server/recordings")
    recording_retention_days: float = 90.0
    # Phone pairing: the gateway's public base URL, which the terminals' QR codes carry.
    mobile_url: str = "https://localhost:8443"
    # Phone jobs: how long a terminal may be offline before its jobs that moved no value
    # are ended ``abandoned`` (server/mobile/job_sweep.py).
    phone_job_offline_grace: float = 60.0


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
    def __init__(
        self, settings: ServerSettings, capabilities: Sequence[Capability] = CAPABILITIES
    ) -> None:
        self.settings = settings
        self.capabilities = list(capabilities)
        self._stop = asyncio.Event()
        self.port = 0
        self.hub: Hub | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def _set_health(self, names: Sequence[str], status: int) -> None:
        for name in ("", *names):
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
        link = TerminalLinkServicer(engine, settings.replica, settings.heartbeat_interval, auth)
        hub = self.hub = Hub(server, engine, auth, link, settings)
        hub.add_servicer(
            terminal_link_pb2_grpc.add_TerminalLinkServicer_to_server, link, LINK_SERVICE
        )
        try:
            hub.setup_all(self.capabilities)
            self._enable_health_and_reflection(server, hub.service_names)
            self.port = self._bind(server, credentials)
        except BaseException:
            await hub.stop_all()  # undo what the capabilities set up so far
            await server.stop(None)
            engine.dispose()
            raise
        await server.start()
        await self._set_health(hub.service_names, health_pb2.HealthCheckResponse.SERVING)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        hub.start_background()
        log_event(
            log,
            "server_ready",
            listen=settings.listen,
            port=self.port,
            tls=credentials is not None,
            db=_safe_url(settings.db_url),
            replica=settings.replica,
            capabilities=",".join(hub.capabilities),
        )
        print(
            f"branchline-server listening on {settings.listen.rsplit(':', 1)[0]}:{self.port}",
            flush=True,
        )

        await self._stop.wait()
        # Health goes NOT_SERVING first so load balancers drain us, then the grace period.
        log_event(log, "server_stopping", drain_seconds=settings.shutdown_drain)
        await self._set_health(hub.service_names, health_pb2.HealthCheckResponse.NOT_SERVING)
        await asyncio.sleep(settings.shutdown_drain)
        await hub.stop_all()
        await server.stop(grace=2.0)
        await asyncio.to_thread(link.applier.stop)
        engine.dispose()
        log_event(log, "server_stopped")
        return 0

    def _enable_health_and_reflection(self, server: grpc.aio.Server, names: list[str]) -> None:
        self._health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (*names, HEALTH_SERVICE, reflection.SERVICE_NAME), server
        )

    def _bind(self, server: grpc.aio.Server, credentials: grpc.ServerCredentials | None) -> int:
        listen = self.settings.listen
        try:
            if credentials is None:
                return server.add_insecure_port(listen)
            return server.add_secure_port(listen, credentials)
        except RuntimeError as exc:
            raise StartupError(f"--listen: cannot bind {listen}: {exc}") from None


def _safe_url(url: str) -> str:
    """The database URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


def default_replica_name() -> str:
    return socket.gethostname()
