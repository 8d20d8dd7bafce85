"""A customer who declines the receipt gets none; the e-journal says so; a teller case prints."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from branchline.agent.kiosk.flows.tube import message_key
from branchline.agent.tube import closing
from branchline.agent.tube import machines as m
from branchline.agent.tube.engine import Live

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]


class Engine:
    def __init__(self) -> None:
        self.printed: list[str] = []
        self.journal: list[tuple[str, dict[str, Any]]] = []

        async def submit(name: str, params: dict[str, Any], timeout: float = 0) -> Any:
            self.printed.append(bytes.fromhex(params["data_hex"]).decode("latin-1"))
            return {"bytes": len(params["data_hex"]) // 2}

        async def append(*args: Any) -> None:
            return None

        self.agent = SimpleNamespace(
            owners={"printer": SimpleNamespace(submit=submit)},
            config=SimpleNamespace(terminal=SimpleNamespace(terminal_id="K-1", branch="BR-1")),
            store=SimpleNamespace(
                ejournal=SimpleNamespace(
                    append=lambda kind, fields: self.journal.append((kind, fields))
                )
            ),
        )

    async def ejournal(self, kind: str, fields: dict[str, Any]) -> None:
        self.journal.append((kind, fields))


def live(receipt: bool | None) -> Live:
    data: dict[str, Any] = {
        "customer_id": "C-1",
        "account_id": "ACC-1",
        "asset": {"kind": "ASSET_KIND_CASH", "currency": "CNY", "amount": "100"},
    }
    if receipt is not None:
        data["receipt"] = receipt
    return Live("txn-1", m.DEPOSIT, data, m.POSTED, {}, time.time(), 3)


@pytest.mark.parametrize(
    ("receipt", "final", "printed"),
    [
        (None, m.COMPLETED, True),
        (True, m.COMPLETED, True),
        (False, m.COMPLETED, False),
        (False, m.RETURNED, False),
        (False, m.HANDED_TO_TELLER, True),
    ],
)
async def test_receipt_choice(receipt: bool | None, final: str, printed: bool) -> None:
    engine = Engine()
    await closing._print(engine, live(receipt), final)  # type: ignore[arg-type]
    assert bool(engine.printed) == printed
    kinds = [kind for kind, _ in engine.journal]
    if printed:
        assert "TUBE DEPOSIT" in engine.printed[0] and "BLTX:K-1:txn-1" in engine.printed[0]
        assert "receipt_printed" in kinds and "receipt_declined" not in kinds
    else:
        assert kinds == ["receipt_declined"]
        assert engine.journal[0][1] == {"txn": "txn-1", "reference": "BLTX:K-1:txn-1"}


@pytest.mark.parametrize(
    ("receipt", "stage", "key"),
    [
        (None, m.POSTED, "tube.stage.posted"),  # "Printing your receipt…"
        (True, m.RETURN_TAKEN, "tube.stage.return_taken"),
        (False, m.POSTED, "tube.stage.finishing"),  # declined: nothing said of printing
        (False, m.RETURN_TAKEN, "tube.stage.finishing"),
        (False, m.COMPLETED, "tube.stage.completed"),
    ],
)
async def test_the_page_speaks_of_printing_only_when_a_receipt_was_chosen(
    receipt: bool | None, stage: str, key: str
) -> None:
    waiting = live(receipt)
    waiting.stage = stage
    assert message_key(waiting) == key
