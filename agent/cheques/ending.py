"""How a cheque-book purchase ends when the journal refused its stage's data for good
(agent/engine_refusal.py): the ways the engine already ends one that cannot go on.

- Nothing ordered yet (``starting`` after the server opened it, the customer's and the
  checking stages): ``canceling`` — CANCEL, nothing was charged.
- The server never opened it (``starting`` refused): ``refused``, nothing to tell it.
- The order was accepted (``ordering``) or printing is under way: ``failing`` — FAULT with
  the reason ``journal_refused``: the server voids what was not reported issued, refunds the
  fee of every book not issued complete, once, and opens an incident. (The plan itself may be
  what the journal refused, so the ``faulted`` step that carries it cannot be used.)
- A closing stage (the server has been told already): its final state.
"""

from __future__ import annotations

from branchline.agent.cheques import machine as m
from branchline.agent.cheques.engine import Live
from branchline.agent.engine_refusal import REASON, Ending
from branchline.v1 import cheques_pb2 as pb

CLOSING_TO_FINAL = {m.FINISHING: m.COMPLETED, m.FAILING: m.FAILED, m.CANCELING: m.CANCELED}
# From the order on, the server has charged the fee and allocated serials.
ORDERED = frozenset({m.ORDERING, m.PRINTING, m.PRESENTING, m.FAULTED})


def _ordered(live: Live) -> bool:
    if live.stage != m.ORDERING:
        return True
    server = live.server
    return server is not None and server.state == pb.CHEQUE_STATE_ORDERED


def ending(live: Live) -> Ending:
    if live.stage in CLOSING_TO_FINAL:
        return Ending(CLOSING_TO_FINAL[live.stage], code="")
    if live.stage == m.STARTING and live.server is None:
        return Ending(m.REFUSED)
    if live.stage in ORDERED and _ordered(live):
        detail = f"the terminal's journal refused the data of stage {live.stage}"
        finish = pb.ChequeFinish(kind=pb.FINISH_KIND_FAULT, reason=REASON, detail=detail)
        return Ending(m.FAILING, finish)
    return Ending(m.CANCELING, pb.ChequeFinish(kind=pb.FINISH_KIND_CANCEL, reason=REASON))
