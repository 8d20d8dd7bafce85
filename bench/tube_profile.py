"""Where the request path's server CPU goes: tube withdrawals through the applier, in process.

No gRPC and no client: the bank of ``tube_ingest.prepare_bank`` on a fresh SQLite file,
the server's own ``TubeService`` and ``Applier``, and ``--terminals`` withdrawals at a time
(open, the back office's SendCarrier, arrived, taken, confirm), each message handed to the
applier as the TerminalLink servicer hands it, so batches are as large as under load.
Prints the applier thread's CPU per message and per withdrawal, the SQL statements per
withdrawal (every statement SQLAlchemy sends, plus the savepoints on the DBAPI cursor) and,
with ``--profile``, the cProfile of the applier thread sorted by own time (``--top`` rows).
``--pg``: the same on a fresh PostgreSQL schema (``bench.replicas.pg_dsn``) instead of SQLite.

    .venv/bin/python -m bench.tube_profile --terminals 200 --rounds 5 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.tube_ingest import AMOUNT, CLERK, TerminalSpec, prepare_bank
from branchline.server import fleet_registry as registry
from branchline.server.applier import Applier
from branchline.server.auth import Principal
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.pan_token import PanTokenizer
from branchline.server.ledger.sessions import LABEL, CustomerSessions
from branchline.server.storage import open_database
from branchline.server.storage.engine import count_raw_statements
from branchline.server.tube.service import TubeService
from branchline.v1 import tube_pb2 as pb

S = pb.TubeState
CLERK_PRINCIPAL = Principal("teller", CLERK)


class ProfiledApplier(Applier):
    """The applier, its thread's batches timed (thread CPU) and optionally profiled."""

    def __init__(self, *args: Any, profile: cProfile.Profile | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.profile = profile
        self.cpu = 0.0

    def _apply_batch(self, units: list[Any]) -> None:
        started = time.thread_time()
        if self.profile is not None:
            self.profile.enable()
        try:
            super()._apply_batch(units)
        finally:
            if self.profile is not None:
                self.profile.disable()
            self.cpu += time.thread_time() - started


async def withdrawal(service: TubeService, applier: Applier, spec: TerminalSpec, n: int) -> None:
    txn_id = uuid.uuid4().hex
    request = f"{spec.terminal_id}:{n}"
    opened = await applier.apply(
        lambda: service.handle_open(
            spec.terminal_id,
            pb.TubeOpen(
                request_id=f"{request}:o",
                txn_id=txn_id,
                kind=pb.TUBE_KIND_WITHDRAWAL,
                session_token=spec.session_token,
                account_id=spec.account_id,
                asset=pb.TubeAsset(kind=pb.ASSET_KIND_CASH, currency="CNY", amount=str(AMOUNT)),
            ),
        )
    )
    assert opened.txn.state == S.TUBE_STATE_OPEN, opened
    await applier.apply(lambda: service.send_carrier(CLERK_PRINCIPAL, txn_id, 7), priority=True)
    for kind, expect in (
        (pb.TUBE_EVENT_CARRIER_ARRIVED, S.TUBE_STATE_DISPATCHED),
        (pb.TUBE_EVENT_CARRIER_TAKEN, S.TUBE_STATE_DELIVERED),
        (pb.TUBE_EVENT_CONFIRM, S.TUBE_STATE_POSTED),
    ):
        reply = await applier.apply(
            lambda kind=kind: service.handle_event(  # type: ignore[misc]
                spec.terminal_id,
                pb.TubeEvent(
                    request_id=f"{request}:{kind}",
                    txn_id=txn_id,
                    kind=kind,
                    carrier_id=7 if kind == pb.TUBE_EVENT_CARRIER_ARRIVED else 0,
                    customer_confirmed=kind == pb.TUBE_EVENT_CONFIRM,
                ),
            )
        )
        assert not reply.code and reply.txn.state == expect, reply


async def drive(args: argparse.Namespace, root: Path, db_url: str) -> None:
    specs = prepare_bank(root, db_url, args.terminals)
    engine = open_database(db_url)
    statements = [0]
    sent: list[str] = []

    def sending(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        statements[0] += 1
        if args.trace:
            sent.append(" ".join(sql.split())[:150])

    event.listen(engine, "before_cursor_execute", sending)
    count_raw_statements(engine, lambda n: statements.__setitem__(0, statements[0] + n))
    tokenizer = PanTokenizer.from_file(root / "pan-token.key")
    sessions = CustomerSessions(tokenizer.derive_key(LABEL))
    service = TubeService(engine, EmbeddedLedger(engine), sessions)
    profile = cProfile.Profile() if args.profile else None
    applier = ProfiledApplier(engine, profile=profile)
    try:
        now = datetime.now(UTC)
        for spec in specs:
            await applier.apply(
                lambda s=spec: registry.register_terminal(  # type: ignore[misc]
                    engine, s.terminal_id, "BR-001", "self_service", "bench", [], "bench", now
                ),
                priority=True,
            )
        await asyncio.gather(*(withdrawal(service, applier, s, 0) for s in specs))  # warm-up
        if profile is not None:
            profile.clear()
        applier.cpu, statements[0] = 0.0, 0
        sent.clear()
        batches, units = applier.stats.batches, applier.stats.units
        wall = time.perf_counter()
        for n in range(1, args.rounds + 1):
            await asyncio.gather(*(withdrawal(service, applier, s, n) for s in specs))
        wall = time.perf_counter() - wall
        txns = args.terminals * args.rounds
        msgs = applier.stats.units - units
        print(f"withdrawals {txns}, messages {msgs} (5 a withdrawal)")
        print(
            f"batches {applier.stats.batches - batches}, mean {msgs / (applier.stats.batches - batches):.1f}"
        )
        print(f"applier CPU per message    {applier.cpu / msgs * 1000:8.3f} ms")
        print(f"applier CPU per withdrawal {applier.cpu / txns * 1000:8.3f} ms")
        print(f"SQL statements per withdrawal {statements[0] / txns:8.1f}")
        print(f"wall {wall:.1f} s, {msgs / wall:.0f} messages/s")
        for n, sql in enumerate(sent, start=1):
            print(f"{n:4d} {sql}")
    finally:
        applier.stop()
        engine.dispose()
    if profile is not None:
        stats = pstats.Stats(profile)
        stats.sort_stats(args.sort).print_stats(args.top)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tube_profile", description=__doc__)
    parser.add_argument("--terminals", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--pg", action="store_true", help="on a fresh PostgreSQL schema (bench.replicas.pg_dsn)"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="print every statement sent (with --terminals 1 --rounds 1: one withdrawal's)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-tube-profile-") as tmp:
        if not args.pg:
            asyncio.run(drive(args, Path(tmp), f"sqlite:///{Path(tmp) / 'server.db'}"))
            return 0
        from bench.replicas import pg_dsn
        from branchline.server.storage.testing import temporary_postgres_schema

        with temporary_postgres_schema(pg_dsn()) as db_url:
            asyncio.run(drive(args, Path(tmp), db_url))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
