"""The pairing pusher's round: what every connected terminal shows, read in two queries.

``link.current_update`` answers for one terminal with five statements or more (its registry
row and devices, its live pairing, its newest offer, its last ended pairing). Run for every
connected terminal twice a second it was most of the server's write thread under load
(measured with py-spy, 2026-12-07: 59 % of the applier's samples with 500 terminals). Here
one query reads the terminals' service state and one every pairing row that can matter
(live, offered and not expired, ended within the notice), and the same rules pick what each
terminal shows. A terminal whose answer needs a write — a handle due for rotation, a live
pairing whose session ran out — is left to ``current_update`` (the caller's ``fallback``),
which also makes that write; in a steady state that is one terminal in ``ROTATE_EVERY``
rounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, or_, select

from branchline.server.mobile import pairing
from branchline.server.mobile.schema import mobile_pairings as table
from branchline.server.mobile.services import IN_SERVICE
from branchline.server.storage.engine import connect
from branchline.server.storage.schema import terminals
from branchline.v1 import mobile_pb2 as pb

# Terminals read per statement (SQLite allows 32766 parameters; kept well below).
CHUNK = 500

# Built once: the round only binds values.
_SERVING = select(terminals.c.terminal_id, terminals.c.online, terminals.c.service_state).where(
    terminals.c.terminal_id.in_(bindparam("ids", expanding=True))
)
_ROWS = select(table).where(
    table.c.terminal_id.in_(bindparam("ids", expanding=True)),
    or_(
        table.c.state == pairing.PAIRED,
        and_(table.c.state == pairing.OFFERED, table.c.expires_at > bindparam("now")),
        and_(table.c.state == pairing.ENDED, table.c.ended_at >= bindparam("since")),
    ),
)

Build = Callable[[bool, pairing.TerminalPairing, str], pb.PairingUpdate]


def updates(
    engine: Engine,
    terminal_ids: Sequence[str],
    now: datetime,
    end_notice: timedelta,
    build: Build,
    fallback: Callable[[str], pb.PairingUpdate],
) -> list[tuple[str, pb.PairingUpdate]]:
    """Each terminal's update: ``build(serving, shown, last_end_reason)`` from what was read,
    or ``fallback(terminal_id)`` where a write is due."""
    serving: dict[str, bool] = {}
    rows: dict[str, list[Any]] = {t: [] for t in terminal_ids}
    with connect(engine) as conn:
        for i in range(0, len(terminal_ids), CHUNK):
            ids = list(terminal_ids[i : i + CHUNK])
            for t in conn.execute(_SERVING, {"ids": ids}):
                serving[t.terminal_id] = bool(t.online) and t.service_state == IN_SERVICE
            params = {"ids": ids, "now": now, "since": now - end_notice}
            for row in conn.execute(_ROWS, params):
                rows[row.terminal_id].append(row)
    out = []
    for terminal_id in terminal_ids:
        found = _shown(serving.get(terminal_id, False), rows[terminal_id], now, end_notice)
        if found is None:
            out.append((terminal_id, fallback(terminal_id)))
        else:
            out.append((terminal_id, build(serving.get(terminal_id, False), *found)))
    return out


def _shown(
    serving: bool, rows: list[Any], now: datetime, end_notice: timedelta
) -> tuple[pairing.TerminalPairing, str] | None:
    """What ``pairing.rotate`` (serving) or ``terminal_pairing`` would show, and the last end
    reason; None when either would write (an expired session to end, a handle to issue)."""
    live = next((r for r in rows if r.state == pairing.PAIRED), None)
    if live is not None:
        if live.session_expires_at <= now:
            return None
        return pairing.TerminalPairing(None, pairing.pairing_from_row(live)), ""
    offers = [r for r in rows if r.state == pairing.OFFERED and r.expires_at > now]
    offer = max(offers, key=lambda r: r.issued_at, default=None)
    if serving and (offer is None or now - offer.issued_at >= pairing.ROTATE_EVERY):
        return None
    since = now - end_notice
    ended = [r for r in rows if r.state == pairing.ENDED and r.ended_at >= since]
    last = max(ended, key=lambda r: r.ended_at, default=None)
    shown = pairing.TerminalPairing(
        pairing.offer_from_row(offer) if offer is not None else None, None
    )
    return shown, (last.end_reason or "") if last is not None else ""
