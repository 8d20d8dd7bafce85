"""Where a benchmark's time goes on this machine: CPU seconds per process group and what
PostgreSQL's backends were waiting on (Linux ``/proc`` and ``pg_stat_activity``).

``bench/replicas.py`` hands these to ``tube_ingest.apply_load`` as probes, read when the
window opens and when it closes:

- ``CpuGroups``: CPU seconds (user + system) of each replica, of nginx (master and
  workers), of the replicas' PostgreSQL backends (found by ``application_name``, which the
  bench sets per replica), of the load's client processes (the bench's other children) and
  of the whole machine (busy and total CPU seconds from ``/proc/stat``: other jobs on a
  shared machine show up as the difference).
- ``WaitSampler``: every ``interval`` the state and wait event of each of the replicas'
  backends (``active:Lock:transactionid``, ``idle in transaction:Client:ClientRead``,
  ``active:IO:WALSync`` ...), counted; its probe returns how many samples it has taken, so
  the window's samples are the ones between its two readings. A backend waiting on a
  heavyweight lock is counted with what its statement was doing
  (``active:Lock:transactionid (SELECT accounts FOR UPDATE)``): which rows are contended.
- ``CpuCaps``: caps each replica at a fixed share of a core (a cgroup's CFS quota; root
  only), so that a run measures what N replicas of equal capacity add — not how much CPU
  the machine's other jobs left them (``BRANCHLINE_BENCH_REPLICA_CPU`` in replicas.py).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
APP_PREFIX = "blbench-"


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) ``pid`` has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After "(comm)": state is field 3 of stat, so utime (14) and stime (15) are at 11, 12.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_of(pid: int) -> list[int]:
    """Every live process whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class Backends:
    """The PostgreSQL backends of the replicas (``application_name`` ``blbench-...``)."""

    def __init__(self, dsn: str) -> None:
        self._engine = create_engine(dsn, poolclass=NullPool)

    def rows(self) -> list[tuple[int, str, str, str, str, str]]:
        """(pid, application_name, state, wait_event_type, wait_event, query) of each."""
        with self._engine.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT pid, application_name, coalesce(state, ''), "
                    "coalesce(wait_event_type, ''), coalesce(wait_event, ''), "
                    "coalesce(query, '') "
                    "FROM pg_stat_activity WHERE application_name LIKE :prefix"
                ),
                {"prefix": APP_PREFIX + "%"},
            ).all()
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5])) for r in found]

    def cpu(self) -> float:
        return sum(process_cpu(pid) for pid, *_ in self.rows())

    def close(self) -> None:
        self._engine.dispose()


class CpuGroups:
    """Probes (name -> read) of the CPU seconds of each group of processes."""

    def __init__(
        self,
        replicas: dict[str, int],
        nginx: int,
        backends: Backends,
        exclude: Iterable[int] = (),
    ) -> None:
        self.replicas = replicas
        self.nginx = nginx
        self.backends = backends
        self._not_clients = set(replicas.values()) | {nginx} | set(exclude)

    def _clients(self) -> float:
        return sum(
            process_cpu(pid) for pid in children_of(os.getpid()) if pid not in self._not_clients
        )

    def probes(self) -> dict[str, Callable[[], float]]:
        found: dict[str, Callable[[], float]] = {
            f"cpu_{name}": (lambda pid=pid: process_cpu(pid))  # type: ignore[misc]
            for name, pid in self.replicas.items()
        }
        found["cpu_nginx"] = lambda: (
            process_cpu(self.nginx) + sum(process_cpu(pid) for pid in children_of(self.nginx))
        )
        found["cpu_postgres"] = self.backends.cpu
        found["cpu_clients"] = self._clients
        found["cpu_machine_busy"] = lambda: machine_cpu()[0]
        found["cpu_machine_total"] = lambda: machine_cpu()[1]
        return found


_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


def statement_shape(query: str) -> str:
    """``SELECT accounts FOR UPDATE``: a statement's verb, first table and row lock."""
    if "pg_advisory" in query:
        return "pg_advisory_xact_lock"
    words = query.split(None, 1)
    verb = words[0].upper() if words else "?"
    table = _TABLE.search(query)
    locking = " FOR UPDATE" if "FOR UPDATE" in query.upper() else ""
    return f"{verb} {table.group(1) if table else '?'}{locking}"


CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CAP_PERIOD_US = 100_000


class CpuCaps:
    """Each process ``cap``-ped at ``cores`` of CPU in a cgroup of its own (the cgroup v1
    ``cpu`` controller, else v2's ``cpu.max``); ``close`` removes the groups once the
    processes have exited."""

    def __init__(self, cores: float) -> None:
        if cores <= 0:
            raise ValueError(f"a CPU cap must be positive, not {cores}")
        self.cores = cores
        self._v1 = (CGROUP_V1_CPU / "cpu.cfs_quota_us").exists()
        self._groups: list[Path] = []

    def cap(self, name: str, pid: int) -> None:
        parent = CGROUP_V1_CPU if self._v1 else CGROUP_ROOT
        group = parent / f"{APP_PREFIX}{os.getpid()}-{name}"
        group.mkdir()
        self._groups.append(group)
        quota = int(self.cores * CAP_PERIOD_US)
        if self._v1:
            (group / "cpu.cfs_period_us").write_text(str(CAP_PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (group / "cpu.max").write_text(f"{quota} {CAP_PERIOD_US}")
        (group / "cgroup.procs").write_text(str(pid))  # every thread of the process

    def close(self) -> None:
        for group in self._groups:
            try:
                group.rmdir()
            except OSError:  # a process still in it: left for the next run to report
                pass
        self._groups.clear()


class WaitSampler:
    """Samples the replicas' backends' states and wait events on a thread of its own."""

    def __init__(self, backends: Backends, interval: float = 0.2) -> None:
        self._backends = backends
        self._interval = interval
        self.samples: list[list[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="wait-sampler")

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rows = self._backends.rows()
            except Exception:  # the database is busy or away: skip this sample
                rows = []
            self.samples.append(
                [
                    ":".join(filter(None, (state, kind, event)))
                    + (f" ({statement_shape(query)})" if kind == "Lock" else "")
                    for _, _, state, kind, event, query in rows
                ]
            )
            time.sleep(self._interval)

    def mark(self) -> float:
        """The probe: how many samples so far."""
        return float(len(self.samples))

    def between(self, start: float, end: float) -> tuple[Counter[str], int]:
        """How often each state was seen in samples ``start``..``end``, and how many
        samples that was."""
        taken = self.samples[int(start) : int(end)]
        counts: Counter[str] = Counter()
        for sample in taken:
            counts.update(sample)
        return counts, len(taken)
