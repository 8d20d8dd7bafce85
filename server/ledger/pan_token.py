"""Card tokens: a keyed hash (HMAC-SHA-256) of the PAN, so no table ever holds a PAN.

The key lives in its own file (mode 0600), apart from the database, created on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from branchline.common.redaction import mask_pan

KEY_BYTES = 32


class PanTokenizer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("PAN token key: at least 16 bytes")
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> PanTokenizer:
        """Load the key, creating it (0600, never world-readable) when the file is absent."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another replica made it first
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(secrets.token_bytes(KEY_BYTES).hex().encode())
                    out.flush()
                    os.fsync(out.fileno())
        return cls(bytes.fromhex(path.read_text().strip()))

    def derive_key(self, label: bytes) -> bytes:
        """A key for another purpose, derived from this one (HMAC with a distinct label)."""
        return hmac.new(self._key, label, hashlib.sha256).digest()

    def token(self, pan: str) -> str:
        return hmac.new(self._key, pan.encode(), hashlib.sha256).hexdigest()


def validate_pan(pan: str) -> str | None:
    """The problem with a PAN, naming no digits of it; None when it is well formed."""
    if not pan.isdigit():
        return "pan: digits only"
    if not 12 <= len(pan) <= 19:
        return f"pan: {len(pan)} digits; a PAN has 12 to 19"
    return None


__all__ = ["PanTokenizer", "mask_pan", "validate_pan"]
