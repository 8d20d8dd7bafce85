# long-module: one cluster of processes (PostgreSQL schema, two replicas, nginx, simulator, agent) shared by its scenarios
"""Issue 17 part 2: two server replicas on one PostgreSQL database behind nginx (TLS
passthrough, ``ops/nginx/branchline-replicas.conf.template``), with the simulator and an
agent, the phone gateway, staff and raw TerminalLink clients all connecting through the
balancer.

Pushes cross replicas (rates; a teller's call signal; a phone's pairing made through the
gateway; a phone's job stored through one replica for a terminal on the other; the back
office's tube change through the delivery bus, whose ``link_deliveries`` row shows which
replica delivered it; a fleet watch on one replica seeing a terminal register on the
other), and SIGKILL of the replica holding the agent's stream moves the agent to the other
within 10 s in the middle of a withdrawal, which still posts exactly once.

The replicas run with ``--rate-poll-seconds 60 --bus-backstop-seconds 60``: the pushers
and watches the bus wakes (rates, phone jobs, the fleet watch) would not look at the
database again within any of these tests' waits, so what arrives was carried by the bus's
NOTIFY, not by a poll.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.pool import NullPool

from bench import balancer
from branchline.server import fleet_registry, pki
from branchline.server.delivery.schema import link_deliveries
from branchline.server.ledger.schema import journal_entries, journal_legs
from branchline.server.storage.testing import TEST_PG_DSN_VARIABLE, temporary_postgres_schema
from branchline.v1 import (
    calls_pb2,
    calls_pb2_grpc,
    common_pb2,
    fleet_pb2,
    fleet_pb2_grpc,
    mobile_pb2,
    mobile_pb2_grpc,
)
from branchline.v1 import dispatch_pb2 as dpb
from branchline.v1 import dispatch_pb2_grpc as dpb_grpc
from branchline.v1 import terminal_link_pb2 as link_pb
from branchline.v1 import terminal_link_pb2_grpc as link_grpc
from branchline.v1 import tube_pb2 as pb
from branchline.v1 import tube_pb2_grpc as pb_grpc
from tests.integration import tube_support as ts
from tests.integration.dispatch_support import cli
from tests.integration.stack import Proc, Stack, wait_for

RAW_TERMINALS = ("T-R1", "T-R2", "T-R3", "T-R4")
# Raw terminals connected straight to one replica (not through nginx) by a test.
DIRECT_TERMINALS = ("T-J1", "T-F1")
# Longer than any wait below: only the bus's NOTIFY wakes the pushers and watches in time.
BACKSTOP = "60"
CALL_TELLER = "T1"
AMOUNT = Decimal("20.00")


def _skip_reason() -> str | None:
    if not os.environ.get(TEST_PG_DSN_VARIABLE):
        return f"{TEST_PG_DSN_VARIABLE} is not set (replicas need PostgreSQL)"
    return balancer.missing()


pytestmark = [
    pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason())),
    # The module's cluster (bank, two replicas, nginx, gateway, simulator, agent) starts in
    # the first test's set-up: as long as make test allows any test.
    pytest.mark.timeout(300),
]


class RawTerminal:
    """A TerminalLink stream as an agent holds one, from a thread: registers, answers
    nothing, collects every server message."""

    def __init__(
        self, stack: Stack, terminal_id: str, port: int, devices: tuple[str, ...] = ()
    ) -> None:
        self.terminal_id = terminal_id
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(stack.pki / "ca.pem").read_bytes(),
            private_key=(stack.pki / "terminals" / f"{terminal_id}.key").read_bytes(),
            certificate_chain=(stack.pki / "terminals" / f"{terminal_id}.pem").read_bytes(),
        )
        # Its own TCP connection, as a real terminal has.
        self.channel = grpc.secure_channel(
            f"127.0.0.1:{port}", credentials, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        self._outgoing: queue.Queue[link_pb.TerminalMessage | None] = queue.Queue()
        self.received: list[link_pb.ServerMessage] = []
        self.seq = 1
        self._outgoing.put(
            link_pb.TerminalMessage(
                seq=1,
                register=link_pb.Register(
                    terminal_id=terminal_id,
                    branch=ts.BRANCH,
                    kind=common_pb2.TERMINAL_KIND_SELF_SERVICE,
                    agent_version="test",
                    service_state=common_pb2.SERVICE_STATE_IN_SERVICE,
                    devices=[
                        common_pb2.Device(
                            name=name, driver="test", status=common_pb2.DEVICE_STATUS_ONLINE
                        )
                        for name in devices
                    ],
                ),
            )
        )
        self._call = link_grpc.TerminalLinkStub(self.channel).Connect(iter(self._requests()))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ack = wait_for(lambda: self.first("register_ack"), 15, f"{terminal_id} registered")
        self.replica: str = ack.register_ack.server_replica

    def _requests(self) -> Iterator[link_pb.TerminalMessage]:
        while True:
            message = self._outgoing.get()
            if message is None:
                return
            yield message

    def _read(self) -> None:
        try:
            for message in self._call:
                self.received.append(message)
        except grpc.RpcError:
            pass

    def send(self, **body: object) -> int:
        self.seq += 1
        self._outgoing.put(link_pb.TerminalMessage(seq=self.seq, **body))  # type: ignore[arg-type]
        return self.seq

    def first(self, body: str) -> link_pb.ServerMessage | None:
        return next((m for m in self.received if m.WhichOneof("body") == body), None)

    def all(self, body: str) -> list[link_pb.ServerMessage]:
        return [m for m in self.received if m.WhichOneof("body") == body]

    def close(self) -> None:
        self._outgoing.put(None)
        self._call.cancel()
        self.channel.close()


@dataclass
class Cluster:
    stack: Stack
    url: str
    engine: Engine
    replicas: dict[str, tuple[Proc, int]] = field(default_factory=dict)
    nginx: subprocess.Popen[bytes] | None = None
    gateway_port: int = 0
    raw: list[RawTerminal] = field(default_factory=list)

    def port_of(self, replica: str) -> int:
        return self.replicas[replica][1]

    def holder(self, terminal_id: str) -> str | None:
        record = fleet_registry.get_terminal(self.engine, terminal_id)
        return record.connected_replica if record is not None and record.online else None

    def other(self, replica: str) -> str:
        return next(name for name in self.replicas if name != replica)

    def channel(self, folder: str, name: str, port: int | None = None) -> grpc.Channel:
        pki_dir = self.stack.pki
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(pki_dir / "ca.pem").read_bytes(),
            private_key=(pki_dir / folder / f"{name}.key").read_bytes(),
            certificate_chain=(pki_dir / folder / f"{name}.pem").read_bytes(),
        )
        target = f"127.0.0.1:{port or self.stack.server_port}"
        return grpc.secure_channel(
            target, credentials, options=[("grpc.use_local_subchannel_pool", 1)]
        )

    def raw_on_each_replica(self) -> dict[str, RawTerminal]:
        """Raw terminals through the balancer until one sits on every replica."""
        found = {t.replica: t for t in self.raw}
        for terminal_id in RAW_TERMINALS:
            if len(found) == len(self.replicas):
                break
            if any(t.terminal_id == terminal_id for t in self.raw):
                continue
            terminal = RawTerminal(self.stack, terminal_id, self.stack.server_port)
            self.raw.append(terminal)
            found.setdefault(terminal.replica, terminal)
        assert set(found) == set(self.replicas), f"round robin put terminals on {set(found)}"
        return found


def start_replica(stack: Stack, url: str, name: str, mobile_url: str) -> tuple[Proc, int]:
    proc = stack._spawn(
        f"server-{name}",
        [
            "branchline.server.main", "--listen", "127.0.0.1:0", "--db", url,
            "--tls-dir", str(stack.pki), "--replica", name,
            "--heartbeat-interval", "1", "--heartbeat-timeout", "6", "--shutdown-drain", "0",
            "--hsm", ts.soft_hsm(stack), "--pan-token-key", str(stack.root / "pan-token.key"),
            "--rate-poll-seconds", BACKSTOP, "--bus-backstop-seconds", BACKSTOP,
            "--mobile-url", mobile_url,
        ],
    )  # fmt: skip

    def port() -> int:
        if proc.popen.poll() is not None:
            raise AssertionError(f"replica {name} exited:\n{proc.log()}")
        for line in proc.log().splitlines():
            if line.startswith("branchline-server listening on"):
                return int(line.rsplit(":", 1)[1])
        return 0

    return proc, int(wait_for(port, 60, f"replica {name} to listen"))


def start_gateway(cluster: Cluster) -> Proc:
    """The phone gateway (``branchline-mobile``), talking to the server through nginx."""
    stack = cluster.stack
    proc = stack._spawn(
        "gateway",
        [
            "branchline.server.mobile_gateway.main", "--tls-dir", str(stack.pki),
            "--name", "gw1", "--listen", f"127.0.0.1:{cluster.gateway_port}",
            "--server", f"127.0.0.1:{stack.server_port}",
        ],
    )  # fmt: skip

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"the gateway exited:\n{proc.log()}")
        try:
            with socket.create_connection(("127.0.0.1", cluster.gateway_port), timeout=1):
                return True
        except OSError:
            return False

    wait_for(up, 30, "the phone gateway")
    return proc


def populate(cluster: Cluster) -> None:
    admin = dpb_grpc.DispatchAdminStub(cluster.channel("operators", "ops"))
    admin.AddBranch(dpb.AddBranchRequest(branch_id=ts.BRANCH, name=ts.BRANCH), timeout=10)
    for teller, skills in ((ts.CLERK, ["back_office"]), (CALL_TELLER, ["loan"])):
        admin.AddTeller(
            dpb.AddTellerRequest(
                teller_id=teller, name=f"Teller {teller}", branch=ts.BRANCH, skills=skills
            ),
            timeout=10,
        )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    dsn = os.environ[TEST_PG_DSN_VARIABLE]
    root = Path(tempfile.mkdtemp(prefix="bl-rep-", dir="/tmp"))
    with temporary_postgres_schema(dsn) as url:
        stack = Stack(root, branch=ts.BRANCH)
        stack.db_url = url
        stack.init_pki()
        for terminal_id in RAW_TERMINALS + DIRECT_TERMINALS:
            pki.issue_terminal_cert(stack.pki, terminal_id)
        for teller in (ts.CLERK, CALL_TELLER):
            pki.issue_user_cert(stack.pki, "teller", teller)
        pki.issue_user_cert(stack.pki, "mobile", "gw1")
        ts.prepare_bank(stack)
        engine = create_engine(url, poolclass=NullPool)
        found = Cluster(stack, url, engine)
        try:
            found.gateway_port = balancer.free_port()
            mobile_url = f"https://127.0.0.1:{found.gateway_port}"
            for name in ("ra", "rb"):
                found.replicas[name] = start_replica(stack, url, name, mobile_url)
            found.nginx, stack.server_port = balancer.start(
                root / "nginx", [port for _, port in found.replicas.values()], workers="1"
            )
            start_gateway(found)
            populate(found)
            stack.devices = ("card_reader", "pin_pad", "printer", "tube_station")
            stack.required_devices = stack.devices
            stack.agent_extra = ts.TRANSACTIONS.format(customer=60, delivery=60, take=8)
            stack.start_sim()
            stack.sim_act("tube_station", "set_travel_time", seconds="0.6")
            ts.start_agent(stack)
            load_pin_key(stack)
            yield found
        finally:
            for terminal in found.raw:
                terminal.close()
            stack.stop_all()
            for proc, _ in found.replicas.values():
                proc.stop()
            if found.nginx is not None:
                found.nginx.terminate()
                found.nginx.wait(10)
            engine.dispose()
            keep = os.environ.get("PYTEST_XDIST_WORKER", "") == "" and os.environ.get("KEEP")
            if not keep:
                shutil.rmtree(root, ignore_errors=True)


def load_pin_key(stack: Stack) -> None:
    from tests.integration.pin_support import KSN0

    initial = json.loads(
        ts.hsm(stack, "--json", "derive-initial-key", "--bdk", "BDK", "--ksn", KSN0)
    )
    completion, problem, _ = stack.device_command(
        "pin_pad", "load_key", algorithm="tdes", key_hex=initial["initial_key"], ksn_hex=KSN0
    )
    assert completion == "success", problem


def test_terminals_spread_over_both_replicas_and_rates_reach_all(cluster: Cluster) -> None:
    on = cluster.raw_on_each_replica()
    assert wait_for(lambda: cluster.holder(cluster.stack.terminal_id), 15, "the agent online")
    # A new rate table (set in the database by the ledger CLI) reaches terminals on both.
    ts.ledger(cluster.stack, "rates", "--set", "USD=7.11:7.21", "XAU=541.00:549.00")
    for replica, terminal in on.items():
        update = wait_for(
            lambda t=terminal: next(  # type: ignore[misc]
                (
                    m
                    for m in t.all("rate_update")
                    if any(
                        r.currency == "USD" and r.bid == "7.11" for r in m.rate_update.table.rates
                    )
                ),
                None,
            ),
            15,
            f"the new rates at {terminal.terminal_id} on {replica}",
        )
        assert update.ack_seq == 0


def test_a_tellers_call_signal_reaches_a_terminal_on_the_other_replica(cluster: Cluster) -> None:
    on = cluster.raw_on_each_replica()
    terminal = on["rb"]
    seq = terminal.send(
        call_request=calls_pb2.CallRequest(
            request_id=f"call-{terminal.terminal_id}",
            business_type="loan",
            mode=calls_pb2.CALL_MODE_VIDEO_SERVICE,
        )
    )
    reply = wait_for(
        lambda: next((m for m in terminal.received if m.ack_seq == seq), None), 15, "call reply"
    )
    assert reply.WhichOneof("body") == "call_update", reply
    # The teller's console (branchline-teller) is on the other replica.
    ra = cluster.port_of("ra")
    teller(cluster, "duty", "on", port=ra)
    wait_for(
        lambda: any(
            m.call_update.state == calls_pb2.CALL_STATE_RINGING for m in terminal.all("call_update")
        ),
        15,
        "the call ringing at the terminal on rb",
    )
    call_id = reply.call_update.call_id
    assert teller(cluster, "call", "answer", port=ra)["state"] == "CALL_STATE_ACTIVE"
    sent = teller(cluster, "call", "signal", call_id, "offer", "--payload", "v=0 test", port=ra)
    signal = wait_for(
        lambda: next(
            (
                m
                for m in terminal.all("teller_signal")
                if m.teller_signal.signal_id == int(sent["signal_id"])
            ),
            None,
        ),
        10,
        "the teller's signal at the terminal on rb",
    )
    assert signal.teller_signal.payload == "v=0 test"
    calls = calls_pb2_grpc.CallsStub(cluster.channel("tellers", CALL_TELLER, ra))
    calls.EndCall(calls_pb2.EndCallRequest(call_id=call_id, reason="done"), timeout=10)
    teller(cluster, "duty", "off", port=ra)


def teller(cluster: Cluster, *args: str, port: int | None = None) -> dict[str, Any]:
    """``branchline-teller --as teller:T1 ... --json``: a staff console process."""
    result = cli(cluster.stack, f"teller:{CALL_TELLER}", *args, "--json", port=port)
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return cast(dict[str, Any], json.loads(result.stdout.splitlines()[-1]))


def test_a_phone_pairs_through_the_gateway_with_a_terminal_on_either_replica(
    cluster: Cluster,
) -> None:
    for replica, terminal in cluster.raw_on_each_replica().items():
        offer = wait_for(
            lambda t=terminal: next(  # type: ignore[misc]
                (m for m in reversed(t.all("pairing_update")) if m.pairing_update.handle), None
            ),
            15,
            f"a QR at {terminal.terminal_id} on {replica}",
        )
        # The phone opens the QR's URL: the gateway pairs through nginx, on either replica.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        url = f"https://127.0.0.1:{cluster.gateway_port}/p/{offer.pairing_update.handle}"
        with urllib.request.urlopen(url, timeout=15, context=context) as answer:
            assert answer.status == 200
        paired = wait_for(
            lambda t=terminal: next(  # type: ignore[misc]
                (m for m in t.all("pairing_update") if m.pairing_update.state == "paired"), None
            ),
            15,
            f"{terminal.terminal_id} on {replica} told it is paired",
        )
        assert paired.pairing_update.matching_code


def test_a_phones_job_through_one_replica_reaches_a_terminal_on_the_other(
    cluster: Cluster,
) -> None:
    """The gateway's Mobile calls land on ra; the terminal's stream is on rb. rb's job
    pusher waits for the bus's ``jobs`` topic (its backstop is longer than this test)."""
    terminal = RawTerminal(
        cluster.stack, "T-J1", cluster.port_of("rb"), devices=("card_reader", "pin_pad")
    )
    cluster.raw.append(terminal)
    assert terminal.replica == "rb"
    offer = wait_for(
        lambda: next(
            (m for m in reversed(terminal.all("pairing_update")) if m.pairing_update.handle), None
        ),
        15,
        "a QR at T-J1 on rb",
    )
    mobile = mobile_pb2_grpc.MobileStub(cluster.channel("mobile", "gw1", cluster.port_of("ra")))
    opened = mobile.OpenHandle(
        mobile_pb2.OpenHandleRequest(handle=offer.pairing_update.handle), timeout=10
    )
    session = mobile_pb2.SessionRequest(session_token=opened.session_token, terminal_id="T-J1")
    job = mobile.SubmitJob(
        mobile_pb2.SubmitJobRequest(
            session=session,
            idempotency_key="replica-job-1",
            service="video_teller",
            auth="terminal",
            business_type="loan",
        ),
        timeout=10,
    )
    pushed = wait_for(
        lambda: next(
            (m for m in terminal.all("phone_job") if m.phone_job.job_id == job.job_id), None
        ),
        10,
        "the phone's job at T-J1 on rb",
    )
    assert pushed.ack_seq == 0
    assert pushed.phone_job.service == "video_teller"
    assert pushed.phone_job.matching_code == opened.pairing.matching_code


def test_a_fleet_watch_on_one_replica_sees_a_terminal_register_on_the_other(
    cluster: Cluster,
) -> None:
    """Operations watch on ra; a terminal registers on rb, then leaves. The watch waits for
    the bus's ``fleet`` topic (its backstop is longer than this test)."""
    channel = cluster.channel("operators", "ops", cluster.port_of("ra"))
    watch = fleet_pb2_grpc.FleetStub(channel).WatchTerminals(
        fleet_pb2.WatchTerminalsRequest(branch=ts.BRANCH), timeout=60
    )
    events: list[fleet_pb2.FleetEvent] = []

    def read() -> None:
        try:
            for event in watch:
                events.append(event)
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(e.kind == "snapshot" for e in events), 15, "the fleet snapshot")
        terminal = RawTerminal(cluster.stack, "T-F1", cluster.port_of("rb"))
        assert terminal.replica == "rb"
        registered = wait_for(
            lambda: next(
                (e for e in events if e.kind == "registered" and e.terminal.terminal_id == "T-F1"),
                None,
            ),
            10,
            "T-F1's registration on rb seen by the watch on ra",
        )
        assert registered.terminal.online
        terminal.close()
        wait_for(
            lambda: any(
                e.kind == "disconnected" and e.terminal.terminal_id == "T-F1" for e in events
            ),
            10,
            "T-F1's disconnection on rb seen by the watch on ra",
        )
    finally:
        watch.cancel()
        channel.close()
        reader.join(10)


def desk_at(cluster: Cluster, replica: str | None = None) -> pb_grpc.TubeDeskStub:
    port = cluster.port_of(replica) if replica else None
    return pb_grpc.TubeDeskStub(cluster.channel("tellers", ts.CLERK, port))


def start_withdrawal(cluster: Cluster) -> tuple[str, str]:
    stack = cluster.stack
    session = ts.sign_in(stack)
    start = ts.tube(stack).StartWithdrawal(
        pb.StartTubeRequest(
            session_id=session, account_id="C1-CNY", asset=ts.asset("cash", "CNY", str(AMOUNT))
        ),
        timeout=30,
    )
    # A busy server may answer after the agent's reply: the customer sees "Checking your
    # balance" first, then the wait for the carrier.
    assert start.stage in ("authorising", "awaiting_delivery"), start
    ts.at_stage(stack, start.txn_id, "awaiting_delivery")
    ts.server_state(stack, start.txn_id, ts.S.TUBE_STATE_OPEN)
    return session, start.txn_id


def finish_withdrawal(cluster: Cluster, session: str, txn_id: str, carrier: int) -> None:
    stack = cluster.stack
    stack.sim_act("tube_station", "backoffice_send", carrier_id=str(carrier))
    ts.customer_takes(stack, txn_id)
    ts.at_stage(stack, txn_id, "taken")
    ts.tube(stack).ConfirmReceipt(pb.TubeAction(session_id=session, txn_id=txn_id), timeout=30)
    done = ts.finished(stack, txn_id)
    assert done.outcome == "completed", done
    assert done.server.state == ts.S.TUBE_STATE_POSTED


def deliveries(cluster: Cluster, terminal_id: str) -> list[tuple[int, str | None]]:
    with cluster.engine.connect() as conn:
        rows = conn.execute(
            select(link_deliveries.c.id, link_deliveries.c.delivered_by)
            .where(link_deliveries.c.terminal_id == terminal_id)
            .order_by(link_deliveries.c.id)
        ).all()
    return [(int(r.id), r.delivered_by) for r in rows]


def last_entry(cluster: Cluster) -> int:
    with cluster.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.coalesce(func.max(journal_entries.c.entry_id), 0))
            ).scalar_one()
        )


def legs_since(cluster: Cluster, entry_id: int, account: str) -> list[int]:
    """The amounts (minor units) posted to ``account`` by entries after ``entry_id``."""
    with cluster.engine.connect() as conn:
        return [
            int(amount)
            for amount in conn.execute(
                select(journal_legs.c.amount_minor).where(
                    journal_legs.c.entry_id > entry_id, journal_legs.c.account_id == account
                )
            ).scalars()
        ]


def test_the_back_offices_change_reaches_the_agent_through_the_bus(cluster: Cluster) -> None:
    stack = cluster.stack
    before = ts.balances(stack)["C1-CNY"]
    holder = wait_for(lambda: cluster.holder(stack.terminal_id), 15, "the agent's replica")
    session, txn_id = start_withdrawal(cluster)
    seen = len(deliveries(cluster, stack.terminal_id))
    # The clerk's console reached the replica the agent is not on.
    desk_at(cluster, cluster.other(holder)).SendCarrier(
        pb.CarrierRequest(txn_id=txn_id, carrier_id=501), timeout=10
    )
    rows = wait_for(
        lambda: [r for r in deliveries(cluster, stack.terminal_id)[seen:] if r[1] is not None],
        10,
        "the tube_update delivered by the agent's replica",
    )
    assert {by for _, by in rows} == {holder}
    finish_withdrawal(cluster, session, txn_id, 501)
    assert ts.balances(stack)["C1-CNY"] - before == -AMOUNT


def test_killing_the_agents_replica_moves_it_with_nothing_lost_or_doubled(cluster: Cluster) -> None:
    stack = cluster.stack
    before = ts.balances(stack)["C1-CNY"]
    entry = last_entry(cluster)
    holder = wait_for(lambda: cluster.holder(stack.terminal_id), 15, "the agent's replica")
    survivor = cluster.other(holder)
    session, txn_id = start_withdrawal(cluster)
    # Traffic through the balancer while the replica dies: the back office's console.
    desk = desk_at(cluster)
    stop = threading.Event()
    errors: list[str] = []

    def console_traffic() -> None:
        while not stop.is_set():
            try:
                desk.ListTransactions(pb.ListTubeRequest(), timeout=5)
            except grpc.RpcError as exc:
                errors.append(str(exc.code()))
            time.sleep(0.05)

    traffic = threading.Thread(target=console_traffic, daemon=True)
    traffic.start()
    proc, _ = cluster.replicas[holder]
    killed_at = time.monotonic()
    proc.popen.kill()
    proc.popen.wait(10)
    moved = wait_for(
        lambda: cluster.holder(stack.terminal_id) == survivor and ts.agent_connected(stack),
        10,
        f"the agent on {survivor}",
        interval=0.1,
    )
    assert moved and time.monotonic() - killed_at < 10
    stop.set()
    traffic.join(10)
    # The console kept working through the balancer (a call in flight may fail once).
    desk_at(cluster).ListTransactions(pb.ListTubeRequest(), timeout=10)
    # The withdrawal goes on from where it was, on the surviving replica.
    desk_at(cluster).SendCarrier(pb.CarrierRequest(txn_id=txn_id, carrier_id=502), timeout=10)
    finish_withdrawal(cluster, session, txn_id, 502)
    assert ts.balances(stack)["C1-CNY"] - before == -AMOUNT
    # Exactly once: one ledger posting for the withdrawal, and its record POSTED.
    assert legs_since(cluster, entry, "C1-CNY") == [-int(AMOUNT * 100)]
    record = desk_at(cluster).GetTransaction(pb.TubeRef(txn_id=txn_id), timeout=10)
    assert record.state == ts.S.TUBE_STATE_POSTED
