"""One GA 467 request/reply exchange over a Transport.

The reader answers every request with exactly one reply frame and never speaks unasked, so
an exchange is: drop stale input, send the request, collect bytes until a good reply frame.
Bytes outside a frame (line noise) are skipped. A damaged reply (bad checksum or impossible
length) is asked for once more; a second damaged reply fails the command as invalid data,
naming the command and the damage. Silence past the timeout is ``NoReply``.
"""

from __future__ import annotations

import time

from branchline.drivers.base import CancelToken, Completion, DeviceError
from branchline.drivers.id_reader.frames import (
    Command,
    Malformed,
    Reply,
    ReplyDecoder,
    encode_request,
)
from branchline.drivers.transport import Transport

ATTEMPTS = 2  # the first try and one retry after a damaged reply
# Longest single wait on the line: a cancel is noticed within this.
READ_SLICE = 0.1

COMMAND_NAMES = {
    Command.SAM_STATUS: "SAM status",
    Command.FIND_CARD: "find card",
    Command.SELECT_CARD: "select card",
    Command.READ_TEXT_PHOTO: "read text and photo",
}


def describe(command: Command) -> str:
    """``find card (20/01)``: how errors name a command."""
    cmd, para = command.value
    return f"{COMMAND_NAMES[command]} ({cmd:02X}/{para:02X})"


class NoReply(DeviceError):
    """The reader said nothing (or nothing frame-like) within the timeout."""

    def __init__(self, command: Command, timeout: float) -> None:
        super().__init__(
            Completion.DEVICE_NOT_READY,
            "no_reply",
            f"ID reader: no reply to {describe(command)} within {timeout:g} s",
        )


def _damage(item: Malformed) -> str | None:
    """The damage when ``item`` is a reply frame gone bad; None for plain line noise."""
    if item.reason.startswith(("bad checksum", "bad length")):
        return item.reason
    return None


class Ga467Link:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        # Counters a technician may want: how noisy the line is.
        self.damaged_replies = 0
        self.noise_bytes = 0

    def exchange(
        self,
        command: Command,
        timeout: float,
        cancel: CancelToken | None = None,
        data: bytes = b"",
    ) -> Reply:
        """Send ``command`` and return the reader's reply (any SW3: the caller judges it)."""
        damage = ""
        for _ in range(ATTEMPTS):
            if cancel is not None:
                cancel.raise_if_canceled()
            self._transport.discard_input()
            self._transport.write(encode_request(command, data))
            outcome = self._await_reply(command, timeout, cancel)
            if isinstance(outcome, Reply):
                return outcome
            damage = outcome
            self.damaged_replies += 1
        code = "bad_checksum" if damage.startswith("bad checksum") else "bad_frame"
        raise DeviceError(
            Completion.INVALID_DATA,
            code,
            f"ID reader: reply to {describe(command)} damaged {ATTEMPTS} times in a row "
            f"(last: {damage})",
        )

    def _await_reply(
        self, command: Command, timeout: float, cancel: CancelToken | None
    ) -> Reply | str:
        """The reply, or the damage of a damaged one; raises NoReply on silence."""
        decoder = ReplyDecoder()
        deadline = time.monotonic() + timeout
        while True:
            if cancel is not None:
                cancel.raise_if_canceled()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                items = decoder.flush()
            else:
                chunk = self._transport.read(decoder.wanted(), min(remaining, READ_SLICE))
                items = decoder.feed(chunk) if chunk else []
            for item in items:
                if isinstance(item, Reply):
                    return item
                if isinstance(item, Malformed):
                    damage = _damage(item)
                    if damage is not None:
                        return damage
                    self.noise_bytes += len(item.raw)
            if remaining <= 0:
                raise NoReply(command, timeout)
