"""Issue 5 acceptance, video-teller calls: server, simulator and three agents as real
processes; ``branchline-teller``'s waiting device commands as processes too, its other
commands through its ``main`` in the test's process (cli_support).

Three terminals queue for one teller and each sees its position pushed as the queue moves;
in the session the teller relays signalling, reads the card remotely (masked PAN only),
asks for the PIN (the PIN block comes translated by the HSM to the teller ZPK and is
decrypted here, in the test only), prints, and has the customer sign (the simulator's
pillow-drawn PNG, stored content-hashed with the call). A server restart mid-queue loses
nothing; role violations and malformed requests are refused naming the rule or the field.
"""
# long-module: the scenarios of one service, sharing its fixtures; split by topic would repeat them

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, cast

import grpc
import pytest

from branchline.common import paycrypto
from branchline.common.grpc_errors import error_details
from branchline.server import pki
from branchline.server.hsm import SoftHsm, open_hsm
from branchline.server.hsm_cli import main as hsm_main
from branchline.server.storage.testing import TEST_PG_DSN_VARIABLE, temporary_postgres_schema
from branchline.v1 import (
    agent_local_pb2,
    agent_local_pb2_grpc,
    calls_pb2,
    calls_pb2_grpc,
    common_pb2,
)
from branchline.v1 import dispatch_pb2 as dpb
from branchline.v1 import dispatch_pb2_grpc as dpb_grpc
from branchline.v1 import terminal_link_pb2 as link_pb2
from branchline.v1 import terminal_link_pb2_grpc as link_pb2_grpc
from tests.integration.calls_support import BRANCH, connected, local, request, start_agent
from tests.integration.cli_support import in_process
from tests.integration.dispatch_support import channel, cli
from tests.integration.launch import Background, free_port, together
from tests.integration.pin_support import BDK, KSN0, PAN, hsm_cli
from tests.integration.stack import PY, Stack, wait_for

PIN = "4821"
ID_NUMBER = "11010519491231002X"  # the simulator's "valid" ID card
SDP_OFFER = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
SDP_ANSWER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=kiosk\r\n"
K1_DEVICES = ("card_reader", "pin_pad", "printer", "id_reader")
CANDIDATE = "candidate:842163049 1 udp 1677729535 192.0.2.10 3478 typ srflx"


class CallWatch:
    """An agent's AgentLocal.WatchCall in the background, its events collected."""

    def __init__(self, stub: agent_local_pb2_grpc.AgentLocalStub) -> None:
        self.events: list[agent_local_pb2.CallEvent] = []
        self._call = stub.WatchCall(agent_local_pb2.WatchCallRequest())
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._call:
                self.events.append(event)
        except grpc.RpcError:
            pass

    def wait(self, what: str, match: Callable[[agent_local_pb2.CallEvent], bool]) -> Any:
        return wait_for(
            lambda: next((e for e in list(self.events) if match(e)), None),
            30,
            f"{what}; seen {[(e.kind, e.call.state, e.call.position) for e in self.events]}",
            interval=0.05,
        )

    def positions(self) -> list[int]:
        """Every queue position pushed, in order, without repeats."""
        out: list[int] = []
        for e in self.events:
            if e.kind == "call" and e.call.state == calls_pb2.CALL_STATE_QUEUED:
                if not out or out[-1] != e.call.position:
                    out.append(e.call.position)
        return out

    def stop(self) -> None:
        self._call.cancel()


def queued_at(position: int) -> Callable[[agent_local_pb2.CallEvent], bool]:
    return lambda e: (
        e.kind == "call"
        and e.call.state == calls_pb2.CALL_STATE_QUEUED
        and e.call.position == position
    )


def state_is(state: int) -> Callable[[agent_local_pb2.CallEvent], bool]:
    return lambda e: e.kind == "call" and e.call.state == state


def teller(stack: Stack, who: str, *args: str) -> dict[str, Any]:
    result = cli(stack, who, *args, "--json")
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return cast(dict[str, Any], json.loads(result.stdout.splitlines()[-1]))


def teller_refused(stack: Stack, who: str, *args: str) -> dict[str, str]:
    result = cli(stack, who, *args, "--json")
    assert result.returncode == 1, f"{args}: {result.stdout}{result.stderr}"
    return cast(dict[str, str], json.loads(result.stdout)["error"])


def in_background(stack: Stack, who: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            PY,
            "-m",
            "branchline.server.teller",
            "--target",
            f"127.0.0.1:{stack.server_port}",
            "--tls-dir",
            str(stack.pki),
            "--as",
            who,
            *args,
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    return cast(dict[str, Any], json.loads(out.splitlines()[-1]))


def busy_with(stack: Stack, device: str, command: str) -> bool:
    stub = local(stack, "K-1")
    status = stub.GetStatus(agent_local_pb2.GetStatusRequest(), timeout=5)
    return any(d.name == device and d.detail == f"running {command}" for d in status.devices)


@pytest.fixture
def call_stack(stack: Stack) -> Iterator[Stack]:
    for terminal in ("K-1", "K-2", "K-3"):
        pki.issue_terminal_cert(stack.pki, terminal)
    for name in ("T1", "T2"):
        pki.issue_user_cert(stack.pki, "teller", name)
    in_process(hsm_main, ["new-master-key", "--out", str(stack.root / "hsm-master.key")])
    hsm_cli(stack, "import-key", "BDK", "--type", "bdk", "--algorithm", "tdes", "--hex", BDK)
    hsm_cli(stack, "create-key", "TELLER-ZPK", "--type", "zpk", "--algorithm", "tdes")
    yield stack
    # The extra agents and replica; the stack fixture stops agent, sim and server.
    for name, proc in list(stack.procs.items()):
        if name not in ("agent", "sim", "server"):
            proc.stop()


def start_server(stack: Stack, port: int) -> None:
    soft_url = (
        f"soft://{stack.root / 'keystore.json'}?master_key_file={stack.root / 'hsm-master.key'}"
    )
    stack.start_server(
        extra=[
            "--shutdown-drain",
            "0",
            "--listen",
            f"127.0.0.1:{port}",
            "--hsm",
            soft_url,
            "--pan-token-key",
            str(stack.root / "pan-token.key"),
            "--teller-zpk",
            "TELLER-ZPK",
        ]
    )


def populate(stack: Stack) -> None:
    admin = dpb_grpc.DispatchAdminStub(channel(stack, "operator:ops"))
    admin.AddBranch(dpb.AddBranchRequest(branch_id=BRANCH, name="South"), timeout=10)
    for name in ("T1", "T2"):
        admin.AddTeller(
            dpb.AddTellerRequest(
                teller_id=name, name=f"Teller {name}", branch=BRANCH, skills=["loan"]
            ),
            timeout=10,
        )


def load_pin_pad_key(stack: Stack) -> None:
    initial = json.loads(
        hsm_cli(stack, "--json", "derive-initial-key", "--bdk", "BDK", "--ksn", KSN0).stdout
    )
    reply = local(stack, "K-1").RunCommand(
        agent_local_pb2.DeviceCommandRequest(
            device="pin_pad",
            command="load_key",
            params_json=json.dumps(
                {"algorithm": "tdes", "key_hex": initial["initial_key"], "ksn_hex": KSN0}
            ),
        ),
        timeout=30,
    )
    assert reply.completion == "success", reply.detail


def refused(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    error = cast(grpc.Call, info.value)
    return error.code(), error.details() or ""


# long: one end-to-end scenario, step by step, over one stack of processes
def test_three_terminals_queue_and_the_teller_drives_the_first_ones_devices(
    call_stack: Stack,
) -> None:
    stack = call_stack
    stack.branch = BRANCH
    port = free_port()
    # Server, simulator and the three agents start side by side (each agent connects once
    # the server listens, on the port chosen here).
    stack.server_port = port
    sim = Background(stack.start_sim)

    def first_agent() -> None:
        sim.join()  # K-1 opens the simulator's devices
        start_agent(stack, "K-1", K1_DEVICES)

    together(
        lambda: start_server(stack, port),
        first_agent,
        lambda: start_agent(stack, "K-2", ()),
        lambda: start_agent(stack, "K-3", ()),
    )
    populate(stack)
    for terminal in ("K-1", "K-2", "K-3"):
        wait_for(lambda t=terminal: connected(local(stack, t)), 30, f"{terminal} connected")  # type: ignore[misc]
    wait_for(
        lambda: all(
            d.status == 1
            for d in local(stack, "K-1")
            .GetStatus(agent_local_pb2.GetStatusRequest(), timeout=5)
            .devices
        ),
        30,
        "K-1's devices online",
    )
    load_pin_pad_key(stack)
    watches = {t: CallWatch(local(stack, t)) for t in ("K-1", "K-2", "K-3")}
    try:
        # -- three terminals queue for the one teller (off duty yet) -----------------------
        ids = {}
        for number, terminal in enumerate(("K-1", "K-2", "K-3"), start=1):
            call = request(stack, terminal)
            assert (call.state, call.position) == (calls_pb2.CALL_STATE_QUEUED, number)
            assert call.estimated_wait_seconds > 0
            ids[terminal] = call.call_id
        for number, terminal in enumerate(("K-1", "K-2", "K-3"), start=1):
            watches[terminal].wait(f"{terminal} at {number}", queued_at(number))
        queue = teller(stack, "teller:T1", "call", "queue")
        assert [(c["call_id"], c["position"]) for c in queue["calls"]] == [
            (ids["K-1"], 1),
            (ids["K-2"], 2),
            (ids["K-3"], 3),
        ]

        # -- the teller comes on duty: K-1 rings, the others move up (pushed) -------------
        teller(stack, "teller:T1", "duty", "on")
        watches["K-1"].wait("K-1 ringing", state_is(calls_pb2.CALL_STATE_RINGING))
        watches["K-2"].wait("K-2 moved to 1", queued_at(1))
        watches["K-3"].wait("K-3 moved to 2", queued_at(2))
        current = teller(stack, "teller:T1", "call", "current", "--wait", "10")
        assert (current["call_id"], current["terminal_id"]) == (ids["K-1"], "K-1")
        call_id = ids["K-1"]
        assert teller(stack, "teller:T1", "call", "answer")["state"] == "CALL_STATE_ACTIVE"
        watches["K-1"].wait("K-1 active", state_is(calls_pb2.CALL_STATE_ACTIVE))

        # -- signalling, relayed both ways ------------------------------------------------
        teller(stack, "teller:T1", "call", "signal", call_id, "offer", "--payload", SDP_OFFER)
        offer = watches["K-1"].wait("the offer at the terminal", lambda e: e.kind == "signal")
        assert (offer.signal.kind, offer.signal.payload) == ("offer", SDP_OFFER)
        k1 = local(stack, "K-1")
        for kind, payload in (("answer", SDP_ANSWER), ("candidate", CANDIDATE)):
            k1.SendCallSignal(
                agent_local_pb2.SendCallSignalRequest(call_id=call_id, kind=kind, payload=payload),
                timeout=10,
            )
        seen = cli(stack, "teller:T1", "call", "signals", call_id, "--count", "2", "--json")
        got = [json.loads(line) for line in seen.stdout.splitlines()]
        assert [(s["kind"], s["payload"]) for s in got] == [
            ("answer", SDP_ANSWER),
            ("candidate", CANDIDATE),
        ]

        # -- remote card read: the teller sees the masked PAN only ------------------------
        reading = in_background(
            stack, "teller:T1", "call", "device", call_id, "read_card", "--wait"
        )
        wait_for(lambda: busy_with(stack, "card_reader", "accept_card"), 30, "card slot open")
        stack.sim_act("card_reader", "insert", card="visa")
        card = finished(reading)
        assert (
            card["completion"] == "success" and card["fields"]["pan_masked"] == "476173******0010"
        )
        assert PAN not in json.dumps(card)

        # -- PIN: translated by the HSM to the teller ZPK --------------------------------
        asking = in_background(stack, "teller:T1", "call", "device", call_id, "pin", "--wait")
        wait_for(lambda: busy_with(stack, "pin_pad", "read_pin"), 30, "PIN entry started")
        stack.sim_act("pin_pad", "press", keys=PIN + "E")
        pin = finished(asking)
        assert (pin["completion"], pin["zpk_name"], pin["pin_block_format"]) == (
            "success",
            "TELLER-ZPK",
            0,
        )
        block = base64.b64decode(pin["pin_block"])
        # Only here: the teller side's key opens it. The device's block never reached the teller.
        zpk = _teller_zpk(stack)
        assert paycrypto.decode_format0(paycrypto.decrypt_pin_block_tdes(zpk, block), PAN) == PIN

        # -- remote ID read: name, masked ID number, validity -----------------------------
        stack.sim_act("id_reader", "place", card="valid")
        identity = teller(stack, "teller:T1", "call", "device", call_id, "read_id", "--wait")
        assert identity["completion"] == "success", identity
        assert identity["fields"]["valid"] == "True" and identity["fields"]["name"]
        assert identity["fields"]["id_number_masked"].endswith("002X")
        assert ID_NUMBER not in json.dumps(identity)
        stack.sim_act("id_reader", "remove")

        # -- print ------------------------------------------------------------------------
        printed = teller(
            stack,
            "teller:T1",
            "call",
            "device",
            call_id,
            "print",
            "--title",
            "Loan agreement",
            "--line",
            "Amount: 5000.00",
            "--line",
            "Term: 24 months",
            "--wait",
        )
        assert printed["completion"] == "success" and int(printed["fields"]["bytes"]) > 0

        # -- the customer confirms with a signature ---------------------------------------
        sign_cmd = teller(
            stack,
            "teller:T1",
            "call",
            "device",
            call_id,
            "signature",
            "--title",
            "I agree",
            "--line",
            "Loan 5000.00",
        )
        asked = watches["K-1"].wait(
            "the signature request on the terminal",
            lambda e: e.kind == "command" and e.command.kind == "signature",
        )
        assert asked.command.command_id == int(sign_cmd["command_id"])
        result: dict[str, agent_local_pb2.SignResult] = {}

        def sign() -> None:
            result["r"] = k1.Sign(
                agent_local_pb2.SignRequest(
                    command_id=asked.command.command_id, confirm=True, timeout_seconds=20
                ),
                timeout=60,
            )

        signer = threading.Thread(target=sign)
        signer.start()
        wait_for(
            lambda: busy_with(stack, "pin_pad", "read_signature"),
            30,
            "the pad asks for a signature",
        )
        drawn = wait_for(lambda: _try_sign(stack), 10, "the customer signs")
        signer.join(60)
        signed = result["r"]
        assert signed.completion == "success" and signed.signature_sha256 == drawn["sha256"]
        results = cli(stack, "teller:T1", "call", "results", call_id, "--count", "5", "--json")
        done = [json.loads(line) for line in results.stdout.splitlines()]
        assert [d["kind"] for d in done] == ["read_card", "pin", "read_id", "print", "signature"]
        assert done[4]["signature_sha256"] == drawn["sha256"]
        with sqlite3.connect(stack.root / "server.db") as db:
            stored = db.execute(
                "SELECT call_id, sha256, data FROM call_signatures WHERE sha256 = ?",
                (drawn["sha256"],),
            ).fetchone()
        assert stored[0] == call_id and hashlib.sha256(stored[2]).hexdigest() == stored[1]
        assert stored[2].startswith(b"\x89PNG")

        # -- violations while K-1's call is active ----------------------------------------
        stranger = calls_pb2_grpc.CallsStub(channel(stack, "teller:T2"))
        code, message = refused(
            lambda: stranger.SendCommand(
                calls_pb2.SendCommandRequest(call_id=call_id, kind="read_card"), timeout=10
            )
        )
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert "a teller drives only the terminal of their own call" in message
        error = teller_refused(
            stack, "teller:T2", "call", "signal", call_id, "offer", "--payload", "v=0"
        )
        assert error["code"] == "PERMISSION_DENIED" and "their own call" in error["message"]
        code, message = refused(
            lambda: local(stack, "K-3").LeaveQueue(
                agent_local_pb2.LeaveQueueRequest(call_id=call_id), timeout=10
            )
        )
        assert (
            code == grpc.StatusCode.PERMISSION_DENIED
            and "a terminal acts only as itself" in message
        )
        as_terminal = calls_pb2_grpc.CallsStub(channel(stack, "terminal:K-2"))
        code, message = refused(
            lambda: as_terminal.ListQueue(calls_pb2.ListQueueRequest(), timeout=10)
        )
        assert code == grpc.StatusCode.PERMISSION_DENIED and "teller" in message
        error = teller_refused(
            stack, "teller:T1", "call", "signal", call_id, "offer", "--payload", "x" * 20_000
        )
        assert error["code"] == "INVALID_ARGUMENT" and error["message"].startswith("payload:")
        code, message = refused(
            lambda: stranger.SendCommand(
                calls_pb2.SendCommandRequest(call_id=call_id, kind="erase_disk"), timeout=10
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("kind:")
        with pytest.raises(grpc.RpcError) as info:
            stranger.SendCommand(
                calls_pb2.SendCommandRequest(call_id=call_id, kind="erase_disk"), timeout=10
            )
        assert error_details(info.value).field == "kind"  # as data: google.rpc.BadRequest
        with pytest.raises(grpc.RpcError) as info:
            stranger.EndCall(calls_pb2.EndCallRequest(call_id="C" * 5000), timeout=10)
        long_id = error_details(info.value)
        assert (long_id.status, long_id.field) == ("INVALID_ARGUMENT", "call_id")
        assert (
            long_id.message.startswith("call_id: is 5000 characters") and len(long_id.message) < 200
        )
        code, message = refused(
            lambda: local(stack, "K-3").RequestTeller(
                agent_local_pb2.RequestTellerRequest(
                    business_type="Loan!", mode=calls_pb2.CALL_MODE_VIDEO_SERVICE
                ),
                timeout=10,
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("business_type:")

        # -- the call ends: K-2 rings, K-3 moves to 1 -------------------------------------
        teller(stack, "teller:T1", "call", "end", call_id)
        watches["K-1"].wait("K-1 ended", state_is(calls_pb2.CALL_STATE_ENDED))
        watches["K-2"].wait("K-2 ringing", state_is(calls_pb2.CALL_STATE_RINGING))
        watches["K-3"].wait("K-3 moved to 1", queued_at(1))
        assert watches["K-1"].positions() == [1]
        assert watches["K-2"].positions() == [2, 1]
        assert watches["K-3"].positions() == [3, 2, 1]
        stack.sim_act("card_reader", "take")  # the card, ejected at the end of the call

        # -- a server restart mid-queue loses nothing -------------------------------------
        before = teller(stack, "teller:T1", "call", "queue")["calls"]
        stack.procs["server"].stop()
        start_server(stack, port)
        for terminal in ("K-1", "K-2", "K-3"):
            wait_for(lambda t=terminal: connected(local(stack, t)), 30, f"{terminal} reconnected")  # type: ignore[misc]
        after = teller(stack, "teller:T1", "call", "queue")["calls"]
        keep = ("call_id", "state", "teller_id", "position", "terminal_id")
        assert [{k: c.get(k) for k in keep} for c in after] == [
            {k: c.get(k) for k in keep} for c in before
        ]
        assert [(c["terminal_id"], c["state"]) for c in after] == [
            ("K-2", "CALL_STATE_RINGING"),
            ("K-3", "CALL_STATE_QUEUED"),
        ]
        # The queue carries on, and its changes are still pushed: K-2 hangs up while its
        # call rings, K-3 rings next.
        left = local(stack, "K-2").LeaveQueue(agent_local_pb2.LeaveQueueRequest(), timeout=10)
        assert left.state == calls_pb2.CALL_STATE_LEFT
        ringing = watches["K-3"].wait("K-3 ringing", state_is(calls_pb2.CALL_STATE_RINGING))
        assert (ringing.call.call_id, ringing.call.teller_id) == (ids["K-3"], "T1")
        teller(stack, "teller:T1", "call", "answer", ids["K-3"])
        teller(stack, "teller:T1", "call", "end", ids["K-3"])
        assert teller(stack, "teller:T1", "call", "queue")["calls"] == []
    finally:
        for watch in watches.values():
            watch.stop()

    # The full PAN is in no log of any process.
    for name, proc in stack.procs.items():
        assert PAN not in proc.log(), f"{name}'s log holds the PAN"


def _try_sign(stack: Stack) -> dict[str, str] | None:
    try:
        return stack.sim_act("pin_pad", "sign", name="Li Lei")
    except grpc.RpcError:
        return None  # the pad is not asking yet


def _teller_zpk(stack: Stack) -> bytes:
    """The teller side's copy of the zone PIN key (here: read from the HSM's keystore)."""
    hsm = open_hsm(
        f"soft://{stack.root / 'keystore.json'}?master_key_file={stack.root / 'hsm-master.key'}"
    )
    assert isinstance(hsm, SoftHsm)
    return hsm.keystore.records()["TELLER-ZPK"].value


def link_request(stack: Stack, terminal: str, port: int) -> link_pb2.ServerMessage:
    """Register over TerminalLink as an agent would and ask for a teller; the answer."""
    register = link_pb2.Register(
        terminal_id=terminal,
        branch=BRANCH,
        kind=common_pb2.TERMINAL_KIND_SELF_SERVICE,
        agent_version="test",
        service_state=common_pb2.SERVICE_STATE_IN_SERVICE,
    )
    ask_for = calls_pb2.CallRequest(
        request_id=f"r-{terminal}", business_type="loan", mode=calls_pb2.CALL_MODE_VIDEO_SERVICE
    )
    with channel(stack, f"terminal:{terminal}", port) as ch:
        replies = link_pb2_grpc.TerminalLinkStub(ch).Connect(
            iter(
                [
                    link_pb2.TerminalMessage(seq=1, register=register),
                    link_pb2.TerminalMessage(seq=2, call_request=ask_for),
                ]
            ),
            timeout=30,
        )
        for reply in replies:
            if reply.ack_seq == 2:
                return reply
    raise AssertionError(f"{terminal}: no answer to call_request")


def race(actions: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = actions[i]()
        except grpc.RpcError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    yield request.getfixturevalue("pg_url")


@pytest.fixture
def pg_url() -> Iterator[str]:
    dsn = os.environ.get(TEST_PG_DSN_VARIABLE)
    if not dsn:
        pytest.skip(f"{TEST_PG_DSN_VARIABLE} is not set")
    with temporary_postgres_schema(dsn) as url:
        yield url


# long: one end-to-end scenario, step by step, over one stack of processes
def test_concurrent_terminals_and_answers_one_call_per_teller(
    backend: str | None, call_stack: Stack
) -> None:
    """Six terminals ask at the same instant (through two replicas on PostgreSQL) while one
    teller is free: one call rings, five queue at distinct positions; four clients of that
    teller answering at once: one answer wins."""
    # ``backend`` comes first: its schema is dropped after the stack's servers stopped (a
    # drop waits for every connection to it: the other way round it waited forever).
    stack = call_stack
    terminals = [f"KC-{i}" for i in range(6)]
    for terminal in terminals:
        pki.issue_terminal_cert(stack.pki, terminal)
    db = ["--db", backend] if backend else []
    stack.start_server(extra=["--shutdown-drain", "0", "--replica", "r1", *db])
    ports = [stack.server_port]
    if backend:
        other = stack._spawn(
            "server-b",
            [
                "branchline.server.main",
                "--listen",
                "127.0.0.1:0",
                "--db",
                backend,
                "--tls-dir",
                str(stack.pki),
                "--replica",
                "r2",
                "--shutdown-drain",
                "0",
            ],
        )
        ports.append(
            wait_for(
                lambda: next(
                    (
                        int(line.rsplit(":", 1)[1])
                        for line in other.log().splitlines()
                        if line.startswith("branchline-server listening on")
                    ),
                    0,
                ),
                30,
                "replica b listening",
            )
        )
    populate(stack)
    teller(stack, "teller:T1", "duty", "on")
    replies = race(
        [
            partial(link_request, stack, terminal, ports[i % len(ports)])
            for i, terminal in enumerate(terminals)
        ]
    )
    states = [r.call_update.state for r in replies]
    assert states.count(calls_pb2.CALL_STATE_RINGING) == 1, replies
    assert states.count(calls_pb2.CALL_STATE_QUEUED) == 5, replies
    queue = teller(stack, "teller:T1", "call", "queue")["calls"]
    assert sorted(c["position"] for c in queue if c["state"] == "CALL_STATE_QUEUED") == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert [c["teller_id"] for c in queue if c["state"] == "CALL_STATE_RINGING"] == ["T1"]
    stubs = [
        calls_pb2_grpc.CallsStub(channel(stack, "teller:T1", ports[i % len(ports)]))
        for i in range(4)
    ]
    answers = race(
        [partial(stub.AnswerCall, calls_pb2.AnswerCallRequest(), timeout=20) for stub in stubs]
    )
    won = [a for a in answers if isinstance(a, calls_pb2.Call)]
    assert len(won) == 1 and won[0].state == calls_pb2.CALL_STATE_ACTIVE, answers
    assert all(
        cast(grpc.Call, a).code() == grpc.StatusCode.FAILED_PRECONDITION
        for a in answers
        if not isinstance(a, calls_pb2.Call)
    )
    # T2 coming on duty takes exactly the head of the queue; T1 still holds only one call.
    teller(stack, "teller:T2", "duty", "on")
    queue = teller(stack, "teller:T1", "call", "queue")["calls"]
    holders = [c["teller_id"] for c in queue if c["state"] != "CALL_STATE_QUEUED"]
    assert sorted(holders) == ["T1", "T2"]
