"""A recovered tube transaction resumes from its journal's last step (agent/tube/engine.py)."""

from __future__ import annotations

from branchline.agent.journal.txjournal import Step, Transaction
from branchline.agent.tube.engine import live_from_journal


def journaled(*steps: Step) -> Transaction:
    return Transaction(
        id="tx-1",
        kind="tube_deposit",
        state=steps[-1].name if steps else "begun",
        finished=False,
        terminal_id="T-1",
        data={"customer_id": "c1"},
        created_at=100.0,
        updated_at=130.0,
        steps=steps,
    )


def test_the_last_step_gives_the_stage_its_data_time_and_number() -> None:
    first = Step(1, "begun", {"from": "", "to": "begun", "amount": "1.00"}, 100.0)
    last = Step(2, "sent", {"from": "begun", "to": "sent", "carrier_id": 7}, 130.0)
    txn = journaled(first, last)
    assert txn.last_step is last
    live = live_from_journal(txn)
    assert (live.stage, live.stage_data, live.stage_at, live.step) == (
        "sent",
        {"carrier_id": 7},
        130.0,
        2,
    )
    assert live.data == {"customer_id": "c1"}


def test_a_transaction_without_steps_starts_at_its_creation() -> None:
    txn = journaled()
    assert txn.last_step is None
    live = live_from_journal(txn)
    assert (live.stage_data, live.stage_at, live.step) == ({}, 100.0, 0)
