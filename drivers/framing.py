"""One incremental, never-raising, resynchronising frame decoder for every framed codec.

A codec says where a frame starts (``start``: an STX byte or a preamble), how to judge the
candidate frame at the head of the buffer (``judge``), and optionally which single bytes mean
something outside a frame (``control``: ACK, NAK, EOT). The decoder does the rest the same way
for every device:

- a good frame comes out as the codec's item and its bytes are consumed;
- a candidate that fails a check is reported once as ``Malformed`` and scanning resumes one
  byte after its start, so a good frame hidden inside a corrupted one (a bad LEN swallowed
  its start) is still found, without reporting the bad candidate's bytes a second time;
- bytes outside any frame are reported in runs, one ``Malformed`` per run (capped, so a
  babbling line cannot grow one run forever);
- a buffer that ends in what may be the first bytes of a multi-byte start waits for more;
- ``flush`` (a silence on the line, the port closing) reports what is still held.

Decisions depend only on the byte stream, never on how it was chunked, so feeding a stream in
pieces gives the same items as feeding it whole.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

from branchline.drivers.malformed import Malformed

Item = TypeVar("Item")
FrameT = TypeVar("FrameT", covariant=True)

MAX_GARBAGE_RUN = 256


@dataclass(frozen=True, slots=True)
class Good(Generic[FrameT]):
    """The candidate is a good frame of ``length`` bytes decoding to ``item``."""

    item: FrameT
    length: int


@dataclass(frozen=True, slots=True)
class Bad:
    """The candidate fails a check; ``length`` is how many bytes it claimed (at least 1)."""

    reason: str
    length: int


class ResyncDecoder(ABC, Generic[Item]):
    """Feed bytes in any chunking; get complete items and ``Malformed`` out, in order."""

    start: bytes  # the bytes every frame begins with

    def __init__(self) -> None:
        self._buf = bytearray()
        self._garbage = bytearray()
        self._covered = 0  # leading bytes already reported inside a bad candidate

    @abstractmethod
    def judge(self, buf: bytearray) -> Good[Item] | Bad | None:
        """Judge the candidate at ``buf[0:]`` (which begins with ``start``); None: need more."""

    @abstractmethod
    def truncated(self, buf: bytearray) -> str:
        """The reason given for a candidate cut short by the end of input."""

    def control(self, byte: int) -> Item | None:
        """The item a single byte outside any frame stands for, if any (none by default)."""
        return None

    @property
    def buffered(self) -> int:
        """How many bytes are held waiting for the rest of a frame."""
        return len(self._buf) + len(self._garbage)

    def reset(self) -> None:
        """Forget everything held (the line was reopened)."""
        self._buf.clear()
        self._garbage.clear()
        self._covered = 0

    def feed(self, data: bytes) -> list[Item | Malformed[bytes]]:
        self._buf += data
        return self._drain(final=False)

    def flush(self) -> list[Item | Malformed[bytes]]:
        """End of input (a silence on the line, the port closed): report what is still held."""
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[Item | Malformed[bytes]]:
        out: list[Item | Malformed[bytes]] = []
        buf, start = self._buf, self.start
        while buf:
            if buf.startswith(start):
                verdict = self.judge(buf)
                if verdict is None:
                    if not final:
                        break
                    verdict = Bad(self.truncated(buf), len(buf))
                self._emit_garbage(out)
                if isinstance(verdict, Good):
                    out.append(verdict.item)
                    self._drop(verdict.length)
                else:
                    if not self._covered:
                        out.append(Malformed(verdict.reason, bytes(buf[: verdict.length])))
                        self._covered = verdict.length
                    self._drop(1)
            elif not final and len(buf) < len(start) and start.startswith(buf):
                break  # maybe the first bytes of a start: wait for the rest
            elif self._covered:
                self._drop(1)
            elif (item := self.control(buf[0])) is not None:
                self._emit_garbage(out)
                out.append(item)
                self._drop(1)
            else:
                self._garbage.append(buf[0])
                self._drop(1)
                if len(self._garbage) >= MAX_GARBAGE_RUN:
                    self._emit_garbage(out)
        if final:
            self._emit_garbage(out)
        return out

    def _drop(self, count: int) -> None:
        del self._buf[:count]
        self._covered = max(0, self._covered - count)

    def _emit_garbage(self, out: list[Item | Malformed[bytes]]) -> None:
        if self._garbage:
            raw = bytes(self._garbage)
            out.append(Malformed(f"{len(raw)} unexpected byte(s) outside a frame", raw))
            self._garbage.clear()
