"""Issue 17 part 3: the server's and the agent's Prometheus endpoints, scraped from real
processes while real things happen (a printer unplugged in the simulator, a tube deposit
with PIN verification through the soft HSM, heartbeats on the TerminalLink), and the
Grafana dashboard and alert rules checked against what the endpoints export.

One branch for the module (server with a soft HSM, simulator, agent).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from branchline.v1 import sim_control_pb2
from branchline.v1 import tube_pb2 as pb
from tests.integration.stack import Stack, wait_for
from tests.integration.tube_support import (
    PAN,
    S,
    asset,
    at_stage,
    back_office_counts,
    finished,
    send_deposit,
    sign_in,
    start_branch,
    tube,
)

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "ops" / "grafana" / "branchline.json"
ALERTS = REPO / "ops" / "prometheus" / "alerts.yml"
URL = re.compile(r"(http://127\.0\.0\.1:\d+/metrics)")
# A metric name in PromQL (not a label name: those are followed by = or ~ or inside by()).
METRIC = re.compile(r"\bbranchline_[a-z0-9_]+\b")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def branch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="bl-", dir="/tmp"))
    stack = Stack(root)
    stack.init_pki()
    try:
        start_branch(
            stack,
            server_extra=("--metrics-listen", "127.0.0.1:0"),
            agent_extra='\n[metrics]\nlisten = "127.0.0.1:0"\n',
        )
        yield stack
    finally:
        stack.stop_all()
        logs = tmp_path_factory.mktemp("metrics-logs")
        for proc in stack.procs.values():
            (logs / proc.log_path.name).write_text(proc.log())
        shutil.rmtree(root, ignore_errors=True)


def endpoint(stack: Stack, process: str) -> str:
    def found() -> str | None:
        match = URL.search(stack.procs[process].log())
        return match.group(1) if match else None

    return str(wait_for(found, 20, f"the {process}'s metrics address in its log"))


def scrape_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return str(response.read().decode())


def scrape(url: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(scrape_text(url)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none match)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def label_sets(samples: Samples, name: str) -> set[frozenset[str]]:
    return {frozenset(k for k, _ in ls) for (n, ls), _ in samples.items() if n == name}


def exported_names(url: str) -> set[str]:
    """Every series name the endpoint exports, families without samples included."""
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    for family in text_string_to_metric_families(scrape_text(url)):
        names.add(family.name)
        names.update(family.name + s for s in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def test_endpoints_export_every_metric_with_sensible_labels(branch: Stack) -> None:
    server = scrape(endpoint(branch, "server"))
    agent = scrape(endpoint(branch, "agent"))
    wait_for(
        lambda: value(scrape(endpoint(branch, "server")), "branchline_terminals_connected") == 1,
        10,
        "one terminal connected",
    )
    assert label_sets(server, "branchline_terminals_connected") == {frozenset({"replica"})}
    assert value(server, "branchline_terminal_online", terminal=branch.terminal_id) == 1
    assert label_sets(server, "branchline_terminal_online") == {frozenset({"terminal", "branch"})}
    assert label_sets(server, "branchline_devices") == {frozenset({"kind", "status"})}
    assert value(server, "branchline_devices", kind="printer", status="online") == 1
    for outcome in ("completed", "refused", "canceled"):
        assert ("branchline_cheque_transactions_total", (("outcome", outcome),)) in server
    assert value(server, "branchline_cheque_transactions_total") == 0
    assert label_sets(server, "branchline_tube_transactions_total") == {
        frozenset({"kind", "outcome"})
    }
    assert ("branchline_incident_oldest_open_age_seconds", ()) in server
    for name in ("branchline_incidents_open", "branchline_dispatch_task_queue_length"):
        assert name in exported_names(endpoint(branch, "server"))
    assert "branchline_call_queue_length" in exported_names(endpoint(branch, "server"))

    terminal = branch.terminal_id
    assert value(agent, "branchline_agent_devices", kind="printer", status="online") == 1
    assert value(agent, "branchline_agent_devices", kind="printer") == 1  # one status at a time
    assert value(agent, "branchline_agent_uplink_connected", terminal=terminal) == 1
    assert ("branchline_outbox_messages", (("terminal", terminal),)) in agent
    assert ("branchline_outbox_oldest_age_seconds", (("terminal", terminal),)) in agent
    assert value(agent, "branchline_recordings_pending_upload", terminal=terminal) == 0
    # No card number anywhere in what operations scrape.
    for url in (endpoint(branch, "server"), endpoint(branch, "agent")):
        assert PAN not in scrape_text(url)


def test_unplugging_the_printer_moves_the_device_gauges_on_both_endpoints(branch: Stack) -> None:
    server_url, agent_url = endpoint(branch, "server"), endpoint(branch, "agent")
    assert value(scrape(server_url), "branchline_devices", kind="printer", status="online") == 1
    sim = branch.sim()
    sim.Unplug(sim_control_pb2.SimDeviceRequest(device="printer"), timeout=5)
    try:
        wait_for(
            lambda: (
                value(
                    scrape(agent_url), "branchline_agent_devices", kind="printer", status="online"
                )
                == 0
            ),
            15,
            "the agent's printer gauge to leave online",
        )
        wait_for(
            lambda: (
                value(scrape(server_url), "branchline_devices", kind="printer", status="online")
                == 0
            ),
            15,
            "the server's printer gauge to leave online",
        )
        server = scrape(server_url)
        faulted = value(server, "branchline_devices", kind="printer") - value(
            server, "branchline_devices", kind="printer", status="online"
        )
        assert faulted == 1, server
    finally:
        sim.Replug(sim_control_pb2.SimDeviceRequest(device="printer"), timeout=5)
    wait_for(
        lambda: (
            value(scrape(server_url), "branchline_devices", kind="printer", status="online") == 1
        ),
        15,
        "the printer back online on the server's endpoint",
    )
    wait_for(
        lambda: (
            value(scrape(agent_url), "branchline_agent_devices", kind="printer", status="online")
            == 1
        ),
        15,
        "the printer back online on the agent's endpoint",
    )


def test_heartbeats_move_the_link_latency_histogram(branch: Stack) -> None:
    url = endpoint(branch, "server")
    before = value(scrape(url), "branchline_link_message_seconds_count", body="heartbeat")
    wait_for(
        lambda: (
            value(scrape(url), "branchline_link_message_seconds_count", body="heartbeat")
            >= before + 2
        ),
        10,
        "two more heartbeats counted",
    )
    samples = scrape(url)
    count = value(samples, "branchline_link_message_seconds_count", body="heartbeat")
    inf = value(samples, "branchline_link_message_seconds_bucket", body="heartbeat", le="+Inf")
    assert inf == count and value(samples, "branchline_link_message_seconds_sum") > 0


def test_a_tube_deposit_moves_the_outcome_counter_hsm_and_link_metrics(branch: Stack) -> None:
    server_url, agent_url = endpoint(branch, "server"), endpoint(branch, "agent")
    before = scrape(server_url)
    session = sign_in(branch)  # card + PIN: verified by the HSM through the server
    after_sign_in = scrape(server_url)
    assert value(
        after_sign_in, "branchline_hsm_operations_total", operation="verify_pin_dukpt", outcome="ok"
    ) > value(before, "branchline_hsm_operations_total", operation="verify_pin_dukpt", outcome="ok")
    assert value(
        after_sign_in, "branchline_hsm_operation_seconds_count", operation="verify_pin_dukpt"
    ) > value(before, "branchline_hsm_operation_seconds_count", operation="verify_pin_dukpt")

    view = tube(branch).StartDeposit(
        pb.StartTubeRequest(
            session_id=session, account_id="C1-CNY", asset=asset("cash", "CNY", "20.00")
        ),
        timeout=30,
    )
    assert value(scrape(server_url), "branchline_tube_transactions_open") >= 1
    send_deposit(branch, session, view.txn_id, 9101)
    back_office_counts(branch, view.txn_id, asset("cash", "CNY", "20.00"), note="metrics")
    at_stage(branch, view.txn_id, "counted")
    tube(branch).Decide(
        pb.DecideRequest(session_id=session, txn_id=view.txn_id, decision=pb.DECISION_CONFIRM),
        timeout=30,
    )
    done = finished(branch, view.txn_id)
    assert done.server.state == S.TUBE_STATE_POSTED, done
    after = scrape(server_url)
    posted = ("branchline_tube_transactions_total", {"kind": "deposit", "outcome": "posted"})
    assert value(after, posted[0], **posted[1]) == value(before, posted[0], **posted[1]) + 1
    for body in ("tube_open", "tube_event"):
        assert value(after, "branchline_link_message_seconds_count", body=body) > value(
            before, "branchline_link_message_seconds_count", body=body
        )
    # The agent's outbox drained once the server acknowledged every step.
    wait_for(
        lambda: value(scrape(agent_url), "branchline_outbox_messages") == 0, 10, "outbox drained"
    )


def promql_names() -> dict[str, set[str]]:
    """Metric names each ops file uses, by file."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs, "the dashboard has no queries"
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    wanted = {
        "BranchlineTerminalOffline",
        "BranchlineDeviceFaulted",
        "BranchlineOutboxBacklog",
        "BranchlineIncidentOpenTooLong",
        "BranchlineHsmErrors",
    }
    assert wanted <= {r["alert"] for r in alerts}
    return {
        DASHBOARD.name: {m for e in exprs for m in METRIC.findall(e)},
        ALERTS.name: {m for r in alerts for m in METRIC.findall(r["expr"])},
    }


def test_dashboard_and_alerts_use_only_exported_metrics(branch: Stack) -> None:
    exported = exported_names(endpoint(branch, "server")) | exported_names(
        endpoint(branch, "agent")
    )
    used = promql_names()
    for file, names in used.items():
        assert names, f"{file} uses no branchline metric"
        missing = names - exported
        assert not missing, f"{file} uses metrics nobody exports: {sorted(missing)}"
    # And the dashboard shows every area the issue lists.
    dashboard_names = used[DASHBOARD.name]
    for needed in (
        "branchline_terminals_connected",
        "branchline_devices",
        "branchline_outbox_messages",
        "branchline_link_message_seconds_bucket",
        "branchline_tube_transactions_total",
        "branchline_hsm_operations_total",
        "branchline_dispatch_task_queue_length",
        "branchline_call_queue_length",
        "branchline_incidents_open",
    ):
        assert needed in dashboard_names, needed


def test_promtool_accepts_the_alert_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus'); rules checked above")
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
