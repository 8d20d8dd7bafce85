"""PIN pad -> host messages of the EPP command set: replies and entry events, both ways."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from branchline.drivers.malformed import Malformed
from branchline.drivers.pin_pad.codes import (
    ALGORITHM_BY_WIRE,
    BLOCK_LENGTH,
    EXHAUSTED_BIT,
    PIN_MAX,
    PIN_MIN,
    REPLY_BIT,
    SIGN_CHUNK,
    Algorithm,
    Cmd,
    KeyKind,
    ResultCode,
    SignState,
)
from branchline.drivers.pin_pad.fields import BadPayload, PayloadReader, lv, read_algorithm
from branchline.drivers.pin_pad.frames import Frame, encode_frame


@dataclass(frozen=True)
class ErrorReply:
    seq: int
    cmd: int  # the request's CMD
    code: ResultCode


@dataclass(frozen=True)
class OkReply:
    """An ok reply to a request without reply data (ERASE_KEYS, START_PIN, CANCEL, CLEAR)."""

    seq: int
    cmd: int


@dataclass(frozen=True)
class StatusReply:
    seq: int
    entry_active: bool
    tamper: bool
    key_stuck: bool
    slots: tuple[int, ...]  # SlotState | EXHAUSTED_BIT per slot

    def slot_algorithm(self, slot: int) -> Algorithm | None:
        if slot >= len(self.slots):
            return None
        return ALGORITHM_BY_WIRE.get(self.slots[slot] & ~EXHAUSTED_BIT)

    def slot_exhausted(self, slot: int) -> bool:
        return slot < len(self.slots) and bool(self.slots[slot] & EXHAUSTED_BIT)


@dataclass(frozen=True)
class InfoReply:
    seq: int
    model: str
    serial: str
    firmware: str


@dataclass(frozen=True)
class KeyLoadedReply:
    seq: int
    algorithm: Algorithm
    kcv: bytes
    ksn: bytes


@dataclass(frozen=True)
class KcvReply:
    seq: int
    algorithm: Algorithm
    kcv: bytes


@dataclass(frozen=True)
class KsnReply:
    seq: int
    algorithm: Algorithm
    exhausted: bool
    ksn: bytes


@dataclass(frozen=True)
class SignChunk:
    """SIGN_READ's reply: the capture's state, the PNG's total size and one piece of it."""

    seq: int
    state: SignState
    total: int
    chunk: bytes = field(repr=False)


@dataclass(frozen=True)
class KeyEvent:
    seq: int
    kind: KeyKind
    count: int


@dataclass(frozen=True)
class PinResult:
    seq: int
    outcome: ResultCode
    digits: int
    pin_format: int
    block: bytes = field(default=b"", repr=False)
    ksn: bytes = b""


DeviceMessage: TypeAlias = (
    ErrorReply
    | OkReply
    | StatusReply
    | InfoReply
    | KeyLoadedReply
    | KcvReply
    | KsnReply
    | SignChunk
    | KeyEvent
    | PinResult
)


def encode_error(seq: int, cmd: int, code: ResultCode) -> bytes:
    return encode_frame(seq, cmd | REPLY_BIT, bytes([code]))


def encode_ok(seq: int, cmd: int, data: bytes = b"") -> bytes:
    return encode_frame(seq, cmd | REPLY_BIT, bytes([ResultCode.OK]) + data)


def encode_message(message: DeviceMessage) -> bytes:
    """The PIN pad's bytes for ``message`` (the inverse of ``decode_device_message``)."""
    m = message
    if isinstance(m, ErrorReply):
        return encode_error(m.seq, m.cmd, m.code)
    if isinstance(m, OkReply):
        return encode_ok(m.seq, m.cmd)
    if isinstance(m, StatusReply):
        flags = (1 if m.tamper else 0) | (2 if m.key_stuck else 0)
        data = bytes([1 if m.entry_active else 0, flags, len(m.slots), *m.slots])
        return encode_ok(m.seq, Cmd.STATUS, data)
    if isinstance(m, InfoReply):
        data = b"".join(lv(s.encode("ascii")) for s in (m.model, m.serial, m.firmware))
        return encode_ok(m.seq, Cmd.GET_INFO, data)
    if isinstance(m, KeyLoadedReply):
        return encode_ok(m.seq, Cmd.LOAD_KEY, bytes([m.algorithm.wire]) + lv(m.kcv) + lv(m.ksn))
    if isinstance(m, KcvReply):
        return encode_ok(m.seq, Cmd.GET_KCV, bytes([m.algorithm.wire]) + lv(m.kcv))
    if isinstance(m, KsnReply):
        data = bytes([m.algorithm.wire, 1 if m.exhausted else 0]) + lv(m.ksn)
        return encode_ok(m.seq, Cmd.GET_KSN, data)
    if isinstance(m, SignChunk):
        data = bytes([m.state]) + m.total.to_bytes(2, "big") + lv(m.chunk)
        return encode_ok(m.seq, Cmd.SIGN_READ, data)
    if isinstance(m, KeyEvent):
        return encode_frame(m.seq, Cmd.KEY_EVENT, m.kind.encode("ascii") + bytes([m.count]))
    head = bytes([m.outcome, m.digits, m.pin_format])
    return encode_frame(m.seq, Cmd.PIN_RESULT, head + lv(m.block) + lv(m.ksn))


_NO_DATA_REPLIES = (
    Cmd.ERASE_KEYS,
    Cmd.START_PIN,
    Cmd.CANCEL_ENTRY,
    Cmd.CLEAR_ENTRY,
    Cmd.SIGN_START,
)


def _parse_reply(seq: int, cmd: Cmd, r: PayloadReader) -> DeviceMessage:
    what = f"{cmd.name} reply"
    code_byte = r.byte("result code")
    try:
        code = ResultCode(code_byte)
    except ValueError:
        raise BadPayload(f"{what}: unknown result code 0x{code_byte:02X}") from None
    if code is not ResultCode.OK:
        r.end()
        return ErrorReply(seq, cmd, code)
    message: DeviceMessage
    if cmd in _NO_DATA_REPLIES:
        message = OkReply(seq, cmd)
    elif cmd is Cmd.STATUS:
        state, flags, count = r.byte("state"), r.byte("flags"), r.byte("slot count")
        if state > 1:
            raise BadPayload(f"{what}: unknown state {state}")
        if flags & ~0x03:
            raise BadPayload(f"{what}: unknown flag bits 0x{flags & ~0x03:02X}")
        slots = tuple(r.byte(f"slot {i}") for i in range(count))
        for i, value in enumerate(slots):
            if value & ~EXHAUSTED_BIT not in (0, 1, 2):
                raise BadPayload(f"{what}: slot {i} state 0x{value:02X} unknown")
        message = StatusReply(seq, state == 1, bool(flags & 1), bool(flags & 2), slots)
    elif cmd is Cmd.GET_INFO:
        message = InfoReply(seq, r.text("model"), r.text("serial"), r.text("firmware"))
    elif cmd is Cmd.LOAD_KEY:
        algorithm = read_algorithm(r.byte("algorithm"), what)
        message = KeyLoadedReply(seq, algorithm, _kcv(r, algorithm, what), r.chunk("KSN"))
    elif cmd is Cmd.GET_KCV:
        algorithm = read_algorithm(r.byte("algorithm"), what)
        message = KcvReply(seq, algorithm, _kcv(r, algorithm, what))
    elif cmd is Cmd.GET_KSN:
        algorithm = read_algorithm(r.byte("algorithm"), what)
        flags = r.byte("flags")
        if flags & ~0x01:
            raise BadPayload(f"{what}: unknown flag bits 0x{flags & ~0x01:02X}")
        ksn = r.chunk("KSN")
        if len(ksn) != algorithm.ksn_length:
            raise BadPayload(f"{what}: {algorithm} KSN must be {algorithm.ksn_length} bytes")
        message = KsnReply(seq, algorithm, bool(flags & 1), ksn)
    elif cmd is Cmd.SIGN_READ:
        state_byte = r.byte("state")
        try:
            sign_state = SignState(state_byte)
        except ValueError:
            raise BadPayload(f"{what}: unknown signature state {state_byte}") from None
        total = (r.byte("total high") << 8) | r.byte("total low")
        chunk = r.chunk("chunk")
        if len(chunk) > SIGN_CHUNK:
            raise BadPayload(f"{what}: a chunk is at most {SIGN_CHUNK} bytes, got {len(chunk)}")
        message = SignChunk(seq, sign_state, total, chunk)
    else:
        raise BadPayload(f"{what}: CMD 0x{cmd:02X} is not a request")
    r.end()
    return message


def _kcv(r: PayloadReader, algorithm: Algorithm, what: str) -> bytes:
    kcv = r.chunk("KCV")
    if len(kcv) != algorithm.kcv_length:
        raise BadPayload(
            f"{what}: {algorithm} KCV must be {algorithm.kcv_length} bytes, got {len(kcv)}"
        )
    return kcv


def _parse_event(seq: int, cmd: Cmd, r: PayloadReader) -> DeviceMessage:
    what = cmd.name
    if cmd is Cmd.KEY_EVENT:
        raw_kind = r.byte("kind")
        try:
            kind = KeyKind(chr(raw_kind))
        except ValueError:
            raise BadPayload(f"{what}: unknown key kind 0x{raw_kind:02X}") from None
        count = r.byte("count")
        if count > PIN_MAX:
            raise BadPayload(f"{what}: digit count {count} above {PIN_MAX}")
        r.end()
        return KeyEvent(seq, kind, count)
    outcome_byte = r.byte("outcome")
    try:
        outcome = ResultCode(outcome_byte)
    except ValueError:
        raise BadPayload(f"{what}: unknown outcome 0x{outcome_byte:02X}") from None
    digits, fmt = r.byte("digits"), r.byte("format")
    block, ksn = r.chunk("PIN block"), r.chunk("KSN")
    r.end()
    if outcome is ResultCode.OK:
        if fmt not in BLOCK_LENGTH or len(block) != BLOCK_LENGTH[fmt]:
            raise BadPayload(f"{what}: format {fmt} with a {len(block)}-byte PIN block")
        if len(ksn) != (10 if fmt == 0 else 12):
            raise BadPayload(f"{what}: format {fmt} with a {len(ksn)}-byte KSN")
        if not PIN_MIN <= digits <= PIN_MAX:
            raise BadPayload(f"{what}: digit count {digits} outside {PIN_MIN}..{PIN_MAX}")
    elif block or ksn:
        raise BadPayload(f"{what}: outcome {outcome.label} must not carry a PIN block or KSN")
    return PinResult(seq, outcome, digits, fmt, block, ksn)


def decode_device_message(frame: Frame) -> DeviceMessage | Malformed:
    """The host's view of one frame from the PIN pad; never raises."""
    try:
        if frame.cmd & REPLY_BIT:
            try:
                cmd = Cmd(frame.cmd & ~REPLY_BIT)
            except ValueError:
                raise BadPayload(f"reply to unknown CMD 0x{frame.cmd & ~REPLY_BIT:02X}") from None
            return _parse_reply(frame.seq, cmd, PayloadReader(frame.payload, cmd.name))
        if frame.cmd in (Cmd.KEY_EVENT, Cmd.PIN_RESULT):
            cmd = Cmd(frame.cmd)
            return _parse_event(frame.seq, cmd, PayloadReader(frame.payload, cmd.name))
        raise BadPayload(f"CMD 0x{frame.cmd:02X} is not a reply or event")
    except BadPayload as exc:
        return Malformed(str(exc), encode_frame(frame.seq, frame.cmd, frame.payload))


def reply_to(message: DeviceMessage) -> Cmd | None:
    """The request CMD ``message`` answers; None for KEY_EVENT and PIN_RESULT."""
    if isinstance(message, ErrorReply | OkReply):
        return Cmd(message.cmd)
    return _REPLY_CMD.get(type(message))


_REPLY_CMD: dict[type, Cmd] = {
    StatusReply: Cmd.STATUS,
    InfoReply: Cmd.GET_INFO,
    KeyLoadedReply: Cmd.LOAD_KEY,
    KcvReply: Cmd.GET_KCV,
    KsnReply: Cmd.GET_KSN,
    SignChunk: Cmd.SIGN_READ,
}
