"""The terminal's ``tube_event``: one event applied to its transaction, exactly once.

A ledger call (deposit, capture, release) runs in its own transaction, idempotent on
``Reference(terminal, "<txn_id>:<step>")``, BEFORE the transaction's record changes: a crash
in between leaves the record as it was, and the retry replays the ledger call and
completes. While an event's ledger call is under way the record is marked ``pending`` with
the event, so nothing else (the back office sending the carrier, a different event) can
change it meanwhile; the same event sent again (a retry, a second replica) goes ahead, and
the ledger's reference makes both one posting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError

from branchline.common.errors import DomainError, InvalidArgument, NotFound
from branchline.common.field_paths import mapped
from branchline.server.ledger.money import asset as ledger_asset
from branchline.server.ledger.money import to_minor
from branchline.server.ledger.postings import Posting, Reference
from branchline.server.ledger.requests import BillDeposit, DepositRequest
from branchline.server.storage.engine import batch_state
from branchline.server.tube import convert, rules, store
from branchline.server.tube import model as m
from branchline.server.tube import validate as v
from branchline.server.tube.answers import EVENT_KIND, Answers, Raced, refusal
from branchline.server.tube.core import TubeCore
from branchline.v1 import tube_pb2 as pb


@dataclass(frozen=True)
class LedgerOutcome:
    """What an event's ledger call did: the entry posted, the balances after, a note."""

    entry_id: int | None = None
    balance_after: Decimal | None = None
    available_after: Decimal | None = None
    detail: str = ""


class TerminalEvents(Answers):
    # -- tube_event -------------------------------------------------------------------------

    def handle_event(
        self, terminal_id: str, message: pb.TubeEvent, now: datetime | None = None
    ) -> pb.TubeReply:
        """Apply one of the terminal's events to its transaction (see ``rules``)."""
        at = now or self.now()
        try:
            request_id = v.request_id(message.request_id, "tube_event.request_id")
        except DomainError as exc:
            return refusal(message.request_id[: v.MAX_REQUEST_ID], exc)
        return self._once(
            terminal_id,
            request_id,
            EVENT_KIND,
            lambda: self._event(terminal_id, request_id, message, at),
        )

    def _event_input(self, message: pb.TubeEvent) -> rules.EventInput:
        kind = convert.EVENT_FROM_PB.get(message.kind)
        if kind is None:
            raise InvalidArgument(
                "tube_event.kind",
                "one of carrier_sent, carrier_arrived, carrier_taken, confirm, dispute, cancel, "
                "reverse, handover is required",
            )
        if kind == m.CARRIER_SENT:
            v.carrier(message.carrier_id, "tube_event.carrier_id")
        reason = v.reason(
            message.reason, "tube_event.reason", required=kind in (m.REVERSE, m.HANDOVER, m.DISPUTE)
        )
        if kind == m.DISPUTE and reason not in (m.DISPUTE_RETURN, m.DISPUTE_TELLER):
            raise InvalidArgument(
                "tube_event.reason",
                f"a dispute is {m.DISPUTE_RETURN} (the carrier back) or {m.DISPUTE_TELLER} (a "
                f"teller), not {reason!r}",
            )
        detail = v.text(message.detail, "tube_event.detail", v.MAX_DETAIL)
        return rules.EventInput(
            kind, int(message.carrier_id), reason, bool(message.customer_confirmed), detail
        )

    def _event(
        self, terminal_id: str, request_id: str, message: pb.TubeEvent, now: datetime
    ) -> pb.TubeReply:
        try:
            txn_id = v.txn_id(message.txn_id, "tube_event.txn_id")
            ev = self._event_input(message)
        except DomainError as exc:
            return self._refuse(terminal_id, request_id, EVENT_KIND, exc, now)
        row = self._read(txn_id)
        if row is None or row.terminal_id != terminal_id:
            return self._refuse(
                terminal_id,
                request_id,
                EVENT_KIND,
                NotFound(
                    f"tube_event.txn_id: no tube transaction {txn_id!r} of this terminal",
                    field="tube_event.txn_id",
                    reason="not_found",
                ),
                now,
            )
        try:
            step = rules.plan(row, ev)
        except DomainError as exc:
            return self._refuse(terminal_id, request_id, EVENT_KIND, exc, now, row)
        if step.repeat:
            reply = pb.TubeReply(request_id=request_id, txn=convert.txn_to_pb(row))
            return self._answer(terminal_id, request_id, EVENT_KIND, reply, now)
        outcome = None
        if step.ledger is not None:
            try:
                row = self._claim(txn_id, ev, step, now)
            except DomainError as exc:  # something else changed it first
                return self._refuse(
                    terminal_id, request_id, EVENT_KIND, exc, now, self._read(txn_id)
                )
            if row is None:  # finished meanwhile by the same event: answer as a repeat
                raise Raced()
            try:
                outcome = ledger_step(self, row, step, ev, now)
            except DomainError as exc:
                return self._ledger_refused(terminal_id, request_id, txn_id, ev, exc, now)
        return self._apply(terminal_id, request_id, txn_id, ev, step, outcome, now)

    def _claim(self, txn_id: str, ev: rules.EventInput, step: rules.Step, now: datetime) -> Any:
        """Mark the record ``pending`` with the event before its ledger call.

        Not in a SQLite group-commit batch: there the claim, the ledger call and the change
        commit together or not at all, and no other writer runs until then, so nobody could
        ever see the mark (one UPDATE a confirm saved; the record is read, as ever)."""
        with store.transaction(self.engine, now) as tx:
            row = store.load(tx.conn, txn_id, lock=True)
            assert row is not None
            again = rules.plan(row, ev)  # raises if something else got in first
            if again.repeat:
                return None
            if again != step:
                raise Raced()
            if row.pending != ev.kind and batch_state(tx.conn) is None:
                row = store.change(tx.conn, txn_id, {"pending": ev.kind})
            return row

    def _ledger_refused(
        self,
        terminal_id: str,
        request_id: str,
        txn_id: str,
        ev: rules.EventInput,
        exc: DomainError,
        now: datetime,
    ) -> pb.TubeReply:
        refused = mapped(exc, {}, "tube_event")
        if refused.reason == "reference_reused":
            refused.reason = "txn_id_reused"
        try:
            with store.transaction(self.engine, now) as tx:
                row = store.load(tx.conn, txn_id, lock=True)
                assert row is not None
                if row.pending == ev.kind:
                    row = store.change(tx.conn, txn_id, {"pending": None})
                self._log_refusal(terminal_id, EVENT_KIND, refused, row)
                reply = refusal(request_id, refused, convert.txn_to_pb(row))
                return self._answer(terminal_id, request_id, EVENT_KIND, reply, now, tx)
        except IntegrityError:
            raise Raced() from None

    def _apply(
        self,
        terminal_id: str,
        request_id: str,
        txn_id: str,
        ev: rules.EventInput,
        step: rules.Step,
        outcome: LedgerOutcome | None,
        now: datetime,
    ) -> pb.TubeReply:
        who = m.actor(m.TERMINAL_ACTOR, terminal_id)
        changed = None
        try:
            with store.transaction(self.engine, now) as tx:
                row = store.load(tx.conn, txn_id, lock=True)
                assert row is not None
                try:
                    again = rules.plan(row, ev)
                except DomainError as exc:
                    reply = refusal(request_id, exc, convert.txn_to_pb(row))
                    return self._answer(terminal_id, request_id, EVENT_KIND, reply, now, tx)
                if not again.repeat:
                    if step.ledger is not None and again != step:
                        raise Raced()
                    changed = self._change(tx, row, ev, again, outcome, who)
                    row = changed
                reply = pb.TubeReply(request_id=request_id, txn=convert.txn_to_pb(row))
                self._answer(terminal_id, request_id, EVENT_KIND, reply, now, tx)
        except IntegrityError:
            raise Raced() from None
        if changed is not None:
            # DEBUG, as tube_opened: tube_events records the change.
            self._log(
                "tube_event_applied",
                changed,
                logging.DEBUG,
                tube_event=ev.kind,
                reason=ev.reason or None,
            )
            self._notify(changed, reply.txn)
        return reply

    def _change(
        self,
        tx: store.Tx,
        row: Any,
        ev: rules.EventInput,
        step: rules.Step,
        outcome: LedgerOutcome | None,
        who: str,
    ) -> Any:
        values: dict[str, Any] = {
            "state": step.to_state,
            "pending": None,
            "updated_at": tx.now,
            "updated_by": who,
        }
        if step.carrier_id is not None:
            values["carrier_id"] = step.carrier_id
        if step.reason is not None:
            values["reason"] = step.reason
        if step.note is not None:
            values["note"] = step.note
        of_account = ledger_asset(row.account_currency, "account.currency")
        if outcome is not None:
            if outcome.entry_id is not None:
                values["entry_id"] = outcome.entry_id
            if outcome.balance_after is not None:
                values["balance_after_minor"] = to_minor(outcome.balance_after, of_account)
            if outcome.available_after is not None:
                values["available_after_minor"] = to_minor(outcome.available_after, of_account)
        detail = _event_detail(row, ev, step, outcome)
        known = (
            store.incident_of(tx.conn, row.txn_id, step.incident)
            if step.incident == m.WRONG_CARRIER_INCIDENT
            else None
        )
        if step.incident is not None and known is None:  # one wrong-carrier report is enough
            values["incident_id"] = store.open_incident(
                tx, row, step.incident, _incident_detail(row, ev, step, detail)
            )
        changed = store.change(tx.conn, row.txn_id, values)
        tx.event(changed, step.event, who, detail)
        return changed


def ledger_step(
    core: TubeCore, row: Any, step: rules.Step, ev: rules.EventInput, now: datetime
) -> LedgerOutcome:
    """The ledger call ``step`` makes for ``ev``: release the hold, capture it, or post the
    counted deposit (idempotent on ``<txn_id>:capture`` / ``<txn_id>:deposit``)."""
    terminal_id, txn_id = row.terminal_id, row.txn_id
    if step.ledger == rules.RELEASE:
        why = f"tube {ev.kind}: {ev.reason}" if ev.reason else f"tube {ev.kind}"
        released = core.ledger.release_hold(row.hold_id, why, now, terminal_id=terminal_id)
        after = core.customer_account(row.customer_id, row.account_id)
        return LedgerOutcome(
            available_after=after.available if after is not None else None,
            detail=f"hold {row.hold_id} released"
            if released.released
            else f"hold {row.hold_id} had already ended ({released.hold.status})",
        )
    posting: Posting
    if step.ledger == rules.CAPTURE:
        posting = core.ledger.post_withdrawal(
            Reference(terminal_id, f"{txn_id}:capture"), row.hold_id, now
        )
    else:
        posting = core.ledger.post_deposit(counted_deposit(row, now))
    balance = posting.leg(row.account_id).balance_after
    after = core.customer_account(row.customer_id, row.account_id)
    return LedgerOutcome(
        entry_id=posting.entry_id,
        balance_after=balance,
        available_after=(
            balance - after.held if after is not None and balance is not None else None
        ),
        detail=f"entry {posting.entry_id}",
    )


def counted_deposit(row: Any, now: datetime) -> DepositRequest:
    """The ledger deposit of what the back office counted, at the rate quoted at the open."""
    bill = None
    if row.counted_kind == m.BILL:
        bill = BillDeposit(
            row.counted_bill_id,
            row.counted_instrument,
            date.fromisoformat(row.counted_maturity),
        )
    return DepositRequest(
        Reference(row.terminal_id, f"{row.txn_id}:deposit"),
        account_id=row.account_id,
        branch=row.branch,
        currency=row.counted_currency,
        amount=convert.amount_text(row.counted_minor, row.counted_currency),
        now=now,
        rate_version=int(row.rate_version) if row.rate_version else None,
        bill=bill,
        customer_id=row.customer_id,
        # The quote was fixed when the customer opened it: that is the rate posted.
        quoted_at=min(row.created_at, now),
    )


def asset_text(kind: str | None, currency: str | None, minor: int | None) -> str:
    if not kind or not currency:
        return "-"
    return f"{convert.amount_text(minor, currency)} {currency} {kind}"


def _event_detail(
    row: Any, ev: rules.EventInput, step: rules.Step, outcome: LedgerOutcome | None
) -> str:
    parts = []
    if ev.kind in (m.CARRIER_SENT, m.CARRIER_ARRIVED) and ev.carrier_id:
        parts.append(f"carrier {ev.carrier_id}")
    if step.incident == m.WRONG_CARRIER_INCIDENT:
        parts.append(f"but carrier {row.carrier_id} was sent")
    elif ev.kind == m.CARRIER_ARRIVED and not ev.carrier_id:
        parts.append("carrier not identified")
    if ev.reason:
        parts.append(f"reason {ev.reason}")
    if step.note:
        parts.append(step.note)
    if outcome is not None and outcome.detail:
        parts.append(outcome.detail)
    if ev.detail:
        parts.append(ev.detail)
    return "; ".join(parts)


def _incident_detail(row: Any, ev: rules.EventInput, step: rules.Step, detail: str) -> str:
    what = asset_text(row.requested_kind, row.requested_currency, row.requested_minor)
    heads = {
        m.WRONG_CARRIER_INCIDENT: "a different carrier arrived at the terminal",
        m.DISPUTE_INCIDENT: "the customer disputes the count and asked for a teller",
    }
    head = heads.get(step.incident or "", f"{ev.kind} from state {row.state}")
    return (
        f"{head}: {row.kind} {row.txn_id} of {what}, customer {row.customer_id}, terminal "
        f"{row.terminal_id}" + (f"; {detail}" if detail else "")
    )
