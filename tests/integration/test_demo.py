"""``make demo`` brings up server, simulator and agent, and the terminal registers within 10 s."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.stack import PY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# long: one end-to-end scenario, step by step, over one stack of processes
def test_demo_registers_within_ten_seconds_and_stops_on_ctrl_c(
    request: pytest.FixtureRequest,
) -> None:
    var = Path(tempfile.mkdtemp(prefix="bl-demo-", dir="/tmp"))
    listen = f"127.0.0.1:{free_port()}"
    kiosk = f"127.0.0.1:{free_port()}"
    console = f"127.0.0.1:{free_port()}"
    phone = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [PY, "-m", "branchline.sim.demo", "--var", str(var), "--listen", listen, "--kiosk", kiosk]
        + ["--console", console, "--metrics-listen", "127.0.0.1:0", "--phone", phone],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # A failed assertion must not leave the demo's server, agent and simulator running
    # (they loaded the machine for the rest of the suite): Ctrl-C, as a person would.
    request.addfinalizer(lambda: stop(proc))
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("console") or not line:
            break
    output = "".join(lines)
    assert "Ctrl-C stops them all" in output, output
    # The back-office clerk's console is up at the address the banner gives.
    assert f"console        http://{console}/ (back-office clerk BO-1)" in output, output
    with urllib.request.urlopen(f"http://{console}/healthz", timeout=10) as page:
        assert page.read() == b"ok"
    match = re.search(r"demo is up \(([\d.]+) s\): terminal T-0001 registered", output)
    assert match, output
    assert float(match.group(1)) < 10, output
    assert listen in output and "branchline-diag" in output and "health" in output
    # The server's metrics address, on its own line, answers a scrape.
    metrics = [line.split()[1] for line in lines if line.startswith("metrics ")]
    assert metrics and metrics[0].startswith("http://127.0.0.1:"), output
    with urllib.request.urlopen(metrics[0], timeout=10) as response:
        assert "branchline_terminals_connected" in response.read().decode()

    # The customer's page: its address on a line of its own that begins with "kiosk".
    kiosk_lines = [line for line in output.splitlines() if line.startswith("kiosk ")]
    assert kiosk_lines == [f"kiosk          http://{kiosk}/"], output
    page_url = kiosk_lines[0].split()[1]
    with urllib.request.urlopen(page_url, timeout=10) as page:
        assert page.status == 200 and b"<html" in page.read().lower()
    with urllib.request.urlopen(page_url + "healthz", timeout=10) as health_page:
        assert health_page.read() == b"ok"

    # The phone gateway at the address the banner gives; C-1's TOTP code from the printed
    # authenticator command (the enrolment's URI, branchline-server mobile enrol).
    assert f"phone          https://{phone}/" in output.splitlines(), output
    from tests.browser.phone_support import gateway_up

    assert gateway_up(f"https://{phone}"), (var / "demo" / "mobile.log").read_text()
    assert "mobile banking customer C-1, password branchline-demo" in output, output
    app = next(
        line.split() for line in output.splitlines() if "branchline.sim.authenticator" in line
    )
    # The enrolment runs in the background (argon2id): the URI file appears when done.
    uri_file = Path(app[-1])
    deadline = time.monotonic() + 120
    while not uri_file.exists():
        assert time.monotonic() < deadline, "C-1 never enrolled for mobile banking"
        time.sleep(0.2)
    code = subprocess.run(app, capture_output=True, text=True, timeout=30)
    assert code.returncode == 0 and re.fullmatch(r"\d{6}  \(valid \d+ s more\)\n", code.stdout)

    health = subprocess.run(
        [
            PY,
            "-m",
            "branchline.server.main",
            "health",
            "--target",
            listen,
            "--tls-dir",
            str(var / "pki"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert health.returncode == 0, health.stdout + health.stderr
    assert '"(server)": "SERVING"' in health.stdout

    status = subprocess.run(
        [PY, "-m", "branchline.agent.diag", "--config", str(var / "demo" / "agent.toml"), "status"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert status.returncode == 0 and "connected" in status.stdout

    # The banner's diag commands as printed, in a shell that ran the banner's export line
    # (no --config or --socket: the environment variable finds the demo's agent).
    exports = dict(
        line.split(None, 1)[1].split("=", 1)
        for line in output.splitlines()
        if line.strip().startswith("export ")
    )
    assert set(exports) == {"BRANCHLINE_AGENT_SOCKET"}, output
    shell_env = {k: v for k, v in os.environ.items() if k != "BRANCHLINE_AGENT_SOCKET"}
    terminal = next(
        line.split()[1:] for line in output.splitlines() if line.strip().startswith("terminal ")
    )
    assert terminal[0].endswith("branchline-diag") and terminal[1:] == ["status"], terminal
    printed = subprocess.run(
        terminal, capture_output=True, text=True, timeout=30, env={**shell_env, **exports}
    )
    assert printed.returncode == 0 and "connected" in printed.stdout, printed.stderr

    # The tube deposit the banner describes, run with the very commands it prints.
    commands = {
        line.split()[0]: line.split()[1:]
        for line in output.splitlines()
        if line.strip().startswith(("customer ", "back office "))
    }
    assert "customer" in commands, output
    customer = subprocess.Popen(
        commands["customer"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    teller = [arg for arg in output.split("back office")[1].split("\n")[0].split()][:-2]
    txn = ""
    deadline = time.monotonic() + 60
    while not txn and time.monotonic() < deadline:
        listed = subprocess.run(
            [*teller, "tube", "list", "--state", "in_transit", "--json"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert listed.returncode == 0, listed.stderr
        txns = json.loads(listed.stdout)["txns"]
        txn = txns[0]["txn_id"] if txns else ""
        time.sleep(0.5)
    assert txn, "the demo deposit never left the terminal"
    act = [PY, "-m", "branchline.sim.act", "--run-dir", str(var / "sim"), "--json", "tube_station"]

    def back_office_station() -> str:
        shown = subprocess.run(
            [*act, "status", "--json"], capture_output=True, text=True, timeout=30
        )
        return str(json.loads(shown.stdout)["backoffice_state"])

    wait_until = time.monotonic() + 20
    while back_office_station() != "arrived":
        assert time.monotonic() < wait_until, "the carrier never reached the back office"
        time.sleep(0.2)
    subprocess.run([*act, "backoffice_remove"], check=True, capture_output=True, timeout=30)
    counted = subprocess.run(
        [
            *teller,
            "tube",
            "count",
            txn,
            "--kind",
            "cash",
            "--currency",
            "CNY",
            "--amount",
            "200.00",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert counted.returncode == 0, counted.stdout + counted.stderr
    said, _ = customer.communicate(timeout=60)
    assert customer.returncode == 0, said
    assert "outcome: completed" in said and "balance after: 5200.00 CNY" in said

    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "stopped server, simulator and agent" in rest
    assert not (var / "agent" / "agent.sock").exists()
