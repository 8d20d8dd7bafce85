"""One face-module request/reply exchange over a Transport.

The module answers every request with one reply frame carrying the request's SEQ and never
speaks unasked. A damaged reply (bad CRC) is asked for once more; a second damaged reply
fails the command as invalid data. A reply with another SEQ is stale (a late answer to an
earlier request) and skipped. Silence past the timeout is ``NoReply``.
"""

from __future__ import annotations

import time

from branchline.drivers.base import CancelToken, Completion, DeviceError
from branchline.drivers.face_camera.frames import (
    Command,
    Frame,
    FrameDecoder,
    Malformed,
    Result,
    encode_frame,
)
from branchline.drivers.transport import Transport

ATTEMPTS = 2
READ_SLICE = 0.1  # longest single wait: a cancel is noticed within this

RESULT_ERRORS: dict[int, tuple[Completion, str, str]] = {
    Result.BAD_COMMAND: (Completion.UNSUPPORTED, "bad_command", "the module does not know it"),
    Result.BAD_PARAMS: (Completion.INVALID_DATA, "bad_params", "the module refused its params"),
    Result.BUSY: (Completion.DEVICE_NOT_READY, "busy", "the module is busy"),
    Result.BAD_CRC: (Completion.INVALID_DATA, "bad_checksum", "the module saw a bad CRC"),
    Result.SENSOR_FAULT: (Completion.HARDWARE_ERROR, "sensor_fault", "visible sensor failed"),
    Result.IR_FAULT: (Completion.HARDWARE_ERROR, "ir_fault", "infrared channel failed"),
    Result.CAPTURE_TIMEOUT: (
        Completion.TIMEOUT,
        "capture_timeout",
        "no usable frame within the capture time",
    ),
}


def describe(command: int) -> str:
    """``capture (0x10)``: how errors name a command."""
    try:
        name = Command(command).name.lower().replace("_", " ")
    except ValueError:
        name = "unknown command"
    return f"{name} (0x{command:02X})"


def result_error(command: int, result: int) -> DeviceError:
    completion, code, text = RESULT_ERRORS.get(
        result, (Completion.HARDWARE_ERROR, "module_error", "unknown result code")
    )
    return DeviceError(
        completion, code, f"face camera: {describe(command)}: {text} (result 0x{result:02X})"
    )


class NoReply(DeviceError):
    def __init__(self, command: int, timeout: float) -> None:
        super().__init__(
            Completion.DEVICE_NOT_READY,
            "no_reply",
            f"face camera: no reply to {describe(command)} within {timeout:g} s",
        )


class FaceModuleLink:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._seq = 0
        self.damaged_replies = 0
        self.noise_bytes = 0

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 is never used
        return self._seq

    def exchange(
        self, command: Command, payload: bytes, timeout: float, cancel: CancelToken | None = None
    ) -> bytes:
        """Send a request; the ok-reply's payload after the result byte. Errors raise."""
        damage = ""
        for _ in range(ATTEMPTS):
            if cancel is not None:
                cancel.raise_if_canceled()
            seq = self._next_seq()
            self._transport.discard_input()
            self._transport.write(encode_frame(seq, command, payload))
            outcome = self._await_reply(command, seq, timeout, cancel)
            if isinstance(outcome, Frame):
                if outcome.cmd != command | 0x80 or not outcome.payload:
                    raise DeviceError(
                        Completion.INVALID_DATA,
                        "bad_frame",
                        f"face camera: reply to {describe(command)} has command "
                        f"0x{outcome.cmd:02X} and {len(outcome.payload)} payload bytes",
                    )
                if outcome.payload[0] != Result.OK:
                    raise result_error(command, outcome.payload[0])
                return outcome.payload[1:]
            damage = outcome
            self.damaged_replies += 1
        raise DeviceError(
            Completion.INVALID_DATA,
            "bad_checksum" if damage.startswith("bad checksum") else "bad_frame",
            f"face camera: reply to {describe(command)} damaged {ATTEMPTS} times in a row "
            f"(last: {damage})",
        )

    def _await_reply(
        self, command: int, seq: int, timeout: float, cancel: CancelToken | None
    ) -> Frame | str:
        decoder = FrameDecoder()
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
                if isinstance(item, Frame):
                    if item.seq == seq:
                        return item
                elif item.reason.startswith(("bad checksum", "bad length")):
                    return item.reason
                elif isinstance(item, Malformed):
                    self.noise_bytes += len(item.raw)
            if remaining <= 0:
                raise NoReply(command, timeout)
