"""The ACK/NAK/EOT exchange of the CRT-591-style reader over a byte transport.

One exchange: the host writes a command frame; the reader answers ACK (06) and then its reply
frame, or NAK (15) when it did not take the frame, and the host sends it again (at most
``nak_retries`` times, then ``nak_storm``). When the host gives up waiting for a reply it
sends EOT (04) so a late reply does not land in the next exchange. Bytes that do not decode
(noise, a frame with a bad checksum, a stale reply to another command) are skipped.

Failures are ``DeviceError`` subclasses so callers can tell "nobody answers" (``NoAck``:
the device is offline) from "it acknowledged but never replied" (``ReplyTimeout``) and
"it refuses every frame" (``NakStorm``). A dead line raises ``DeviceGone`` from the
transport. Nothing here logs frame contents: reply DATA carries track and chip data.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from branchline.drivers.base import Completion, DeviceError
from branchline.drivers.card_reader.commands import CommandCode
from branchline.drivers.card_reader.frames import (
    EOT,
    STX,
    Ack,
    FrameDecoder,
    Item,
    Malformed,
    Nak,
    ReplyFrame,
    encode_command,
)
from branchline.drivers.transport import Transport

Clock = Callable[[], float]

# The longest frame the decoder accepts: header 4 + TEXT (5 + 512) + trailer 2.
_MAX_FRAME = 4 + 5 + 512 + 2


class NoAck(DeviceError):
    """Neither ACK nor NAK nor a reply within the ACK timeout: the reader is not there."""

    def __init__(self, command: str, seconds: float) -> None:
        super().__init__(
            Completion.DEVICE_NOT_READY,
            "no_ack",
            f"card reader did not acknowledge {command} within {seconds:.2f} s",
        )


class NakStorm(DeviceError):
    def __init__(self, command: str, naks: int) -> None:
        super().__init__(
            Completion.HARDWARE_ERROR,
            "nak_storm",
            f"card reader refused {command} {naks} times in a row (NAK storm)",
        )


class ReplyTimeout(DeviceError):
    def __init__(self, command: str, seconds: float) -> None:
        super().__init__(
            Completion.TIMEOUT,
            "reply_timeout",
            f"card reader acknowledged {command} but sent no reply within {seconds:.2f} s",
        )


class Link:
    """Command/reply exchanges with one reader on one transport. Not thread-safe (one owner)."""

    def __init__(
        self,
        transport: Transport,
        *,
        address: int = 0,
        ack_timeout: float = 0.5,
        nak_retries: int = 3,
        baudrate: int = 9600,
        clock: Clock = time.monotonic,
    ) -> None:
        self.transport = transport
        self.address = address
        self.ack_timeout = ack_timeout
        self.nak_retries = nak_retries
        self.clock = clock
        # Time for the rest of a frame to arrive once its header is in (twice the wire time
        # of the longest frame, at least 50 ms): past it, hand the decoder what we have.
        self._frame_time = max(0.05, 2 * _MAX_FRAME * 10 / baudrate)
        self._items: deque[Item] = deque()
        self._decoder = FrameDecoder()
        # Counters a technician (or a test) can read; never the bytes themselves.
        self.skipped = 0
        self.naks = 0

    def exchange(self, code: CommandCode, data: bytes = b"", *, reply_timeout: float) -> ReplyFrame:
        """Send one command and return the reader's reply frame (positive or negative)."""
        frame = encode_command(code.cm, code.pm, data, self.address)
        # Whatever is on the line now belongs to nothing we are waiting for.
        self.transport.discard_input()
        self._items.clear()
        self._decoder = FrameDecoder()
        naks = 0
        while True:
            self.transport.write(frame)
            got = self._await_ack(code)
            if isinstance(got, ReplyFrame):
                return got  # the ACK was lost in noise; the reply itself proves receipt
            if isinstance(got, Ack):
                break
            naks += 1
            self.naks += 1
            if naks > self.nak_retries:
                raise NakStorm(code.name, naks)
        return self._await_reply(code, reply_timeout)

    def send_eot(self) -> None:
        """Tell the reader the host abandoned the exchange in progress."""
        self.transport.write(bytes([EOT]))

    # -- waiting -----------------------------------------------------------------------------

    def _matches(self, item: Item, code: CommandCode) -> bool:
        return (
            isinstance(item, ReplyFrame)
            and item.cm == code.cm
            and item.pm == code.pm
            and item.address == self.address
        )

    def _await_ack(self, code: CommandCode) -> Ack | Nak | ReplyFrame:
        deadline = self.clock() + self.ack_timeout
        while True:
            item = self._next_item(deadline)
            if item is None:
                raise NoAck(code.name, self.ack_timeout)
            if isinstance(item, Ack | Nak):
                return item
            if self._matches(item, code):
                assert isinstance(item, ReplyFrame)
                return item
            self.skipped += 1

    def _await_reply(self, code: CommandCode, timeout: float) -> ReplyFrame:
        deadline = self.clock() + timeout
        while True:
            item = self._next_item(deadline)
            if item is None:
                self.send_eot()
                raise ReplyTimeout(code.name, timeout)
            if self._matches(item, code):
                assert isinstance(item, ReplyFrame)
                return item
            if not isinstance(item, Ack):  # a repeated ACK is harmless, anything else is noise
                self.skipped += 1

    def _next_item(self, deadline: float) -> Item | None:
        """The next decoded item, or None at the deadline (after flushing held bytes)."""
        flushed = False
        while True:
            while self._items:
                item = self._items.popleft()
                if not isinstance(item, Malformed):
                    return item
                self.skipped += 1
            if flushed:
                return None
            remaining = deadline - self.clock()
            if remaining <= 0:
                # A bogus length in noise can hold a good frame hostage: release it.
                self._items.extend(self._decoder.flush())
                self._decoder = FrameDecoder()
                flushed = True
                continue
            chunk = self._read_chunk(remaining)
            if chunk:
                self._items.extend(self._decoder.feed(chunk))

    def _read_chunk(self, remaining: float) -> bytes:
        """One byte, or a whole frame when that byte starts one (fewer reads, tidy spy lines)."""
        first = self.transport.read(1, remaining)
        if first != bytes([STX]):
            return first
        patience = min(remaining, self._frame_time)
        header = self.transport.read(3, patience)
        if len(header) < 3:
            return first + header
        length = (header[1] << 8) | header[2]
        rest = self.transport.read(min(length + 2, _MAX_FRAME), patience)
        return first + header + rest
