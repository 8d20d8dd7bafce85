"""Host -> PIN pad requests of the EPP command set: messages, encoder and the pad's decoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias

from branchline.drivers.pin_pad.codes import FORMAT_BY_KEY, PIN_MAX, PIN_MIN, Algorithm, Cmd
from branchline.drivers.pin_pad.fields import (
    BadPayload,
    PayloadReader,
    check_key,
    check_pan,
    check_slot,
    lv,
    read_algorithm,
)
from branchline.drivers.pin_pad.frames import Frame, encode_frame


@dataclass(frozen=True)
class Status:
    cmd: ClassVar[Cmd] = Cmd.STATUS

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True)
class GetInfo:
    cmd: ClassVar[Cmd] = Cmd.GET_INFO

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True)
class LoadKey:
    slot: int
    algorithm: Algorithm
    key: bytes = field(repr=False)
    ksn: bytes
    cmd: ClassVar[Cmd] = Cmd.LOAD_KEY

    def payload(self) -> bytes:
        return bytes([self.slot, self.algorithm.wire]) + lv(self.key) + lv(self.ksn)


@dataclass(frozen=True)
class GetKcv:
    slot: int
    cmd: ClassVar[Cmd] = Cmd.GET_KCV

    def payload(self) -> bytes:
        return bytes([self.slot])


@dataclass(frozen=True)
class GetKsn:
    slot: int
    cmd: ClassVar[Cmd] = Cmd.GET_KSN

    def payload(self) -> bytes:
        return bytes([self.slot])


@dataclass(frozen=True)
class EraseKeys:
    slot: int
    cmd: ClassVar[Cmd] = Cmd.ERASE_KEYS

    def payload(self) -> bytes:
        return bytes([self.slot])


@dataclass(frozen=True)
class StartPin:
    slot: int
    min_len: int
    max_len: int
    timeout_s: int
    pin_format: int | None  # None: the key decides (tdes 0, aes 4)
    pan: str = field(repr=False)
    cmd: ClassVar[Cmd] = Cmd.START_PIN

    def payload(self) -> bytes:
        fmt = FORMAT_BY_KEY if self.pin_format is None else self.pin_format
        head = bytes([self.slot, self.min_len, self.max_len, self.timeout_s, fmt])
        return head + lv(self.pan.encode("ascii"))


@dataclass(frozen=True)
class CancelEntry:
    cmd: ClassVar[Cmd] = Cmd.CANCEL_ENTRY

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True)
class ClearEntry:
    cmd: ClassVar[Cmd] = Cmd.CLEAR_ENTRY

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True)
class SignStart:
    timeout_s: int
    cmd: ClassVar[Cmd] = Cmd.SIGN_START

    def payload(self) -> bytes:
        return bytes([self.timeout_s])


@dataclass(frozen=True)
class SignRead:
    offset: int
    cmd: ClassVar[Cmd] = Cmd.SIGN_READ

    def payload(self) -> bytes:
        return self.offset.to_bytes(2, "big")


@dataclass(frozen=True)
class UnknownRequest:
    """A well-framed request with a CMD this command set does not have."""

    cmd: int


Request: TypeAlias = (
    Status
    | GetInfo
    | LoadKey
    | GetKcv
    | GetKsn
    | EraseKeys
    | StartPin
    | CancelEntry
    | ClearEntry
    | SignStart
    | SignRead
)


def encode_request(seq: int, request: Request) -> bytes:
    return encode_frame(seq, request.cmd, request.payload())


def _parse_request(cmd: int, payload: bytes) -> Request | UnknownRequest:
    try:
        kind = Cmd(cmd)
    except ValueError:
        return UnknownRequest(cmd)
    what = kind.name
    r = PayloadReader(payload, what)
    request: Request
    if kind is Cmd.STATUS:
        request = Status()
    elif kind is Cmd.GET_INFO:
        request = GetInfo()
    elif kind is Cmd.LOAD_KEY:
        slot = check_slot(r.byte("slot"), what)
        algorithm = read_algorithm(r.byte("algorithm"), what)
        key, ksn = r.chunk("key"), r.chunk("KSN")
        check_key(algorithm, key, ksn, what)
        request = LoadKey(slot, algorithm, key, ksn)
    elif kind is Cmd.GET_KCV:
        request = GetKcv(check_slot(r.byte("slot"), what))
    elif kind is Cmd.GET_KSN:
        request = GetKsn(check_slot(r.byte("slot"), what))
    elif kind is Cmd.ERASE_KEYS:
        request = EraseKeys(check_slot(r.byte("slot"), what, allow_all=True))
    elif kind is Cmd.START_PIN:
        slot = check_slot(r.byte("slot"), what)
        min_len, max_len, timeout_s = r.byte("min"), r.byte("max"), r.byte("timeout")
        fmt = r.byte("format")
        pan_raw = r.chunk("PAN")
        if not PIN_MIN <= min_len <= max_len <= PIN_MAX:
            raise BadPayload(
                f"{what}: PIN lengths min {min_len} max {max_len} outside 4 <= min <= max <= 12"
            )
        if timeout_s == 0:
            raise BadPayload(f"{what}: timeout must be 1-255 seconds")
        if fmt not in (0, 4, FORMAT_BY_KEY):
            raise BadPayload(f"{what}: PIN block format 0x{fmt:02X} is not 0, 4 or 0xFF")
        pan = pan_raw.decode("latin-1")
        check_pan(pan, what)
        request = StartPin(
            slot, min_len, max_len, timeout_s, None if fmt == FORMAT_BY_KEY else fmt, pan
        )
    elif kind is Cmd.CANCEL_ENTRY:
        request = CancelEntry()
    elif kind is Cmd.CLEAR_ENTRY:
        request = ClearEntry()
    elif kind is Cmd.SIGN_START:
        timeout_s = r.byte("timeout")
        if timeout_s == 0:
            raise BadPayload(f"{what}: timeout must be 1-255 seconds")
        request = SignStart(timeout_s)
    elif kind is Cmd.SIGN_READ:
        request = SignRead((r.byte("offset high") << 8) | r.byte("offset low"))
    else:
        return UnknownRequest(cmd)  # KEY_EVENT / PIN_RESULT are not requests
    r.end()
    return request


@dataclass(frozen=True)
class BadRequest:
    """A request frame with a known CMD whose payload does not parse: the pad answers
    bad_parameter with the frame's SEQ."""

    seq: int
    cmd: int
    reason: str


def decode_request(frame: Frame) -> tuple[int, Request | UnknownRequest] | BadRequest:
    """(SEQ, request) for the PIN pad's side; never raises."""
    try:
        return frame.seq, _parse_request(frame.cmd, frame.payload)
    except BadPayload as exc:
        return BadRequest(frame.seq, frame.cmd, str(exc))
