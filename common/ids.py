"""Random identifiers that can never be taken for a card number.

A hex id (``uuid4().hex``, ``token_hex``) holds a run of 13-19 decimal digits that passes the
Luhn check in about 1 id in 250 (32 hex digits). The redaction rule (``common/redaction.py``)
masks such a run wherever it stands, and the terminal's journal refuses transaction data that
holds one: a withdrawal whose hold id came out like that could never be journaled and never
finished. So ids are drawn again until no run of 13 or more decimal digits is left — still
uniformly random among the ids without one, the same length and alphabet as before.
"""

from __future__ import annotations

import re
import secrets

# The shortest digit run the redaction rule looks at (PANs are 13-19 digits).
_PAN_LIKE = re.compile(r"\d{13}")


def random_hex(nbytes: int = 16) -> str:
    """``2 * nbytes`` lower-case hex digits with no run of 13 decimal digits."""
    while True:
        candidate = secrets.token_hex(nbytes)
        if not _PAN_LIKE.search(candidate):
            return candidate
