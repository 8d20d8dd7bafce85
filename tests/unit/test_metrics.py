"""Metrics without processes: the database collector's gauges move when tasks and calls
queue and incidents open; the metered HSM counts and times commands by outcome; the link
observer times messages; bad endpoint addresses are refused by name (server option,
agent config). The real endpoints are scraped in tests/integration/test_metrics.py."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from branchline.agent.config import load_config
from branchline.common.config_reader import ConfigError
from branchline.common.errors import InvalidArgument
from branchline.common.hsm.errors import HsmError
from branchline.common.metrics_http import bind_socket, is_loopback_host, parse_listen
from branchline.server.app import DispatchServer, ServerSettings, StartupError
from branchline.server.dispatch.calls import CallService
from branchline.server.dispatch.model import Actor
from branchline.server.dispatch.tasks import DispatchService
from branchline.server.hsm import Algorithm, KeyType, MasterKey, SoftHsm
from branchline.server.metrics.collector import DatabaseCollector
from branchline.server.metrics.instruments import MeteredHsm, ServerMetrics
from branchline.server.pin.link import pin_verify_handler
from branchline.server.tube import store as tube_store
from branchline.v1 import terminal_link_pb2 as pb
from tests.unit.dispatch_support import MC, Clock, populate
from tests.unit.link_support import IN_SERVICE, link_stack, until

K1 = Actor("terminal", "K-1")


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples(registry).items() if n == name and wanted <= set(ls))


@pytest.fixture
def collected(engine: Engine) -> Iterator[tuple[CollectorRegistry, list[str]]]:
    connected: list[str] = []
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(engine, "r1", lambda: list(connected)))
    yield registry, connected


def test_queues_and_connected_terminals_move(
    engine: Engine, collected: tuple[CollectorRegistry, list[str]]
) -> None:
    registry, connected = collected
    assert value(registry, "branchline_terminals_connected", replica="r1") == 0
    connected.append("T-1")
    assert value(registry, "branchline_terminals_connected", replica="r1") == 1

    clock = Clock()
    dispatch = DispatchService(engine, offer_timeout=30, clock=clock)
    populate(dispatch, clock)
    assert value(registry, "branchline_dispatch_task_queue_length", branch="B") == 0
    # Nobody on duty in branch B: the task waits in its queue.
    dispatch.send_task(MC, "A", "r1", "B", "loan", "Loan application", {"amount": "5000"})
    assert value(registry, "branchline_dispatch_task_queue_length", branch="B") == 1

    calls = CallService(dispatch, translate_pin=None, clock=clock)
    assert value(registry, "branchline_call_queue_length", branch="B") == 0
    calls.request_call(K1, "B", "c1", "loan", "video_teller")
    assert value(registry, "branchline_call_queue_length", branch="B") == 1


def test_an_opened_incident_moves_the_open_count_and_its_age(
    engine: Engine, collected: tuple[CollectorRegistry, list[str]]
) -> None:
    registry, _ = collected
    assert value(registry, "branchline_incidents_open") == 0
    assert value(registry, "branchline_incident_oldest_open_age_seconds") == 0
    txn = SimpleNamespace(branch="B", terminal_id="T-1", txn_id="txn-1")
    opened = datetime(2026, 1, 1, tzinfo=UTC)
    with tube_store.transaction(engine, opened) as tx:
        tube_store.open_incident(tx, txn, "lost_carrier", "carrier 7 never arrived")
    assert value(registry, "branchline_incidents_open", kind="lost_carrier") == 1
    age = value(registry, "branchline_incident_oldest_open_age_seconds")
    assert age >= (datetime.now(UTC) - opened).total_seconds() - 5


def test_tube_outcomes_are_declared_for_both_kinds_before_any_transaction(
    collected: tuple[CollectorRegistry, list[str]],
) -> None:
    registry, _ = collected
    found = samples(registry)
    for kind in ("deposit", "withdrawal"):
        for outcome in ("posted", "returned", "reversed", "canceled", "handed_to_teller"):
            key = (
                "branchline_tube_transactions_total",
                (("kind", kind), ("outcome", outcome)),
            )
            assert found[key] == 0


@pytest.fixture
def soft_hsm(tmp_path: Path) -> SoftHsm:
    hsm = SoftHsm.open(tmp_path / "keystore.json", MasterKey(os.urandom(32)))
    hsm.import_key(
        "BDK", KeyType.BDK, Algorithm.TDES, bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    )
    return hsm


def test_metered_hsm_counts_and_times_each_command_by_outcome(soft_hsm: SoftHsm) -> None:
    metrics = ServerMetrics()
    hsm: Any = MeteredHsm(soft_hsm, metrics)
    ksn = bytes.fromhex("FFFF9876543210E00000")
    key, _ = hsm.derive_initial_key("BDK", ksn)
    assert len(key) == 16
    with pytest.raises(HsmError) as refused:
        hsm.derive_initial_key("NO-SUCH-KEY", ksn)
    registry = metrics.registry
    op = "derive_initial_key"
    assert value(registry, "branchline_hsm_operations_total", operation=op, outcome="ok") == 1
    assert (
        value(
            registry,
            "branchline_hsm_operations_total",
            operation=op,
            outcome=refused.value.code,
        )
        == 1
    )
    assert value(registry, "branchline_hsm_operation_seconds_count", operation=op) == 2
    # Administration passes through untimed.
    assert [k.name for k in hsm.list_keys()] == ["BDK"]
    assert value(registry, "branchline_hsm_operations_total", operation="list_keys") == 0


def test_link_observer_records_latency_and_refusals() -> None:
    metrics = ServerMetrics()
    metrics.link_message("heartbeat", 0.002, None)
    metrics.link_message("statement_request", 0.3, "not_your_account")
    registry = metrics.registry
    assert value(registry, "branchline_link_message_seconds_count", body="heartbeat") == 1
    assert (
        value(registry, "branchline_link_message_seconds_bucket", body="heartbeat", le="0.0025")
        == 1
    )
    assert (
        value(
            registry,
            "branchline_link_requests_refused_total",
            body="statement_request",
            code="not_your_account",
        )
        == 1
    )
    assert value(registry, "branchline_cheque_transactions_total") == 0


@pytest.mark.parametrize("listen", ["9464", "host:", ":9464", "h:99999", "h:port"])
def test_listen_must_be_host_and_port(listen: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_listen("metrics.listen", listen)
    assert refused.value.field == "metrics.listen"


def test_loopback_hosts() -> None:
    assert all(map(is_loopback_host, ["127.0.0.1", "127.3.4.5", "::1", "localhost"]))
    assert not any(map(is_loopback_host, ["0.0.0.0", "10.0.0.1", "::", "example.org"]))


def agent_toml(tmp_path: Path, metrics: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[terminal]
id = "T-1"
branch = "B"
state_dir = "{tmp_path / "state"}"
insecure = true
{metrics}
"""
    )
    return path


def test_agent_metrics_section(tmp_path: Path) -> None:
    assert load_config(agent_toml(tmp_path, "")).metrics.listen is None
    config = load_config(agent_toml(tmp_path, '[metrics]\nlisten = "127.0.0.1:9464"'))
    assert config.metrics.host_port == ("127.0.0.1", 9464)
    for section, problem in (
        ('[metrics]\nlisten = "0.0.0.0:9464"', "loopback only"),
        ('[metrics]\nlisten = "10.1.2.3:9464"', "loopback only"),
        ('[metrics]\nlisten = "9464"', "HOST:PORT"),
        ('[metrics]\nlisten = "127.0.0.1:9464"\nport = 1', "port"),
        ("[metrics]", "listen"),
    ):
        with pytest.raises(ConfigError) as refused:
            load_config(agent_toml(tmp_path, section))
        text = str(refused.value)
        assert "metrics" in text and problem in text, text


def server_settings(tmp_path: Path, metrics_listen: str) -> ServerSettings:
    return ServerSettings(
        listen="127.0.0.1:0",
        db_url=f"sqlite:///{tmp_path / 'server.db'}",
        tls_ca=None,
        tls_cert=None,
        tls_key=None,
        insecure_loopback=True,
        heartbeat_interval=5.0,
        heartbeat_timeout=15.0,
        shutdown_drain=0.0,
        replica="r1",
        metrics_listen=metrics_listen,
    )


def test_server_refuses_a_bad_or_busy_metrics_address(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="--metrics-listen: expected HOST:PORT"):
        asyncio.run(DispatchServer(server_settings(tmp_path, "nonsense")).run())
    busy = bind_socket("127.0.0.1", 0)
    try:
        port = busy.getsockname()[1]
        with pytest.raises(StartupError, match=f"--metrics-listen: cannot bind 127.0.0.1:{port}"):
            asyncio.run(DispatchServer(server_settings(tmp_path, f"127.0.0.1:{port}")).run())
    finally:
        busy.close()


def test_the_link_times_each_message_and_counts_refusals(tmp_path: Path) -> None:
    """A real TerminalLink stream (the agent's Uplink over a socket) with the observer."""

    async def scenario() -> None:
        stack = link_stack(tmp_path)
        servicer, uplink = await anext(stack)
        metrics = ServerMetrics()
        servicer.observe_messages(metrics.link_message)
        servicer.add_handler("pin_verify", pin_verify_handler(None))
        runner = asyncio.create_task(uplink.run())
        await until(lambda: uplink.connected, "registration")
        registry = metrics.registry
        before = value(registry, "branchline_link_message_seconds_count", body="heartbeat")
        await uplink.request(heartbeat=pb.Heartbeat(service_state=IN_SERVICE))
        assert (
            value(registry, "branchline_link_message_seconds_count", body="heartbeat") == before + 1
        )
        reply = await uplink.request(pin_verify=pb.PinVerifyRequest(request_id="pin-1"))
        assert reply.error.code == "hsm_unavailable"
        assert value(registry, "branchline_link_message_seconds_count", body="pin_verify") == 1
        refused = value(
            registry,
            "branchline_link_requests_refused_total",
            body="pin_verify",
            code="hsm_unavailable",
        )
        assert refused == 1
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await anext(stack, None)

    asyncio.run(scenario())
