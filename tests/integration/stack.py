"""Server, simulator and agent as real processes, the way ``make demo`` runs them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from branchline.v1 import (
    agent_local_pb2,
    agent_local_pb2_grpc,
    fleet_pb2,
    fleet_pb2_grpc,
    sim_control_pb2,
    sim_control_pb2_grpc,
)

PY = sys.executable

# The agent's [device.NAME] table for each simulated device; {dev} is the simulator's link.
DEVICE_SECTIONS = {
    "card_reader": """driver = "crt591_card_reader"
port = "{dev}"
baudrate = 38400
poll_interval = 0.5
command_timeout = 40
""",
    "printer": """driver = "escpos_printer"
port = "{dev}"
baudrate = 115200
poll_interval = 0.5
""",
    "tube_station": """driver = "modbus_tube_station"
port = "{dev}"
baudrate = 115200
parity = "N"  # a pty refuses parity on some kernels
poll_interval = 0.5
response_timeout = 0.3
retries = 1
send_timeout = 3
transit_timeout = 3
sensor_grace = 1.0
gpio = "sim"
gpio_sim_path = "sim/gpio/tube_station"
""",
    "id_reader": """driver = "ga467_id_reader"
port = "{dev}"
baudrate = 115200
poll_interval = 0.5
""",
    "face_camera": """driver = "face_module"
port = "{dev}"
poll_interval = 0.5
""",
    "pin_pad": """driver = "branchline_epp"
port = "{dev}"
baudrate = 115200
poll_interval = 0.5
command_timeout = 60
""",
    "cheque_printer": """driver = "ipp_cheque_printer"
uri = "{dev}.uri"
poll_interval = 0.5
command_timeout = 120
take_timeout = 5
""",
}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


@dataclass
class Stack:
    root: Path
    terminal_id: str = "T-0001"
    branch: str = "BR-001"
    procs: dict[str, Proc] = field(default_factory=dict)
    server_port: int = 0
    heartbeat_timeout: float = 6.0
    # Devices configured in the agent (each needs an entry in DEVICE_SECTIONS).
    devices: tuple[str, ...] = ("printer",)
    required_devices: tuple[str, ...] = ("printer",)
    # Appended to the agent's config file as it is (e.g. a [transactions] table).
    agent_extra: str = ""
    # The server's database when not the stack's own SQLite file (replicas on PostgreSQL).
    db_url: str = ""
    # The server's --shutdown-drain: how long it stays up NOT_SERVING once told to stop.
    shutdown_drain: float = 2.0

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def sim_dir(self) -> Path:
        return self.root / "sim"

    @property
    def state_dir(self) -> Path:
        return self.root / "agent"

    @property
    def agent_socket(self) -> Path:
        return self.state_dir / "agent.sock"

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, append: bool = False
    ) -> Proc:
        log_path = self.root / f"{name}.log"
        # append: a restarted agent keeps what its previous life wrote (crash tests read both).
        out = open(log_path, "ab" if append else "wb")  # noqa: SIM115 - the child writes to it
        if append:
            out.write(f"---- {name} started {time.strftime('%H:%M:%S')} ----\n".encode())
            out.flush()
        popen = subprocess.Popen(
            [PY, "-m", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=self.root,
        )
        proc = Proc(name, popen, log_path)
        self.procs[name] = proc
        return proc

    def init_pki(self) -> None:
        # In process: ``branchline-server pki init`` does the same, and a subprocess that
        # imports the whole server costs seconds per stack on a busy machine.
        from branchline.server.pki import init_pki

        init_pki(self.pki, [self.terminal_id, "T-OTHER"])

    def start_server(self, extra: list[str] | None = None) -> Proc:
        proc = self.spawn_server(extra)
        self.wait_server(proc)
        return proc

    def spawn_server(self, extra: list[str] | None = None) -> Proc:
        """The server process, not yet listening (``wait_server`` waits for it)."""
        return self._spawn(
            "server",
            [
                "branchline.server.main",
                "--listen",
                "127.0.0.1:0",
                "--db",
                f"sqlite:///{self.root / 'server.db'}",
                "--tls-dir",
                str(self.pki),
                "--heartbeat-interval",
                "1",
                "--heartbeat-timeout",
                str(self.heartbeat_timeout),
                "--shutdown-drain",
                str(self.shutdown_drain),
                "--replica",
                "test-replica",
                *(extra or []),
            ],
        )

    def wait_server(self, proc: Proc) -> None:
        def port() -> int:
            if proc.popen.poll() is not None:
                raise AssertionError(f"server exited {proc.popen.returncode}:\n{proc.log()}")
            for line in proc.log().splitlines():
                if line.startswith("branchline-server listening on"):
                    return int(line.rsplit(":", 1)[1])
            return 0

        self.server_port = wait_for(port, 30, "server to listen")

    def start_sim(self, wait: bool = True) -> Proc:
        """``wait=False``: spawn it only (its start-up overlaps the caller's other work);
        ``wait_sim`` before using it."""
        proc = self.spawn_sim()
        if wait:
            self.wait_sim()
        return proc

    def spawn_sim(self) -> Proc:
        return self._spawn("sim", ["branchline.sim.main", "--run-dir", str(self.sim_dir)])

    def wait_sim(self) -> None:
        proc = self.procs["sim"]

        def up() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"simulator exited {proc.popen.returncode}:\n{proc.log()}")
            return (self.sim_dir / "control.sock").exists()

        wait_for(up, 30, "simulator control socket")

    def start_all(self, agent_env: dict[str, str] | None = None) -> None:
        """Server and simulator side by side (neither needs the other), then the agent."""
        server = self.spawn_server()
        self.spawn_sim()
        self.wait_server(server)
        self.wait_sim()
        self.start_agent(env=agent_env)

    def agent_config(self, **overrides: str) -> Path:
        sections = "".join(
            "\n[device.{name}]\n{body}".format(
                name=name, body=DEVICE_SECTIONS[name].format(dev=self.sim_dir / "dev" / name)
            )
            for name in self.devices
        )
        required = "[" + ", ".join(f'"{n}"' for n in self.required_devices) + "]"
        terminal_id = overrides.get("terminal_id", self.terminal_id)
        cert = overrides.get("cert", self.terminal_id)
        text = f"""
[terminal]
id = "{terminal_id}"
branch = "{self.branch}"
server = "127.0.0.1:{self.server_port}"
state_dir = "{self.state_dir}"
heartbeat_interval = 1.0
ca_file = "{overrides.get("ca_file", self.pki / "ca.pem")}"
cert_file = "{self.pki / "terminals" / (cert + ".pem")}"
key_file = "{self.pki / "terminals" / (cert + ".key")}"
required_devices = {required}
{sections}
{self.agent_extra}"""
        path = self.root / "agent.toml"
        path.write_text(text)
        return path

    def start_agent(
        self, env: dict[str, str] | None = None, wait: bool = True, **overrides: str
    ) -> Proc:
        config = self.agent_config(**overrides)
        proc = self._spawn(
            "agent", ["branchline.agent.main", "--config", str(config)], env=env, append=True
        )
        if wait:
            wait_for(
                lambda: self.agent_socket.exists() or proc.popen.poll() is not None,
                30,
                "agent socket",
            )
            if proc.popen.poll() is not None:
                raise AssertionError(f"agent exited {proc.popen.returncode}:\n{proc.log()}")
        return proc

    # -- clients ---------------------------------------------------------------------------

    def operator_channel(self) -> grpc.Channel:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(self.pki / "ca.pem").read_bytes(),
            private_key=(self.pki / "operators" / "ops.key").read_bytes(),
            certificate_chain=(self.pki / "operators" / "ops.pem").read_bytes(),
        )
        return grpc.secure_channel(f"127.0.0.1:{self.server_port}", credentials)

    def fleet(self) -> fleet_pb2_grpc.FleetStub:
        return fleet_pb2_grpc.FleetStub(self.operator_channel())

    def terminal(self, terminal_id: str | None = None) -> fleet_pb2.Terminal | None:
        try:
            return self.fleet().GetTerminal(
                fleet_pb2.GetTerminalRequest(terminal_id=terminal_id or self.terminal_id), timeout=5
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                return None
            raise

    def sim(self) -> sim_control_pb2_grpc.SimControlStub:
        channel = grpc.insecure_channel(f"unix:{self.sim_dir / 'control.sock'}")
        return sim_control_pb2_grpc.SimControlStub(channel)

    def sim_fault(self, device: str, fault: str, active: bool) -> None:
        self.sim().SetFault(
            sim_control_pb2.SetFaultRequest(device=device, fault=fault, active=active), timeout=5
        )

    def agent_local(self) -> agent_local_pb2_grpc.AgentLocalStub:
        return agent_local_pb2_grpc.AgentLocalStub(
            grpc.insecure_channel(f"unix:{self.agent_socket}")
        )

    def agent_device(self, name: str) -> dict[str, Any]:
        """One device as ``branchline-diag status --json`` shows it, asked in process (a diag
        subprocess per poll costs about a second on a busy machine)."""
        from branchline.agent.diag import device_dict

        status = self.agent_local().GetStatus(agent_local_pb2.GetStatusRequest(), timeout=5)
        return device_dict(next(d for d in status.devices if d.name == name))

    def device_command(
        self, device: str, command: str, timeout: float = 60, **params: Any
    ) -> tuple[str, str, dict[str, Any]]:
        """Run a driver command through the agent: (completion, code or detail, result)."""
        reply = self.agent_local().RunCommand(
            agent_local_pb2.DeviceCommandRequest(
                device=device, command=command, params_json=json.dumps(params)
            ),
            timeout=timeout,
        )
        result = json.loads(reply.result_json) if reply.result_json else {}
        return reply.completion, f"{reply.code}: {reply.detail}" if reply.code else "", result

    def sim_act(self, device: str, action: str, **params: str) -> dict[str, str]:
        reply = self.sim().Act(
            sim_control_pb2.ActRequest(device=device, action=action, params=params), timeout=10
        )
        return dict(reply.result)

    def diag(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PY, "-m", "branchline.agent.diag", "--socket", str(self.agent_socket), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop_all(self) -> None:
        # The agent first (it reports its last state to the server), then everything else a
        # test spawned (a payShield simulator, ...), the server last.
        order = ["agent", "sim", *(n for n in self.procs if n not in ("agent", "sim", "server"))]
        for name in [*order, "server"]:
            if name in self.procs:
                self.procs[name].stop()


@contextmanager
def running_stack(log_dir: Path) -> Iterator[Stack]:
    """A stack in its own short root; on the way out its processes stop and their logs are
    copied to ``log_dir``."""
    # Unix socket paths are limited to 107 bytes: keep the root short.
    root = Path(tempfile.mkdtemp(prefix="bl-", dir="/tmp"))
    s = Stack(root)
    s.init_pki()
    try:
        yield s
    finally:
        s.stop_all()
        for proc in s.procs.values():
            (log_dir / proc.log_path.name).write_text(proc.log())
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def device_stack(log_dir: Path, device: str) -> Iterator[Stack]:
    """A whole module's stack for one device's tests: server, simulator and an agent that
    drives only ``device`` (not required, so a fault leaves the terminal in service)."""
    with running_stack(log_dir) as stack:
        stack.shutdown_drain = 0  # no client to drain when the module ends
        stack.devices = (device,)
        stack.required_devices = ()
        stack.start_all()
        yield stack
