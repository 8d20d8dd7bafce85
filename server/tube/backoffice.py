"""The back office's side (TubeDesk): receive, count, send carriers; incidents; the sweep.

Who may: tellers with the ``back_office`` skill, each on the transactions and incidents of
their own branch only. Every change writes a ``tube_events`` row and is pushed to the
terminal (through the listeners) after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from branchline.common.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from branchline.common.field_paths import mapped
from branchline.common.logs import log_event
from branchline.server.auth import TELLER, Principal
from branchline.server.ledger.money import asset as ledger_asset
from branchline.server.ledger.money import to_minor
from branchline.server.storage.engine import connect
from branchline.server.tube import convert, store
from branchline.server.tube import model as m
from branchline.server.tube import validate as v
from branchline.server.tube.core import TubeCore, log
from branchline.server.tube.schema import tube_events, tube_incidents
from branchline.v1 import tube_pb2 as pb

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
EVENT_PAGE = 200
SWEEP_PAGE = 100
DESK_RULE = "TubeDesk is for tellers with the back_office skill"
# The rules a PermissionDenied names (its ErrorInfo reason).
DESK_SKILL_RULE = "back_office_skill"
OWN_BRANCH_RULE = "own_branch_only"
# The count's fields that feed the ledger's quote, by the quote's field path.
REQUOTE_FIELDS = {"quote.amount": "counted.amount"}


class BackOffice(TubeCore):
    # -- who and where ----------------------------------------------------------------------

    def _desk(self, conn: Any, principal: Principal) -> tuple[str, str]:
        """The teller's id and branch; PermissionDenied naming the rule otherwise."""
        if principal.role != TELLER:
            raise PermissionDenied(f"{DESK_RULE}; the caller is {principal}", rule=DESK_SKILL_RULE)
        found = store.teller(conn, principal.name)
        if found is None:
            raise PermissionDenied(
                f"{DESK_RULE}; teller {principal.name} is not on the staff records",
                rule=DESK_SKILL_RULE,
            )
        branch, skilled = found
        if not skilled:
            raise PermissionDenied(
                f"{DESK_RULE}; teller {principal.name} does not have it", rule=DESK_SKILL_RULE
            )
        return principal.name, branch

    def desk_branch(self, principal: Principal) -> str:
        with connect(self.engine) as conn:
            return self._desk(conn, principal)[1]

    @staticmethod
    def _in_branch(row: Any, teller_id: str, branch: str, what: str = "tube transactions") -> None:
        if row.branch != branch:
            raise PermissionDenied(
                f"{what} of branch {row.branch} are handled by its own back office; teller "
                f"{teller_id} is of {branch}",
                rule=OWN_BRANCH_RULE,
            )

    def _txn_for_desk(self, tx: store.Tx, principal: Principal, txn_id: str) -> tuple[Any, str]:
        """The locked transaction the teller may change, and the teller's id."""
        teller_id, branch = self._desk(tx.conn, principal)
        v.txn_id(txn_id, "txn_id")
        row = store.load(tx.conn, txn_id, lock=True)
        if row is None:
            raise NotFound(
                f"txn_id: no tube transaction {txn_id!r}", field="txn_id", reason="not_found"
            )
        self._in_branch(row, teller_id, branch)
        if row.pending:
            raise FailedPrecondition(
                f"{row.kind} {row.txn_id}: its terminal's {row.pending} is being applied; try "
                "again in a moment",
                reason="wrong_state",
            )
        return row, teller_id

    # -- reading ----------------------------------------------------------------------------

    def list_transactions(
        self, principal: Principal, states: Sequence[str] = (), limit: int = 0
    ) -> list[pb.TubeTransaction]:
        """The branch's transactions in ``states`` (default: not final), oldest first."""
        for i, state in enumerate(states):
            if state not in m.STATES:
                raise InvalidArgument(f"states[{i}]", f"unknown state {state!r}")
        if limit < 0 or limit > MAX_LIMIT:
            raise InvalidArgument("limit", f"0 to {MAX_LIMIT}")
        with connect(self.engine) as conn:
            _, branch = self._desk(conn, principal)
            rows = store.of_branch(conn, branch, tuple(states) or m.ACTIVE, limit or DEFAULT_LIMIT)
        return [convert.txn_to_pb(r) for r in rows]

    def get_transaction(self, principal: Principal, txn_id: str) -> pb.TubeTransaction:
        with connect(self.engine) as conn:
            teller_id, branch = self._desk(conn, principal)
            v.txn_id(txn_id, "txn_id")
            row = store.load(conn, txn_id)
            if row is None:
                raise NotFound(
                    f"txn_id: no tube transaction {txn_id!r}", field="txn_id", reason="not_found"
                )
            self._in_branch(row, teller_id, branch)
        return convert.txn_to_pb(row)

    def history(self, principal: Principal, txn_id: str) -> list[pb.TubeEventRecord]:
        """Every event of one transaction, oldest first."""
        self.get_transaction(principal, txn_id)
        with connect(self.engine) as conn:
            return [convert.event_to_pb(r) for r in store.events_of(conn, txn_id)]

    def events_after(self, branch: str, after_id: int, limit: int = EVENT_PAGE) -> list[Any]:
        """The branch's events after ``after_id`` (the caller checked the teller's scope)."""
        with connect(self.engine) as conn:
            return [
                convert.event_to_pb(r) for r in store.events_after(conn, branch, after_id, limit)
            ]

    # -- changes ----------------------------------------------------------------------------

    def _commit(
        self,
        principal: Principal,
        txn_id: str,
        decide: Any,
        now: datetime | None = None,
    ) -> pb.TubeTransaction:
        """Run ``decide(tx, row, teller_id) -> (values, event, detail) | None`` on the locked
        row; None means it is already so (a repeat): the record unchanged."""
        at = now or self.now()
        changed = None
        with store.transaction(self.engine, at) as tx:
            row, teller_id = self._txn_for_desk(tx, principal, txn_id)
            decided = decide(tx, row, teller_id)
            if decided is not None:
                values, event, detail = decided
                who = m.actor(m.TELLER_ACTOR, teller_id)
                values = {**values, "updated_at": at, "updated_by": who}
                changed = store.change(tx.conn, txn_id, values)
                tx.event(changed, event, who, detail)
                row = changed
        txn = convert.txn_to_pb(row)
        if changed is not None:
            # DEBUG, as the terminal's changes: tube_events records it with the teller.
            self._log("tube_desk_change", changed, logging.DEBUG, teller=teller_id)
            self._notify(changed, txn)
        return txn

    def receive_carrier(
        self, principal: Principal, txn_id: str, carrier_id: int, now: datetime | None = None
    ) -> pb.TubeTransaction:
        """Deposit: the carrier is at the back office (in_transit -> received)."""
        self.desk_branch(principal)  # who, before what: a stranger learns nothing
        v.carrier(carrier_id, "carrier_id")

        def decide(tx: store.Tx, row: Any, teller_id: str) -> Any:
            _deposit_only(row, "ReceiveCarrier")
            if row.state == m.RECEIVED and row.carrier_id == carrier_id:
                return None
            if row.state != m.IN_TRANSIT:
                raise _wrong_state(row, "ReceiveCarrier")
            if row.carrier_id != carrier_id:
                raise InvalidArgument(
                    "carrier_id",
                    f"transaction {row.txn_id} was sent in carrier {row.carrier_id}, not "
                    f"{carrier_id}",
                    reason="wrong_carrier",
                )
            return {"state": m.RECEIVED}, "received", f"carrier {carrier_id}"

        return self._commit(principal, txn_id, decide, now)

    def send_carrier(
        self, principal: Principal, txn_id: str, carrier_id: int, now: datetime | None = None
    ) -> pb.TubeTransaction:
        """Withdrawal: loaded and sent (open -> dispatched); a disputed deposit's carrier goes
        back (disputed -> returning)."""
        self.desk_branch(principal)
        v.carrier(carrier_id, "carrier_id")
        at = now or self.now()

        def decide(tx: store.Tx, row: Any, teller_id: str) -> Any:
            target = m.DISPATCHED if row.kind == m.WITHDRAWAL else m.RETURNING
            if row.state == target and row.carrier_id == carrier_id:
                return None
            if row.kind == m.WITHDRAWAL and row.state == m.OPEN:
                self._check_hold(row, at)
                return (
                    {"state": m.DISPATCHED, "carrier_id": carrier_id},
                    "dispatched",
                    f"carrier {carrier_id}",
                )
            if row.kind == m.DEPOSIT and row.state == m.DISPUTED:
                return (
                    {"state": m.RETURNING, "carrier_id": carrier_id},
                    "returning",
                    f"carrier {carrier_id} back to the customer",
                )
            raise _wrong_state(row, "SendCarrier")

        return self._commit(principal, txn_id, decide, at)

    def _check_hold(self, row: Any, now: datetime) -> None:
        """Never send goods the account no longer reserves."""
        hold = self.ledger.get_hold(row.hold_id) if row.hold_id else None
        if hold is None or hold.status != "active" or hold.expires_at <= now:
            ended = f"{hold.status}, expires {hold.expires_at.isoformat()}" if hold else "missing"
            raise FailedPrecondition(
                f"withdrawal {row.txn_id}: its hold is no longer active ({ended}); do not send "
                "the carrier — the terminal will reverse it",
                reason="hold_expired",
            )

    def enter_count(
        self,
        principal: Principal,
        txn_id: str,
        counted: pb.TubeAsset,
        note: str = "",
        now: datetime | None = None,
    ) -> pb.TubeTransaction:
        """Deposit: what the back office found (in_transit | received -> counted)."""
        self.desk_branch(principal)
        at = now or self.now()
        given = convert.asset_input(counted)
        found = v.parse_asset(
            given,
            "counted",
            self.settings,
            bill_details="all" if given.kind == m.BILL else "optional",
        )
        checked_note = v.text(note, "note", v.MAX_NOTE)
        if found.maturity is not None and date.fromisoformat(found.maturity) < at.date():
            raise InvalidArgument(
                "counted.bill.maturity",
                f"{found.maturity} is past; a matured bill is presented for payment, not deposited",
                reason="bill_matured",
            )

        def decide(tx: store.Tx, row: Any, teller_id: str) -> Any:
            _deposit_only(row, "EnterCount")
            _as_declared(row, found)
            values: dict[str, Any] = {
                "counted_kind": found.kind,
                "counted_currency": found.currency,
                "counted_minor": to_minor(found.amount, found.of),
                "counted_bill_id": found.bill_id,
                "counted_instrument": found.instrument,
                "counted_maturity": found.maturity,
                "note": checked_note,
            }
            if row.state == m.COUNTED and all(getattr(row, k) == x for k, x in values.items()):
                return None
            if row.state not in (m.IN_TRANSIT, m.RECEIVED):
                raise _wrong_state(row, "EnterCount")
            values.update(self._requote(row, found.amount))
            values["state"] = m.COUNTED
            declared = convert.amount_text(row.requested_minor, row.requested_currency)
            detail = f"counted {found.amount} {found.currency} (declared {declared})"
            if found.bill_id:
                detail += f", bill {found.bill_id} {found.instrument} due {found.maturity}"
            if checked_note:
                detail += f"; note: {checked_note}"
            return values, "counted", detail

        return self._commit(principal, txn_id, decide, at)

    def _requote(self, row: Any, amount: Any) -> dict[str, Any]:
        """The counted amount in the account's currency, at the rate version of the open."""
        of_account = ledger_asset(row.account_currency, "account.currency")
        if not row.rate_version:
            return {"account_minor": to_minor(amount, of_account)}
        try:
            q = self.ledger.quote(
                row.requested_currency,
                row.account_currency,
                str(amount),
                "from",
                row.created_at,  # usable then: the quote the customer was shown
                int(row.rate_version),
            )
        except DomainError as exc:
            raise mapped(exc, REQUOTE_FIELDS, "counted") from None
        return {"account_minor": to_minor(q.to_amount, of_account), "rate": convert.plain(q.rate)}

    # -- incidents --------------------------------------------------------------------------

    def list_incidents(
        self, principal: Principal, include_resolved: bool = False
    ) -> list[pb.Incident]:
        with connect(self.engine) as conn:
            _, branch = self._desk(conn, principal)
            rows = store.incidents(conn, branch, include_resolved)
        return [convert.incident_to_pb(r) for r in rows]

    def resolve_incident(
        self, principal: Principal, incident_id: int, resolution: str, now: datetime | None = None
    ) -> pb.Incident:
        self.desk_branch(principal)
        text = v.text(resolution, "resolution", v.MAX_RESOLUTION, required=True)
        if incident_id <= 0:
            raise InvalidArgument("incident_id", "required")
        at = now or self.now()
        with store.transaction(self.engine, at) as tx:
            teller_id, branch = self._desk(tx.conn, principal)
            row = store.load_incident(tx.conn, incident_id, lock=True)
            if row is None:
                raise NotFound(
                    f"incident_id: no incident {incident_id}",
                    field="incident_id",
                    reason="not_found",
                )
            self._in_branch(row, teller_id, branch, "incidents")
            if row.resolved_at is not None:
                raise FailedPrecondition(
                    f"incident {incident_id} was resolved by {row.resolved_by} at "
                    f"{row.resolved_at.isoformat()}",
                    reason="already_resolved",
                )
            who = m.actor(m.TELLER_ACTOR, teller_id)
            tx.conn.execute(
                update(tube_incidents)
                .where(tube_incidents.c.id == incident_id)
                .values(resolved_at=at, resolved_by=who, resolution=text)
            )
            txn = store.load(tx.conn, row.txn_id)
            if txn is not None:
                tx.event(
                    txn, m.INCIDENT_RESOLVED, who, f"incident {incident_id} ({row.kind}): {text}"
                )
            row = store.load_incident(tx.conn, incident_id)
        log_event(log, "tube_incident_resolved", incident_id=incident_id, teller=teller_id)
        return convert.incident_to_pb(row)

    def sweep_stale(self, now: datetime | None = None) -> list[int]:
        """Open one "stale" incident for each unfinished transaction with no change for
        ``stale_after``, so nothing is forgotten when a terminal dies for good; a change
        after it (and staleness again) opens another. Returns the incidents opened."""
        at = now or self.now()
        cutoff = at - self.stale_after
        with connect(self.engine) as conn:
            due = store.stale(conn, m.ACTIVE, cutoff, m.STALE_INCIDENT, SWEEP_PAGE)
        opened = []
        for txn_id in due:
            try:
                with store.transaction(self.engine, at) as tx:
                    row = store.load(tx.conn, txn_id, lock=True)
                    if row is None or row.state in m.FINAL or row.updated_at > cutoff:
                        continue
                    if store.incident_of(tx.conn, txn_id, m.STALE_INCIDENT, row.updated_at):
                        continue
                    minutes = int((at - row.updated_at).total_seconds() // 60)
                    detail = (
                        f"{row.kind} {txn_id} has been {row.state} for {minutes} min with no "
                        f"change (last by {row.updated_by}); terminal {row.terminal_id} may be "
                        f"down: find the customer {row.customer_id} and the carrier"
                    )
                    incident_id = store.open_incident(tx, row, m.STALE_INCIDENT, detail)
                    store.change(tx.conn, txn_id, {"incident_id": incident_id})
                    tx.event(
                        row, m.INCIDENT_OPENED, m.SERVER_ACTOR, f"incident {incident_id}: {detail}"
                    )
            except IntegrityError:  # pragma: no cover - ids are generated
                continue
            opened.append(incident_id)
            log_event(
                log,
                "tube_stale",
                logging.WARNING,
                txn_id=txn_id,
                terminal_id=row.terminal_id,
                incident_id=incident_id,
            )
        return opened

    def latest_event_id(self) -> int:
        with connect(self.engine) as conn:
            return int(conn.execute(select(func.max(tube_events.c.id))).scalar() or 0)


def _deposit_only(row: Any, rpc: str) -> None:
    if row.kind != m.DEPOSIT:
        raise FailedPrecondition(
            f"{rpc} is for deposits; {row.txn_id} is a {row.kind}", reason="wrong_kind"
        )


def _as_declared(row: Any, found: v.ParsedAsset) -> None:
    """The count is of the asset the customer declared (its amount may differ)."""
    if found.kind != row.requested_kind:
        raise InvalidArgument(
            "counted.kind", f"the customer deposited {row.requested_kind}, not {found.kind}"
        )
    if found.currency != row.requested_currency:
        raise InvalidArgument(
            "counted.currency",
            f"the customer declared {row.requested_currency}; count in it, not {found.currency}",
            reason="currency_mismatch",
        )


def _wrong_state(row: Any, rpc: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{rpc} is not possible for {row.kind} {row.txn_id} in state {row.state}",
        reason="wrong_state",
    )
