"""When the journal refuses a stage's data for good: end the transaction, never retry it.

The step runner (agent/engine_base.py) tries a stage again after an unexpected failure: a
disk briefly full, a database locked, a bug a restart fixes. A ``DataError`` from the
journal (``SensitiveData`` among them: the data looks like a clear PAN, a float, a value it
cannot encode, a message over the outbox's size) is different: the same data is refused every
time, so trying again would hang the customer's transaction for ever, and leave whatever the
host approved (a hold, a fee) unreversed.

So the runner ends it the way its engine ends a transaction that cannot go on: the engine
names an ``Ending`` for the stage — the state, and the message that tells the server (a
reversal, a hand-over, a fault: the server releases what it approved once, under the outbox
key, and opens an incident). Only what the journal can always store is journaled with it:
the reason, the customer's code, the stage and the refused field's path — never the value.
The ending is one durable step like any other, so a restart carries on from it and does not
run the refused stage again.

The other journal errors stay transient (retried): ``TransitionNotAllowed``, ``UnknownKind``
and ``UnknownTransaction`` are the engine's own tables disagreeing with the journal — a bug a
fixed build resumes from the same journaled stage, where ending early would lose a
transaction that could have completed; ``TransactionFinished`` cannot reach a runner (it stops
at a final state); a database error (disk full, locked, closed), ``CorruptRecord`` and
``EJournalKeyError`` are conditions of the machine that people or a restart can clear.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from branchline.agent.journal.jsoncodec import DataError
from branchline.common.logs import log_event
from branchline.common.redaction import redact_text

if TYPE_CHECKING:
    from branchline.agent.engine_base import Live, StepEngine

# What the journal refuses for good (the subclass SensitiveData included).
PERMANENT = (DataError,)
# The reason journaled with the ending and sent to the server (its incident's kind).
REASON = "journal_refused"
# What the customer's view says: the transaction could not be completed (kiosk catalogues).
CODE = "not_completed"
MAX_FIELD = 128


@dataclass(frozen=True)
class Ending:
    """How an engine ends a transaction whose stage the journal refused."""

    state: str
    message: Message | None = None  # tells the server (reverse, hand over, fault)
    code: str = CODE  # "" when the outcome stands as it is (a closing stage)


def refused_field(exc: DataError) -> str:
    """The refused field's path, safe to log and journal (a key that looks like a PAN is
    masked; the value itself is never in it)."""
    return redact_text(exc.field)[:MAX_FIELD]


async def end_refused(engine: StepEngine[Any], live: Live[Any, Any], exc: DataError) -> bool:
    """End ``live`` after the journal refused its stage's data; False when it could not be
    ended (people must look: the runner stops, it does not retry)."""
    ids = engine._ids(live.key)
    where = refused_field(exc)
    stage = live.stage
    log_event(
        engine._log,
        f"{engine.NAME}_journal_refused",
        logging.ERROR,
        **ids,
        kind=live.kind,
        stage=stage,
        field=where,
        error=type(exc).__name__,
    )
    ending = engine.refusal_ending(live)
    if ending is None:
        return await _unended(engine, live, where, "the engine has no ending for this stage")
    data = {"reason": REASON, "code": ending.code, "refused_stage": stage, "refused_field": where}
    # What the stage told the customer may be the very text refused (a server's message).
    live.message, live.bad_field = "", ""
    try:
        await engine.advance(
            live,
            ending.state,
            data,
            message=ending.message,
            ejournal=(
                f"{engine.NAME}_journal_refused",
                {"stage": stage, "field": where, "ending": ending.state},
            ),
        )
    except PERMANENT as again:
        # Even the ending is refused (its message?): nothing more can be journaled safely.
        why = f"the ending was refused too ({type(again).__name__} at {refused_field(again)})"
        return await _unended(engine, live, where, why)
    # Any other failure of the ending (a disk briefly full) goes up to the runner, which tries
    # the stage again: refused again, it comes back here.
    if ending.code:
        live.code = ending.code
        live.touch()
    return True


async def _unended(engine: StepEngine[Any], live: Live[Any, Any], where: str, why: str) -> bool:
    log_event(
        engine._log,
        f"{engine.NAME}_refusal_unended",
        logging.CRITICAL,
        **engine._ids(live.key),
        stage=live.stage,
        field=where,
        error=why[:300],
    )
    await engine.ejournal(
        f"{engine.NAME}_refusal_unended",
        {engine.KEY: live.key, "stage": live.stage, "field": where},
    )
    return False
