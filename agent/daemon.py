"""The agent daemon: owns the devices, serves the local API, keeps the uplink to the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket

from branchline.agent.cheques.engine import ChequeEngine
from branchline.agent.config import AgentConfig
from branchline.agent.customer.call import CallSession
from branchline.agent.customer.session import SessionStore
from branchline.agent.device_owner import DeviceOwner, DeviceSnapshot
from branchline.agent.journal.retention import JournalRetention
from branchline.agent.journal.store import Store
from branchline.agent.kiosk.server import start_kiosk
from branchline.agent.local_api import socket_path, start_local_api
from branchline.agent.metrics import agent_registry
from branchline.agent.rates import RateBook
from branchline.agent.recordings.terminal import TerminalRecordings
from branchline.agent.sd_notify import Notifier
from branchline.agent.service_state import ServiceStateMachine
from branchline.agent.tube.engine import TubeEngine
from branchline.agent.uplink import Uplink
from branchline.common.logs import log_event
from branchline.common.metrics_http import MetricsEndpoint, bind_socket, serve_metrics
from branchline.common.waiting import wait_set
from branchline.drivers.base import DriverContext

log = logging.getLogger("branchline.agent")

# How long the command in flight may run on after SIGTERM before it is canceled.
STOP_GRACE = 10.0
# How long startup waits for each device's first open attempt before declaring READY anyway.
FIRST_OPEN_WAIT = 10.0


class AlreadyRunning(Exception):
    pass


class Agent:
    def __init__(self, config: AgentConfig, notifier: Notifier | None = None) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        terminal = config.terminal
        self.service = ServiceStateMachine(terminal.required_devices, self._service_changed)
        self.owners: dict[str, DeviceOwner] = {}
        for device in config.devices:
            context = DriverContext(terminal.terminal_id, terminal.branch, device.name)
            self.owners[device.name] = DeviceOwner(device, context, self._device_changed)
        self.uplink = Uplink(terminal, self.device_snapshots, lambda: self.service.state)
        self.sessions = SessionStore()
        self.rates = RateBook(terminal.state_dir, lambda: self.uplink.connected)
        self.uplink.on_push("rate_update", self.rates.on_push)
        self.calls = CallSession(self)
        self.tube = TubeEngine(self, config.transactions)
        self.cheques = ChequeEngine(self, config.transactions)
        self._stop = asyncio.Event()
        self._store: Store | None = None
        self._recordings: TerminalRecordings | None = None
        self._retention: JournalRetention | None = None

    @property
    def store(self) -> Store:
        """Journal, outbox and e-journal (``journal.db`` under the state dir), opened on first use."""
        if self._store is None:
            terminal = self.config.terminal
            self._store = Store(terminal.state_dir, terminal.terminal_id)
        return self._store

    @property
    def retention(self) -> JournalRetention:
        """The sweep of finished transactions and acknowledged messages out of the journal."""
        if self._retention is None:
            days = self.config.terminal.journal_retention_days
            self._retention = JournalRetention(self.store.db, days)
        return self._retention

    @property
    def recordings(self) -> TerminalRecordings | None:
        """Recordings from the pages, kept until uploaded (None until the agent runs)."""
        return self._recordings

    def device_snapshots(self) -> list[DeviceSnapshot]:
        return [owner.snapshot for owner in self.owners.values()]

    def _device_changed(self, snapshot: DeviceSnapshot) -> None:
        self.uplink.device_changed(snapshot)
        self.service.device_changed(snapshot.name, snapshot.status)

    def _service_changed(self) -> None:
        log_event(log, "service_state", state=self.service.state.value, detail=self.service.detail)
        self.notifier.status(f"{self.service.state.value} {self.service.detail}".strip())
        if hasattr(self, "uplink"):
            self.uplink.service_state_changed()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stop.is_set():
            return
        exc = task.exception()
        # An owner must never end on its own: that is a bug, and the device is now unowned.
        # Stop so systemd restarts the agent rather than run on with a dead device.
        log.critical("task %s ended unexpectedly", task.get_name(), exc_info=exc)
        self.request_stop()

    def request_stop(self) -> None:
        self._stop.set()

    def _check_not_running(self) -> None:
        path = socket_path(self.config.terminal.state_dir)
        if not path.exists():
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                return  # a stale socket from a crash: safe to replace
        raise AlreadyRunning(f"another agent is serving {path}")

    # long: the agent's start-up and shutdown order, read top to bottom; each step one call
    async def run(self) -> int:
        terminal = self.config.terminal
        terminal.state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self._check_not_running()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)

        tasks = [
            asyncio.create_task(o.run(), name=f"device-{o.name}") for o in self.owners.values()
        ]
        for task in tasks:
            task.add_done_callback(self._task_ended)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_OPEN_WAIT):  # cancelable (common/waiting.py)
                await asyncio.gather(*(o.wait_first_attempt() for o in self.owners.values()))
        # The journal opens before anything can take a customer: unfinished transactions
        # are recovered by the engine's task, right after the uplink starts.
        self.tube.install()
        self.cheques.install()  # shares the tube's outbox sender
        path = socket_path(terminal.state_dir)
        local_api = await start_local_api(self, path)
        uplink_task = asyncio.create_task(self.uplink.run(), name="uplink")
        tube_task = asyncio.create_task(self.tube.run(), name="tube")
        tube_task.add_done_callback(self._task_ended)
        cheques_recovery = asyncio.create_task(self.cheques.recover(), name="cheques-recover")
        retention_task = asyncio.create_task(self.retention.run(), name="journal-retention")
        self._recordings = TerminalRecordings(
            terminal, self.store.ejournal, self.config.kiosk.recording_idle_seconds
        )
        self._recordings.start()
        kiosk = await start_kiosk(self)
        metrics = await self._start_metrics()
        self.notifier.ready(f"{self.service.state.value}")
        log_event(
            log,
            "agent_ready",
            terminal_id=terminal.terminal_id,
            socket=str(path),
            devices=sorted(self.owners),
            pid=os.getpid(),
        )

        await self._main_loop()

        self.notifier.stopping()
        log_event(log, "agent_stopping", terminal_id=terminal.terminal_id)
        self.service.shutting_down()
        if kiosk is not None:
            await kiosk.stop()
        if metrics is not None:
            await metrics.stop()
        # Transactions stop where they are: the journal holds their state, and the next
        # start recovers them (the same path as after a crash).
        tube_task.cancel()
        await self.tube.stop()
        cheques_recovery.cancel()
        await self.cheques.stop()
        retention_task.cancel()
        await asyncio.gather(*(o.stop(STOP_GRACE) for o in self.owners.values()))
        # Give the uplink a moment to carry the final state to the server.
        await asyncio.sleep(0.2)
        uplink_task.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(uplink_task, tube_task, retention_task, *tasks, return_exceptions=True)
        await local_api.stop(1.0)
        await self._recordings.stop()
        if self._store is not None:
            self._store.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        log_event(log, "agent_stopped", terminal_id=terminal.terminal_id)
        return 0

    async def _start_metrics(self) -> MetricsEndpoint | None:
        """The loopback Prometheus endpoint of ``[metrics]``, if configured."""
        settings = self.config.metrics
        if settings.listen is None:
            return None
        host, port = settings.host_port
        try:
            sock = bind_socket(host, port)
        except OSError as exc:
            # Metrics are for operations: a busy port must not keep customers away.
            log_event(
                log, "metrics_unavailable", logging.ERROR, listen=settings.listen, why=str(exc)
            )
            return None
        endpoint = await serve_metrics(agent_registry(self), sock)
        log_event(log, "metrics_listening", url=endpoint.url)
        return endpoint

    async def _main_loop(self) -> None:
        """Wait for a stop request, pinging the systemd watchdog from this very loop."""
        interval = self.notifier.watchdog_interval
        while not self._stop.is_set():
            if interval is None:
                await self._stop.wait()
                return
            self.notifier.watchdog()
            await wait_set(self._stop, interval)
