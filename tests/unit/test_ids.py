"""Random ids never look like a card number (common/ids.py).

Found in the suite: a withdrawal's hold id, ``uuid4().hex``, held a Luhn-valid run of 13+
digits; the terminal's journal refused the transaction data naming it ("looks like a clear
PAN") on every retry and the withdrawal never finished."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from branchline.common import ids
from branchline.common.redaction import redact_text

ROOT = Path(__file__).resolve().parents[2]
# A uuid4().hex of the kind that stopped a withdrawal: 4761739001010010 is a test Visa PAN.
PAN_LIKE_HEX = "ab4761739001010010cd0123456789ef"


def test_an_id_with_a_pan_like_run_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    assert redact_text(PAN_LIKE_HEX) != PAN_LIKE_HEX  # what the journal would have refused
    draws = iter([PAN_LIKE_HEX, "0123456789abcdef0123456789abcdef"])
    monkeypatch.setattr(ids.secrets, "token_hex", lambda nbytes: next(draws))
    assert ids.random_hex() == "0123456789abcdef0123456789abcdef"


def test_ids_are_left_whole_by_the_redaction_rule() -> None:
    for nbytes in (6, 10, 12, 16):
        for _ in range(2000):
            value = ids.random_hex(nbytes)
            assert len(value) == 2 * nbytes and re.fullmatch(r"[0-9a-f]+", value)
            assert redact_text(value) == value


def test_no_product_code_draws_hex_ids_another_way() -> None:
    """``uuid4().hex`` and ``token_hex`` ids may hold a PAN-like run: ids come from
    ``common.ids``. Secrets that are never shown or journaled (salts, temporary names) and
    ids too short to hold 13 digits are the exceptions."""
    allowed = {
        "server/cheques/codes.py": "salt = secrets.token_hex(16)",
        "server/pki.py": "secrets.token_hex(6)",
        "server/dispatch/tasks/lifecycle.py": "secrets.token_hex(6)",
        "server/dispatch/calls/queueing.py": "secrets.token_hex(6)",
        "server/storage/testing.py": "uuid.uuid4().hex",
    }
    found = []
    for folder in ("server", "agent", "common", "drivers", "hardware-sim"):
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "common/ids.py":
                continue
            for line in path.read_text().splitlines():
                if (
                    re.search(r"uuid4\(\)\.hex|token_hex\(", line)
                    and allowed.get(rel, "~") not in line
                ):
                    found.append(f"{rel}: {line.strip()}")
    assert found == [], "draw ids with common.ids.random_hex:\n" + "\n".join(found)
