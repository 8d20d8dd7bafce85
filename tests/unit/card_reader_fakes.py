"""Shared fakes for the card-reader tests (no tests here): a scripted transport, a fake clock."""

from __future__ import annotations

from collections.abc import Callable

from branchline.drivers.base import CancelToken
from branchline.drivers.transport import Transport


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class FakeTransport(Transport):
    """The "device" answers each write with ``responder(written)``; reads drain that answer.

    A read that finds nothing waiting lets the fake clock run out the timeout instead of
    sleeping, so timeouts cost no real time.
    """

    def __init__(self, clock: FakeClock, responder: Callable[[bytes], bytes]) -> None:
        super().__init__()
        self.clock = clock
        self.responder = responder
        self.inbox = bytearray()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))
        self.inbox += self.responder(bytes(data))

    def _read_some(self, size: int, timeout: float) -> bytes:
        raise AssertionError("read() is overridden")

    def read(self, size: int, timeout: float) -> bytes:
        out = bytes(self.inbox[:size])
        del self.inbox[:size]
        if len(out) < size:
            self.clock.advance(timeout)  # a real line would wait out the timeout for the rest
        return out

    def discard_input(self) -> None:
        self.inbox.clear()

    def close(self) -> None:
        self.closed = True


def scripted(answers: list[bytes]) -> Callable[[bytes], bytes]:
    """Answer the n-th write with answers[n]; silence after the script ends."""
    queue = list(answers)
    return lambda written: queue.pop(0) if queue else b""


class FakeCancel(CancelToken):
    """A cancel token whose waits advance the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, seconds: float) -> bool:
        self.clock.advance(seconds)
        return self.canceled
