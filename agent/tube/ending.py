"""How a tube transaction ends when the journal refused its stage's data for good
(agent/engine_refusal.py): the ways the engine already ends one that cannot go on.

- Withdrawal with a hold (the server approved it) and the carrier not in the customer's hands:
  ``reversing`` — REVERSE releases the hold once and opens an incident (reason
  ``journal_refused``).
- Withdrawal whose carrier may be, or is, in the customer's hands (``arrived``, ``taken``,
  ``capturing``): ``handing_over`` — a teller settles the hold (capture or release); incident.
- Withdrawal the server refused, or a deposit it refused to open: ``canceled``, nothing was
  approved, nothing to tell the server.
- Deposit opened, nothing sent: ``canceling``. A deposit whose carrier is loaded, on its way
  or counted: ``handing_over`` (the customer's items are the branch's to return).
- A closing stage (the server has been told already): its final state.
"""

from __future__ import annotations

from branchline.agent.engine_refusal import REASON, Ending
from branchline.agent.tube import machines as m
from branchline.agent.tube.engine import Live, event
from branchline.v1 import tube_pb2 as pb

S = pb.TubeState


def _approved(live: Live) -> bool:
    """Whether the server holds money for this withdrawal (its answer to the open)."""
    server = live.server
    return server is not None and server.state == S.TUBE_STATE_OPEN and bool(server.hold_id)


def _opened(live: Live) -> bool:
    return live.server is not None and live.server.state == S.TUBE_STATE_OPEN


def _hand_over(live: Live) -> Ending:
    detail = f"the terminal's journal refused the data of stage {live.stage}"
    return Ending(m.HANDING_OVER, event(pb.TUBE_EVENT_HANDOVER, reason=REASON, detail=detail[:300]))


def ending(live: Live) -> Ending:
    if live.stage in m.CLOSING_TO_FINAL:
        return Ending(m.CLOSING_TO_FINAL[live.stage], code="")
    if live.kind == m.WITHDRAWAL:
        if live.stage == "authorising" and not _approved(live):
            return Ending(m.CANCELED)
        if live.stage in ("authorising", "awaiting_delivery"):
            return Ending(m.REVERSING, event(pb.TUBE_EVENT_REVERSE, reason=REASON))
        return _hand_over(live)
    if live.stage == "opening":
        if _opened(live):
            return Ending(m.CANCELING, event(pb.TUBE_EVENT_CANCEL, reason=REASON))
        return Ending(m.CANCELED)
    return _hand_over(live)
