"""``branchline-server``: the dispatch server, and ``branchline-server pki init DIR``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from branchline.common.logs import setup_logging
from branchline.server import cards_cli, health_cli
from branchline.server.app import DispatchServer, ServerSettings, StartupError, default_replica_name
from branchline.server.cheques import cli as cheques_cli
from branchline.server.dispatch import materials_cli
from branchline.server.ledger import cli as ledger_cli
from branchline.server.mobile import cli as mobile_cli

EXIT_USAGE = 2


# long: maps every server option onto ServerSettings, one line per option
def _serve(args: argparse.Namespace) -> int:
    tls_dir: Path | None = args.tls_dir
    settings = ServerSettings(
        listen=args.listen,
        db_url=args.db,
        tls_ca=args.tls_ca or (tls_dir / "ca.pem" if tls_dir else None),
        tls_cert=args.tls_cert or (tls_dir / "server.pem" if tls_dir else None),
        tls_key=args.tls_key or (tls_dir / "server.key" if tls_dir else None),
        insecure_loopback=args.insecure_loopback,
        heartbeat_interval=args.heartbeat_interval,
        heartbeat_timeout=args.heartbeat_timeout,
        shutdown_drain=args.shutdown_drain,
        replica=args.replica or default_replica_name(),
        offer_timeout=args.offer_timeout,
        routing_strategy=args.routing_strategy,
        max_material_bytes=args.max_material_bytes,
        material_retention_days=args.material_retention_days,
        hsm_url=args.hsm,
        bdk_name=args.bdk_name,
        pin_try_limit=args.pin_try_limit,
        pan_token_key=args.pan_token_key,
        rate_poll_seconds=args.rate_poll_seconds,
        bus_backstop_seconds=args.bus_backstop_seconds,
        teller_zpk=args.teller_zpk,
        tube_stale_minutes=args.tube_stale_minutes,
        metrics_listen=args.metrics_listen,
        recordings_dir=args.recordings_dir,
        recording_retention_days=args.recording_retention_days,
        mobile_url=args.mobile_url,
        phone_job_offline_grace=args.phone_job_offline_grace,
    )
    if not 0 < settings.rate_poll_seconds <= 3600:
        print(
            "branchline-server: --rate-poll-seconds must be more than 0, at most 3600",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not 0 < settings.bus_backstop_seconds <= 3600:
        print(
            "branchline-server: --bus-backstop-seconds must be more than 0, at most 3600",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not 0 < settings.tube_stale_minutes <= 7 * 24 * 60:
        print(
            "branchline-server: --tube-stale-minutes must be more than 0, at most a week",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not 0 < settings.phone_job_offline_grace <= 24 * 3600:
        print(
            "branchline-server: --phone-job-offline-grace must be more than 0, at most a day",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not settings.mobile_url.startswith("https://"):
        print("branchline-server: --mobile-url must be an https:// URL", file=sys.stderr)
        return EXIT_USAGE
    if not 1 <= settings.pin_try_limit <= 10:
        print("branchline-server: --pin-try-limit must be 1 to 10", file=sys.stderr)
        return EXIT_USAGE
    if settings.offer_timeout <= 0 or settings.max_material_bytes <= 0:
        print(
            "branchline-server: --offer-timeout and --max-material-bytes must be positive",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if settings.heartbeat_timeout <= settings.heartbeat_interval:
        print(
            "branchline-server: --heartbeat-timeout must be longer than --heartbeat-interval",
            file=sys.stderr,
        )
        return EXIT_USAGE
    setup_logging("branchline-server", args.log_level)
    try:
        return asyncio.run(DispatchServer(settings).run())
    except StartupError as exc:
        print(f"branchline-server: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _pki_init(args: argparse.Namespace) -> int:
    from branchline.server.pki import init_pki

    try:
        layout = init_pki(
            args.directory,
            args.terminal,
            server_names=args.server_name,
            overwrite=args.force,
            tellers=args.teller,
            lobby_managers=args.lobby,
            mobile_gateways=args.mobile,
        )
    except (OSError, ValueError) as exc:
        print(f"branchline-server pki init: {exc}", file=sys.stderr)
        return EXIT_USAGE
    written = sorted(p for p in layout.directory.rglob("*") if p.is_file())
    if args.json:
        print(
            json.dumps(
                {"directory": str(args.directory), "files": [str(p) for p in written]}, indent=2
            )
        )
    else:
        for path in written:
            print(path)
    return 0


def _pki_issue(args: argparse.Namespace) -> int:
    from branchline.server.pki import issue_terminal_cert, issue_user_cert

    try:
        if args.role == "terminal":
            cert, key = issue_terminal_cert(args.directory, args.id, overwrite=args.force)
        else:
            cert, key = issue_user_cert(args.directory, args.role, args.id, overwrite=args.force)
    except (OSError, ValueError) as exc:
        print(f"branchline-server pki issue: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({"role": args.role, "id": args.id, "cert": str(cert), "key": str(key)}))
    else:
        print(cert)
        print(key)
    return 0


# long: the server's option table, one add_argument per option
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="branchline-server", description=__doc__)
    parser.add_argument(
        "--listen", default="127.0.0.1:50051", help="host:port (default %(default)s)"
    )
    parser.add_argument(
        "--db",
        default="sqlite:///var/server/branchline.db",
        help="SQLAlchemy URL: sqlite:///FILE (default %(default)s) or postgresql+psycopg2://...",
    )
    parser.add_argument(
        "--tls-dir", type=Path, help="folder with ca.pem, server.pem, server.key (from pki init)"
    )
    parser.add_argument("--tls-ca", type=Path, help="CA that signs terminal certificates")
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument(
        "--insecure-loopback",
        action="store_true",
        help="plaintext gRPC; refused unless --listen is a loopback address",
    )
    parser.add_argument("--heartbeat-interval", type=float, default=5.0)
    parser.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=15.0,
        help="seconds of silence before a terminal is marked offline",
    )
    parser.add_argument(
        "--shutdown-drain",
        type=float,
        default=2.0,
        help="seconds health reports NOT_SERVING before the server stops",
    )
    parser.add_argument("--replica", help="this replica's name (default: host name)")
    parser.add_argument(
        "--offer-timeout",
        type=float,
        default=60.0,
        help="seconds a teller has to answer a task offer before it moves on (default 60)",
    )
    parser.add_argument(
        "--routing-strategy",
        default="longest_idle",
        choices=["longest_idle", "least_handled", "random"],
        help="which idle teller gets a task, unless the branch sets its own",
    )
    parser.add_argument(
        "--max-material-bytes",
        type=int,
        default=4 * 1024 * 1024,
        help="largest material (document photo, ID data) a task may carry",
    )
    parser.add_argument(
        "--material-retention-days",
        type=float,
        default=90.0,
        help="days a task's materials (document photos, ID data) are kept once the task "
        "ended; then their bytes are deleted (default 90)",
    )
    parser.add_argument(
        "--hsm",
        help="HSM for PIN verification: soft:///PATH/keystore.json[?master_key_file=F] or "
        "payshield://HOST:PORT (default: none; PIN verification refused)",
    )
    parser.add_argument("--bdk-name", default="BDK", help="the BDK the PIN pads derive from")
    parser.add_argument(
        "--teller-zpk",
        default="TELLER-ZPK",
        help="HSM key name: the zone PIN key a PIN asked for in a video call is translated to",
    )
    parser.add_argument(
        "--pin-try-limit", type=int, default=3, help="wrong PINs before a card locks"
    )
    parser.add_argument(
        "--pan-token-key",
        type=Path,
        default=Path("var/server/pan-token.key"),
        help="key file for card tokens (created 0600 on first start; keep it apart from the DB)",
    )
    parser.add_argument(
        "--rate-poll-seconds",
        type=float,
        default=1.0,
        help="seconds between checks for a new FX rate version, pushed to terminals (default 1)",
    )
    parser.add_argument(
        "--bus-backstop-seconds",
        type=float,
        default=2.0,
        help="replicas on PostgreSQL: the longest a pusher woken by the delivery bus waits "
        "without a signal, in case a notification was lost (default 2)",
    )
    parser.add_argument(
        "--tube-stale-minutes",
        type=float,
        default=30.0,
        help="minutes an unfinished tube transaction may go unchanged before a 'stale' "
        "incident is opened for the back office (default 30)",
    )
    parser.add_argument(
        "--phone-job-offline-grace",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="seconds a terminal may be offline (past the heartbeat timeout) before its "
        "phone jobs that moved no value end 'abandoned' (default 60)",
    )
    parser.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: off; port 0 "
        "picks a free port, printed at start)",
    )
    parser.add_argument(
        "--recordings-dir",
        type=Path,
        default=Path("var/server/recordings"),
        help="content-addressed store of transaction recordings (default var/server/recordings)",
    )
    parser.add_argument(
        "--recording-retention-days",
        type=float,
        default=90.0,
        help="days a recording is kept unless on legal hold (default 90)",
    )
    parser.add_argument(
        "--mobile-url",
        default="https://localhost:8443",
        help="the phone gateway's public https:// base URL, which terminals' QR codes carry "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    sub = parser.add_subparsers(dest="command")
    cards_cli.add_parser(sub)
    cheques_cli.add_parser(sub)
    ledger_cli.add_parser(sub)
    materials_cli.add_parser(sub)
    mobile_cli.add_parser(sub)
    pki = sub.add_parser("pki", help="development PKI")
    pki_sub = pki.add_subparsers(dest="pki_command", required=True)
    init = pki_sub.add_parser(
        "init", help="create a CA, a server certificate and terminal certificates"
    )
    init.add_argument("directory", type=Path)
    init.add_argument("--terminal", action="append", default=[], help="terminal id (repeatable)")
    init.add_argument(
        "--server-name",
        action="append",
        default=None,
        help="DNS name or IP for the server certificate (default localhost, 127.0.0.1)",
    )
    init.add_argument("--teller", action="append", default=[], help="teller id (repeatable)")
    init.add_argument("--lobby", action="append", default=[], help="lobby manager id (repeatable)")
    init.add_argument(
        "--mobile", action="append", default=[], help="phone gateway name (repeatable)"
    )
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    init.add_argument("--json", action="store_true")
    issue = pki_sub.add_parser(
        "issue",
        aliases=["issue-user"],
        help="issue one more certificate from an existing CA",
    )
    issue.add_argument("directory", type=Path)
    issue.add_argument(
        "--role", required=True, choices=["terminal", "teller", "lobby", "operator", "mobile"]
    )
    issue.add_argument("--id", required=True, help="terminal id, teller id, ... (file name too)")
    issue.add_argument("--force", action="store_true", help="reissue an existing certificate")
    issue.add_argument("--json", action="store_true")
    health_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "health":
        return health_cli.run(args)
    if args.command == "cards":
        return cards_cli.run(args)
    if args.command == "cheques":
        return cheques_cli.run(args)
    if args.command == "ledger":
        return ledger_cli.run(args)
    if args.command == "mobile":
        return mobile_cli.run(args)
    if args.command == "materials":
        return materials_cli.run(args)
    if args.command == "pki":
        if args.pki_command in ("issue", "issue-user"):
            return _pki_issue(args)
        if args.server_name is None:
            args.server_name = ["localhost", "127.0.0.1"]
        return _pki_init(args)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
