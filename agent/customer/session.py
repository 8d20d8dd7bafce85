"""The customer sessions the agent holds after a verified card + PIN.

The server's session token is a credential, so it stays inside the agent: local clients (the
kiosk page, scripted customers) get a random ``session_id`` handle instead. Sessions live in
memory only: after an agent restart the customer signs in again, while unfinished
transactions are recovered from the journal, not from sessions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from branchline.common.ids import random_hex

# The server's sessions last 10 minutes; the agent forgets its handle a little sooner.
LOCAL_TTL = 9 * 60.0
MAX_SESSIONS = 8


class SessionUnknown(LookupError):
    """No such session: never opened, closed, or expired."""


@dataclass(frozen=True)
class AccountView:
    account_id: str
    kind: str
    currency: str
    balance: str
    available: str


@dataclass(frozen=True)
class CustomerSession:
    session_id: str
    # The server's token: presented on the customer's requests, never shown or logged.
    token: str
    customer_id: str
    pan_masked: str
    accounts: tuple[AccountView, ...]
    opened_at: float

    def account(self, account_id: str) -> AccountView:
        for account in self.accounts:
            if account.account_id == account_id:
                return account
        raise SessionUnknown(f"account_id: {account_id!r} is not one of this customer's accounts")

    def __repr__(self) -> str:  # keeps the token out of logs and tracebacks
        return f"CustomerSession({self.session_id!r}, customer={self.customer_id!r})"


class SessionStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, CustomerSession] = {}

    def open(
        self, token: str, customer_id: str, pan_masked: str, accounts: tuple[AccountView, ...]
    ) -> CustomerSession:
        self._expire()
        while len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.opened_at)
            del self._sessions[oldest.session_id]
        session = CustomerSession(
            session_id=random_hex(16),
            token=token,
            customer_id=customer_id,
            pan_masked=pan_masked,
            accounts=accounts,
            opened_at=self._clock(),
        )
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str) -> CustomerSession:
        self._expire()
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionUnknown(
                "session_id: no such customer session (signed out or expired); "
                "sign in with card and PIN"
            )
        return session

    def close(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    def _expire(self) -> None:
        now = self._clock()
        for session_id, session in list(self._sessions.items()):
            if now - session.opened_at >= LOCAL_TTL:
                del self._sessions[session_id]
