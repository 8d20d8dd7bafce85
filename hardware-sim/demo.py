"""``make demo``: server (SQLite), hardware simulator and agent in the foreground.

Makes development certificates on first run, writes the agent's config, starts the three
processes, waits for the terminal to register, prints what to try, and stops all three on
Ctrl-C. Everything lives under ``var/``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc

from branchline.v1 import fleet_pb2, fleet_pb2_grpc

TERMINAL_ID = "T-0001"
BRANCH = "BR-001"


def agent_config(var: Path, listen: str) -> str:
    pki = var / "pki"
    sim = var / "sim"
    return f"""# Written by `make demo`; see README.md "Configuration" for every option.
[terminal]
id = "{TERMINAL_ID}"
branch = "{BRANCH}"
kind = "self_service"
server = "{listen}"
state_dir = "{var / "agent"}"
heartbeat_interval = 2.0
ca_file = "{pki / "ca.pem"}"
cert_file = "{pki / "terminals" / (TERMINAL_ID + ".pem")}"
key_file = "{pki / "terminals" / (TERMINAL_ID + ".key")}"
required_devices = ["card_reader", "pin_pad", "printer"]

[device.card_reader]
driver = "crt591_card_reader"
port = "{sim / "dev" / "card_reader"}"
baudrate = 38400
command_timeout = 40

[device.pin_pad]
driver = "branchline_epp"
port = "{sim / "dev" / "pin_pad"}"
baudrate = 115200
command_timeout = 60

[device.id_reader]
driver = "ga467_id_reader"
port = "{sim / "dev" / "id_reader"}"

[device.printer]
driver = "escpos_printer"
port = "{sim / "dev" / "printer"}"
baudrate = 115200

[device.tube_station]
driver = "modbus_tube_station"
port = "{sim / "dev" / "tube_station"}"
baudrate = 115200
parity = "N"  # the simulator's pseudo-terminal takes no parity
gpio = "sim"
gpio_sim_path = "{sim / "gpio" / "tube_station"}"
"""


def _spawn(name: str, args: list[str], var: Path) -> subprocess.Popen[bytes]:
    log = open(var / "demo" / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
    # start_new_session: Ctrl-C reaches only the demo, which stops the three in order.
    return subprocess.Popen(
        [sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _registered(listen: str, pki: Path) -> bool:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(pki / "operators" / "ops.key").read_bytes(),
        certificate_chain=(pki / "operators" / "ops.pem").read_bytes(),
    )
    with grpc.secure_channel(listen, credentials) as channel:
        try:
            terminal = fleet_pb2_grpc.FleetStub(channel).GetTerminal(
                fleet_pb2.GetTerminalRequest(terminal_id=TERMINAL_ID), timeout=1
            )
        except grpc.RpcError:
            return False
    return terminal.online


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="branchline-demo", description=__doc__)
    parser.add_argument(
        "--var", type=Path, default=Path("var"), help="state folder (default %(default)s)"
    )
    parser.add_argument("--listen", default="127.0.0.1:50051")
    parser.add_argument(
        "--exit-when-ready", action="store_true", help="stop everything once registered (tests)"
    )
    args = parser.parse_args(argv)
    var: Path = args.var.resolve()
    (var / "demo").mkdir(parents=True, exist_ok=True)
    pki = var / "pki"
    if not (pki / "ca.pem").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "branchline.server.main",
                "pki",
                "init",
                str(pki),
                "--terminal",
                TERMINAL_ID,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"made development certificates in {pki}")
    config = var / "demo" / "agent.toml"
    config.write_text(agent_config(var, args.listen))

    procs = {
        "server": _spawn(
            "server",
            [
                "branchline.server.main",
                "--listen",
                args.listen,
                "--db",
                f"sqlite:///{var / 'server' / 'branchline.db'}",
                "--tls-dir",
                str(pki),
            ],
            var,
        ),
        "sim": _spawn("sim", ["branchline.sim.main", "--run-dir", str(var / "sim")], var),
    }
    started = time.monotonic()
    while not (var / "sim" / "dev" / "printer").exists() and time.monotonic() - started < 20:
        time.sleep(0.1)
    procs["agent"] = _spawn("agent", ["branchline.agent.main", "--config", str(config)], var)

    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    ready = False
    code = 0
    while not stop:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(
                    f"{name} exited with code {proc.returncode}; see {var / 'demo' / (name + '.log')}"
                )
                stop, code = True, 1
        if not ready and not stop and _registered(args.listen, pki):
            ready = True
            bin_dir = Path(sys.executable).parent
            print(
                f"""
Branchline demo is up ({time.monotonic() - started:.1f} s): terminal {TERMINAL_ID} registered.

  gRPC server    {args.listen} (mTLS; certificates in {pki})
  health         {bin_dir}/branchline-server health --target {args.listen} --tls-dir {pki}
  terminal       {bin_dir}/branchline-diag --config {config} status
  self-test      {bin_dir}/branchline-diag --config {config} selftest printer
  FX rates       {bin_dir}/branchline-server --db sqlite:///{var / "server" / "branchline.db"} ledger rates --set USD=7.10:7.20
                 then {bin_dir}/branchline-diag --config {config} rates
  receipts       {var / "sim" / "printer"}/
  logs           {var / "demo"}/{{server,sim,agent}}.log

Ctrl-C stops all three.""",
                flush=True,
            )
            if args.exit_when_ready:
                stop = True
        time.sleep(0.2)

    for name in ("agent", "sim", "server"):
        proc = procs[name]
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    for name in ("agent", "sim", "server"):
        try:
            procs[name].wait(30)
        except subprocess.TimeoutExpired:
            procs[name].kill()
    print("stopped server, simulator and agent")
    return code


if __name__ == "__main__":
    sys.exit(main())
