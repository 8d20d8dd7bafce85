"""Replicas: tube ingest messages/s through nginx with 1, 2 and 3 server replicas on PostgreSQL.

What is measured. The tube ingest load of ``bench/tube_ingest.py`` — its terminals, client
processes, back office, phases and window, unchanged — sent to nginx
(``ops/nginx/branchline-replicas.conf.template``, TCP passthrough, round robin per
connection) in front of N real ``branchline-server`` processes (``--insecure-loopback``,
soft HSM, replica names ``r1`` ...) sharing one fresh PostgreSQL schema per N. Each
terminal has its own TCP connection, so the terminals spread evenly over the replicas; each
client process's back office has one, so the back office's ``SendCarrier`` usually runs on
another replica than the terminal's stream and its ``tube_update`` push crosses replicas
through the delivery bus (``server/delivery``): ``rN_bus_pushes`` counts those (rows of
``link_deliveries``; about (N-1)/N of ``rN_desk_sends``), ``rN_bus_unclaimed`` the ones no
replica delivered, ``rN_bus_lost`` those of them made 5 s or more before their terminal
closed its stream (0: each was queued on its terminal's stream, once — the claim is
atomic). The rest are the last transactions' pushes: the load's terminals do not wait for
pushes and close their streams as soon as their last withdrawal is confirmed.
The load is ``PLAN`` (200 terminals, 4 client processes, 5 s warm-up, 20 s window).

PostgreSQL: ``BRANCHLINE_BENCH_PG_DSN``, else ``BRANCHLINE_TEST_PG_DSN``, else
``postgresql+psycopg2://postgres@127.0.0.1:5432/test`` (what ``.ci/run`` uses).

Figures, per N in 1, 2, 3: ``rN_msgs_per_s`` (terminal tube messages acknowledged per
second in the window), ``rN_txn_per_s``, ``rN_ack_p50_ms``/``rN_ack_p99_ms``; ``r2_over_r1`` and ``r3_over_r1`` (the goal of issue 17: 1.8 with
two). Correctness, per N, read from the database after the replicas stopped, each should
be 0: ``rN_postings_minus_completed``, ``rN_posted_minus_completed``,
``rN_active_holds_of_posted``, ``rN_unfinished_txns``, ``rN_failed_steps``,
``rN_ledger_audit_problems``, ``rN_balance_error_cny``, ``rN_server_log_errors``,
``rN_bus_lost``;
``rN_heartbeat_timeouts`` is reported beside them (part 1 of issue 17 is about it).

All processes — replicas, nginx, PostgreSQL and the load's client processes — share this
machine: on 2 cores a second replica competes with the clients and the database for the
same CPU, which bounds the scaling this can show. So the window's CPU seconds are measured
per group (``bench/cpu_profile.py``): ``rN_cpu_<replica>_s``, ``rN_cpu_replicas_s`` (their
sum), ``rN_cpu_postgres_s`` (the replicas' backends, by ``application_name``),
``rN_cpu_nginx_s``, ``rN_cpu_clients_s``, ``rN_cpu_machine_busy_s`` of
``rN_cpu_machine_total_s`` (everything on the machine, other jobs included); and
``rN_msgs_per_replica_cpu_s`` (messages acknowledged per CPU second the replicas used) and
``rN_msgs_per_server_cpu_s`` (per CPU second of replicas + their PostgreSQL backends +
nginx): the server side's efficiency, which does not depend on how many cores were free.
The replicas' backends are sampled every 0.2 s in the window (``pg_stat_activity``): the
most frequent states and wait events are printed (``rN_pg_active_avg``: backends running
or waiting in a statement, on average; ``rN_pg_lock_wait_avg``: of them waiting on a
heavyweight lock — row, transaction or advisory).

With ``BRANCHLINE_BENCH_REPLICA_CPU=0.2`` (root only): each replica, once listening, is
capped at that share of one core (``cpu_profile.CpuCaps``; ``rN_replica_cpu_cap``). On a
machine with fewer free cores than the stack needs, messages/s otherwise follows how much
CPU the other processes leave N replicas; with equal fixed capacities ``rN_over_r1``
measures what the database side (row locks, the event logs' locks, commits) lets a second
and third replica add.

With ``BRANCHLINE_BENCH_SMOKE=1``: the tube ingest smoke plan (20 terminals, 3 s window) and
N in 1, 2 only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench import balancer, cpu_profile
from bench import tube_ingest as ingest

DEFAULT_DSN = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
CPU_CAP_VARIABLE = "BRANCHLINE_BENCH_REPLICA_CPU"
REPLICA_COUNTS = (1, 2, 3)
SMOKE_COUNTS = (1, 2)
# Fewer terminals than the SQLite ingest bench: three bank set-ups on PostgreSQL, and a
# closed loop that saturates one replica without burying every ack under seconds of queue.
PLAN = ingest.Plan(terminals=200, workers=4, warmup=5.0, window=20.0)


def pg_dsn() -> str:
    return (
        os.environ.get("BRANCHLINE_BENCH_PG_DSN")
        or os.environ.get("BRANCHLINE_TEST_PG_DSN")
        or DEFAULT_DSN
    )


def cpu_cap() -> float | None:
    """The share of a core each replica is capped at (``BRANCHLINE_BENCH_REPLICA_CPU``)."""
    value = os.environ.get(CPU_CAP_VARIABLE, "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{CPU_CAP_VARIABLE}: a share of one core (0.2), not {value!r}") from None


def start_replica(root: Path, db_url: str, name: str) -> tuple[subprocess.Popen[str], str]:
    log = root / f"server-{name}.log"
    # Its PostgreSQL backends carry its name: the profile finds them in pg_stat_activity.
    db_url = (
        make_url(db_url)
        .update_query_dict({"application_name": f"{cpu_profile.APP_PREFIX}{name}"})
        .render_as_string(hide_password=False)
    )
    hsm = f"soft://{root / 'keystore.json'}?master_key_file={root / 'hsm-master.key'}"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "branchline.server.main",
                "--listen", "127.0.0.1:0", "--insecure-loopback", "--db", db_url,
                "--hsm", hsm, "--pan-token-key", str(root / "pan-token.key"),
                "--shutdown-drain", "0", "--replica", name,
            ],
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=root,
        )  # fmt: skip
    try:
        return proc, ingest._wait_listening(proc, log)
    except BaseException:
        ingest._stop(proc)
        raise


def verify(db_url: str, terminals: int, completed: int) -> dict[str, float]:
    """Ledger and tube records against what the terminals saw (the replicas have stopped)."""
    from branchline.server.ledger.adapter import EmbeddedLedger

    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:

            def one(query: str, **args: object) -> int:
                return int(conn.execute(text(query), args).scalar() or 0)

            postings = one(
                "SELECT count(*) FROM journal_entries WHERE terminal_id != :setup",
                setup=ingest.SETUP_TERMINAL,
            )
            posted = one("SELECT count(*) FROM tube_transactions WHERE state = 'posted'")
            unfinished = one(
                "SELECT count(*) FROM tube_transactions WHERE state NOT IN "
                "('posted', 'returned', 'reversed', 'canceled', 'handed_to_teller')"
            )
            active_holds = one(
                "SELECT count(*) FROM holds h JOIN tube_transactions t ON t.hold_id = h.hold_id "
                "WHERE t.state = 'posted' AND h.status != 'captured'"
            )
            balances = one("SELECT sum(balance_minor) FROM accounts WHERE customer_id IS NOT NULL")
            offline = one("SELECT count(*) FROM fleet_events WHERE kind = 'heartbeat_timeout'")
            bus_rows = one("SELECT count(*) FROM link_deliveries")
            bus_unclaimed = one("SELECT count(*) FROM link_deliveries WHERE delivered_at IS NULL")
            # Unclaimed although the terminal's stream stayed open for 5 s more: lost.
            bus_lost = one(
                "SELECT count(*) FROM link_deliveries d WHERE d.delivered_at IS NULL "
                "AND d.created_at < (SELECT min(e.at) - interval '5 seconds' FROM fleet_events e "
                "WHERE e.terminal_id = d.terminal_id AND e.kind = 'disconnected')"
            )
            tube_pushes = one("SELECT count(*) FROM tube_transactions WHERE carrier_id IS NOT NULL")
        problems = EmbeddedLedger(engine).audit()
    finally:
        engine.dispose()
    expected = (ingest.OPENING * terminals - ingest.AMOUNT * completed) * 100
    return {
        "postings_minus_completed": float(postings - completed),
        "posted_minus_completed": float(posted - completed),
        "active_holds_of_posted": float(active_holds),
        "unfinished_txns": float(unfinished),
        "ledger_audit_problems": float(len(problems)),
        "balance_error_cny": float((expected - balances) / 100),
        "heartbeat_timeouts": float(offline),
        "bus_pushes": float(bus_rows),
        "bus_unclaimed": float(bus_unclaimed),
        "bus_lost": float(bus_lost),
        "desk_sends": float(tube_pushes),
    }


def measure(replicas: int, plan: ingest.Plan) -> dict[str, float]:
    """One run: a fresh schema, N replicas behind nginx, the load, the audit."""
    from branchline.server.storage.testing import temporary_postgres_schema

    prefix = f"r{replicas}"
    with (
        tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp,
        temporary_postgres_schema(pg_dsn()) as db_url,
    ):
        root = Path(tmp)
        specs = ingest.prepare_bank(root, db_url, plan.terminals)
        servers: list[subprocess.Popen[str]] = []
        nginx = None
        backends = cpu_profile.Backends(pg_dsn())
        cap = cpu_cap()
        caps = cpu_profile.CpuCaps(cap) if cap is not None else None
        try:
            ports = []
            for n in range(1, replicas + 1):
                proc, target = start_replica(root, db_url, f"r{n}")
                servers.append(proc)
                ports.append(int(target.rsplit(":", 1)[1]))
                if caps is not None:
                    caps.cap(f"r{n}", proc.pid)
            nginx, port = balancer.start(root / "nginx", ports)
            groups = cpu_profile.CpuGroups(
                {f"r{n}": proc.pid for n, proc in enumerate(servers, 1)}, nginx.pid, backends
            )
            probes = groups.probes()
            with cpu_profile.WaitSampler(backends) as sampler:
                probes["pg_waits"] = sampler.mark
                load = ingest.apply_load(
                    f"127.0.0.1:{port}", specs, plan, bare=False, probes=probes
                )
        finally:
            backends.close()
            if nginx is not None:
                nginx.terminate()
                nginx.wait(10)
            for proc in servers:
                ingest._stop(proc)
            if caps is not None:
                caps.close()
        stats = load.stats
        if stats.failures:
            print(f"   {prefix} failures: {dict(stats.failures.most_common(5))}", flush=True)
        figures = load_figures(prefix, load)
        for key, value in verify(db_url, plan.terminals, stats.completed).items():
            figures[f"{prefix}_{key}"] = value
        figures.update(profile_figures(prefix, load, sampler, replicas))
        if cap is not None:
            figures[f"{prefix}_replica_cpu_cap"] = cap
        figures[f"{prefix}_server_log_errors"] = float(
            sum(len(ingest.log_errors(root / f"server-r{n}.log")) for n in range(1, replicas + 1))
        )
    return figures


LOAD_FIGURES = {"msgs_per_s", "txn_per_s", "ack_p50_ms", "ack_p99_ms", "failed_steps"}


def load_figures(prefix: str, load: ingest.LoadResult) -> dict[str, float]:
    """The load's throughput and latency figures, named for this run (``rN_...``)."""
    return {
        key.replace("tube_", f"{prefix}_", 1): value
        for key, value in ingest._load_figures("tube", load).items()
        if key.split("_", 1)[1] in LOAD_FIGURES
    }


def profile_figures(
    prefix: str, load: ingest.LoadResult, sampler: cpu_profile.WaitSampler, replicas: int
) -> dict[str, float]:
    """The window's CPU seconds per group, messages per CPU second, and the backends' states
    (the most frequent printed)."""
    window = {name: values[3] - values[2] for name, values in load.samples.items()}
    figures = {
        f"{prefix}_{name}_s": value for name, value in window.items() if name.startswith("cpu_")
    }
    replica_cpu = sum(window[f"cpu_r{n}"] for n in range(1, replicas + 1))
    server_cpu = replica_cpu + window["cpu_postgres"] + window["cpu_nginx"]
    msgs = load.stats.msgs_in_window
    figures[f"{prefix}_cpu_replicas_s"] = replica_cpu
    figures[f"{prefix}_msgs_per_replica_cpu_s"] = msgs / replica_cpu if replica_cpu else 0.0
    figures[f"{prefix}_msgs_per_server_cpu_s"] = msgs / server_cpu if server_cpu else 0.0
    opens, closes = load.samples["pg_waits"][2:4]
    counts, taken = sampler.between(opens, closes)
    active = sum(n for state, n in counts.items() if state.startswith("active"))
    locks = sum(n for state, n in counts.items() if ":Lock:" in state)
    figures[f"{prefix}_pg_active_avg"] = active / taken if taken else 0.0
    figures[f"{prefix}_pg_lock_wait_avg"] = locks / taken if taken else 0.0
    for state, n in counts.most_common(10):
        print(f"   {prefix} backends {state:44} {n / max(taken, 1):6.2f} on average", flush=True)
    return figures


def run() -> dict[str, float]:
    reason = balancer.missing()
    if reason is not None:
        raise RuntimeError(reason)
    smoke = os.environ.get(ingest.SMOKE_VARIABLE) == "1"
    plan = ingest.SMOKE if smoke else PLAN
    figures: dict[str, float] = {"terminals": float(plan.terminals), "window_s": plan.window}
    for replicas in SMOKE_COUNTS if smoke else REPLICA_COUNTS:
        figures.update(measure(replicas, plan))
        print(f"   r{replicas}_msgs_per_s {figures[f'r{replicas}_msgs_per_s']:.1f}", flush=True)
    for replicas in (2, 3):
        if f"r{replicas}_msgs_per_s" in figures:
            figures[f"r{replicas}_over_r1"] = (
                figures[f"r{replicas}_msgs_per_s"] / figures["r1_msgs_per_s"]
            )
    return figures


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:36} {value:12.3f}")
