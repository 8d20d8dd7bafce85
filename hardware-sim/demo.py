"""``make demo``: server (SQLite), hardware simulator and agent in the foreground.

Makes development certificates on first run, writes the agent's config, starts the three
processes, waits for the terminal to register, prints what to try, and stops all three on
Ctrl-C. Everything lives under ``var/``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

from branchline.sim.demo_bank import (
    BRANCH,
    CLERK,
    DEMO_KSN,
    DEMO_PIN,
    TERMINAL_ID,
    Bank,
    cheques_in_background,
    run_cli,
)
from branchline.sim.demo_phone import DEMO_MOBILE_PASSWORD, GATEWAY, gateway_args, set_up_mobile
from branchline.v1 import (
    agent_local_pb2,
    agent_local_pb2_grpc,
    dispatch_pb2,
    dispatch_pb2_grpc,
    fleet_pb2,
    fleet_pb2_grpc,
)


# long: one TOML template with a table per simulated device, read best as a whole
def agent_config(var: Path, listen: str, kiosk: str = "127.0.0.1:8780") -> str:
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

[transactions]
customer_timeout = 300

# The customer's screen: open the address the banner prints in a browser.
[kiosk]
listen = "{kiosk}"
language = "zh-CN"

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

[device.face_camera]
driver = "face_module"
port = "{sim / "dev" / "face_camera"}"

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

[device.cheque_printer]
driver = "ipp_cheque_printer"
uri = "{sim / "dev" / "cheque_printer.uri"}"
command_timeout = 120  # a 25-leaf book and the customer's take timeout
"""


def _spawn(name: str, args: list[str], var: Path) -> subprocess.Popen[bytes]:
    log = open(var / "demo" / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
    # start_new_session: Ctrl-C reaches only the demo, which stops the three in order.
    return subprocess.Popen(
        [sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _console(server: str, pki: Path, listen: str, var: Path) -> subprocess.Popen[bytes]:
    """The back-office clerk's staff console, once the server knows the clerk."""
    args = ["branchline.server.console.main", "--target", server, "--tls-dir", str(pki)]
    proc = _spawn("console", [*args, "--as", f"teller:{CLERK}", "--listen", listen], var)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and proc.poll() is None and not _listening(listen):
        time.sleep(0.1)
    return proc


def _metrics_url(var: Path) -> str:
    """The address the server printed for its metrics endpoint (the port may be chosen)."""
    for line in (var / "demo" / "server.log").read_text(errors="replace").splitlines():
        if line.startswith("branchline-server metrics on "):
            return line.rsplit(" ", 1)[1]
    return "(not listening yet; see the server's log)"


def _operator_channel(listen: str, pki: Path) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(pki / "operators" / "ops.key").read_bytes(),
        certificate_chain=(pki / "operators" / "ops.pem").read_bytes(),
    )
    return grpc.secure_channel(listen, credentials)


def _staff_branch(listen: str, pki: Path) -> None:
    """The branch and its back-office clerk (idempotent: AddTeller creates or updates)."""
    with _operator_channel(listen, pki) as channel:
        admin = dispatch_pb2_grpc.DispatchAdminStub(channel)
        try:
            admin.AddBranch(
                dispatch_pb2.AddBranchRequest(branch_id=BRANCH, name="Demo"), timeout=10
            )
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:  # type: ignore[attr-defined]
                raise
        admin.AddTeller(
            dispatch_pb2.AddTellerRequest(
                teller_id=CLERK, name="Back office", branch=BRANCH, skills=["back_office"]
            ),
            timeout=10,
        )


def _load_pin_pad(config_state: Path, key_hex: str) -> str:
    with grpc.insecure_channel(f"unix:{config_state / 'agent.sock'}") as channel:
        reply = agent_local_pb2_grpc.AgentLocalStub(channel).RunCommand(
            agent_local_pb2.DeviceCommandRequest(
                device="pin_pad",
                command="load_key",
                params_json=json.dumps(
                    {"algorithm": "tdes", "key_hex": key_hex, "ksn_hex": DEMO_KSN}
                ),
            ),
            timeout=60,
        )
    return str(reply.completion)


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), 0.5):
            return True
    except OSError:
        return False


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


# long: the demo's whole life in order: set-up, start, banner, Ctrl-C, stop
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="branchline-demo", description=__doc__)
    parser.add_argument(
        "--var", type=Path, default=Path("var"), help="state folder (default %(default)s)"
    )
    parser.add_argument("--listen", default="127.0.0.1:50051")
    parser.add_argument(
        "--kiosk", default="127.0.0.1:8780", help="the kiosk page's address (default %(default)s)"
    )
    parser.add_argument(
        "--console", default="127.0.0.1:8790", help="the clerk's staff console (loopback)"
    )
    parser.add_argument(
        "--phone",
        default="127.0.0.1:8443",
        help="the phone gateway's HTTPS address, which the kiosk's QR carries (default %(default)s)",
    )
    parser.add_argument(
        "--metrics-listen",
        default="127.0.0.1:9460",
        help="the server's Prometheus endpoint (default %(default)s; port 0: any free port)",
    )
    parser.add_argument(
        "--exit-when-ready", action="store_true", help="stop everything once registered (tests)"
    )
    args = parser.parse_args(argv)
    var: Path = args.var.resolve()
    (var / "demo").mkdir(parents=True, exist_ok=True)
    pki = var / "pki"
    if not (pki / "ca.pem").exists():
        subprocess.run(
            [sys.executable, "-m", "branchline.server.main", "pki", "init", str(pki),
             "--terminal", TERMINAL_ID, "--teller", CLERK, "--mobile", GATEWAY],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        print(f"made development certificates in {pki}")
    if not (pki / "tellers" / f"{CLERK}.pem").exists():  # a var/ from before the tube demo
        run_cli(
            "branchline.server.main", "pki", "issue", str(pki), "--role", "teller", "--id", CLERK
        )
    if not (pki / "mobile" / f"{GATEWAY}.pem").exists():  # a var/ from before the phone
        run_cli(
            "branchline.server.main", "pki", "issue", str(pki), "--role", "mobile", "--id", GATEWAY
        )
    bank = Bank(var)
    bank.set_up()
    totp_uri = var / "demo" / "mobile-C-1.otpauth"
    config = var / "demo" / "agent.toml"
    config.write_text(agent_config(var, args.listen, args.kiosk))

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
                "--hsm",
                bank.hsm_url,
                "--pan-token-key",
                str(bank.pan_key),
                "--metrics-listen",
                args.metrics_listen,
                "--mobile-url",
                f"https://{args.phone}",
            ],
            var,
        ),
        "mobile": _spawn("mobile", gateway_args(pki, args.phone, args.listen), var),
        "sim": _spawn("sim", ["branchline.sim.main", "--run-dir", str(var / "sim")], var),
    }
    started = time.monotonic()
    # The agent starts once the simulator's devices exist and the server listens: started
    # earlier, it would back off after a refused connection and register seconds later.
    while time.monotonic() - started < 20 and not (
        (var / "sim" / "dev" / "printer").exists() and _listening(args.listen)
    ):
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
            up_after = time.monotonic() - started
            # Hashing the password (argon2id) and loading dlib for the cheque sale's faces
            # take seconds of CPU: after registration, in the background, each saying when
            # it is done.
            threading.Thread(
                target=set_up_mobile, args=(bank.server, totp_uri), daemon=True
            ).start()
            threading.Thread(target=cheques_in_background, args=(bank,), daemon=True).start()
            _staff_branch(args.listen, pki)
            loaded = _load_pin_pad(var / "agent", bank.pin_pad_key())
            procs["console"] = _console(args.listen, pki, args.console, var)
            bin_dir = Path(sys.executable).parent
            print(f"metrics        {_metrics_url(var)}  (Prometheus text format)", flush=True)
            teller = f"{bin_dir}/branchline-teller --target {args.listen} --tls-dir {pki} --as teller:{CLERK}"
            print(
                f"""
Branchline demo is up ({up_after:.1f} s): terminal {TERMINAL_ID} registered.

In another shell, first (branchline-diag then finds this demo's agent):
  export BRANCHLINE_AGENT_SOCKET={var / "agent" / "agent.sock"}

The customer's screen, to open in a browser (Chromium in kiosk mode at a branch):
kiosk          http://{args.kiosk}/

  gRPC server    {args.listen} (mTLS; certificates in {pki})
  health         {bin_dir}/branchline-server health --target {args.listen} --tls-dir {pki}
  terminal       {bin_dir}/branchline-diag status
  self-test      {bin_dir}/branchline-diag selftest printer
  FX rates       {bin_dir}/branchline-server --db sqlite:///{var / "server" / "branchline.db"} ledger rates --set USD=7.10:7.20
                 then {bin_dir}/branchline-diag rates
  receipts       {var / "sim" / "printer"}/
  logs           {var / "demo"}/{{server,sim,agent,mobile}}.log

Tube deposit (customer C-1: the simulator's visa card, PIN {DEMO_PIN}; PIN pad key {loaded}):
  customer       {sys.executable} -m branchline.sim.customer --state-dir {var / "agent"} --run-dir {var / "sim"} deposit --account C1-CNY --amount 200.00
  back office    {teller} tube list
                 {sys.executable} -m branchline.sim.act --run-dir {var / "sim"} tube_station backoffice_remove
                 {teller} tube count TXN --kind cash --currency CNY --amount 200.00
  withdrawal     ... customer withdraw --account C1-CNY --amount 50.00, then
                 {teller} tube send TXN --carrier 8 and
                 {sys.executable} -m branchline.sim.act --run-dir {var / "sim"} tube_station backoffice_send carrier_id=8
  balances       {bin_dir}/branchline-server --db {bank.db} ledger balances --customer C-1

Phone (scan the kiosk's QR, or open the address and type the kiosk's short code):
phone          https://{args.phone}/
  mobile banking customer C-1, password {DEMO_MOBILE_PASSWORD}; a TOTP code:
                 {sys.executable} -m branchline.sim.authenticator {totp_uri}
                 (or scan {totp_uri.with_suffix(".png")} with an authenticator app)

Ctrl-C stops them all.""",
                flush=True,
            )
            print(
                f"console        http://{args.console}/ (back-office clerk {CLERK}); other roles:"
            )
            print(
                f"               {bin_dir}/branchline-console --target {args.listen} "
                f"--tls-dir {pki} --as operator:ops|lobby:ID|teller:ID --listen 127.0.0.1:8791",
                flush=True,
            )
            if args.exit_when_ready:
                stop = True
        time.sleep(0.2)

    names = [n for n in ("console", "mobile", "agent", "sim", "server") if n in procs]
    for name in names:
        proc = procs[name]
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    for name in names:
        try:
            procs[name].wait(30)
        except subprocess.TimeoutExpired:
            procs[name].kill()
    print("stopped server, simulator and agent")
    return code


if __name__ == "__main__":
    sys.exit(main())
