"""Branchline EPP serial command set: framing, messages, and an incremental never-raising decoder.

Frame (both directions)::

    STX  LEN_H LEN_L  SEQ  CMD  PAYLOAD...  ETX  LRC
    02   LEN = 2 + len(PAYLOAD), big-endian  03   XOR of every byte from LEN_H through ETX

SEQ (1-255) is chosen by the host for each request; the PIN pad copies it into its reply and
into every event of a PIN entry, so replies and events always match their request. SEQ 0 is
reserved for the device. A reply's CMD is the request's CMD | 0x80; its first payload byte is
a result code (``ResultCode``); when that is not ``ok`` the payload is that byte alone.
PAYLOAD is at most 256 bytes. Multi-byte numbers are big-endian; PANs are ASCII digits.

Host -> PIN pad requests, and the payload of the pad's ``ok`` reply (after the result byte):

=====  ============  ==============================================  =================================
CMD    name          request payload                                 ok-reply payload
=====  ============  ==============================================  =================================
0x10   STATUS        —                                               state(1: 0 idle, 1 entry active)
                                                                     flags(1: bit0 tamper, bit1 key
                                                                     stuck) slots(1)=4, then one byte
                                                                     per slot: 0 empty, 1 tdes, 2 aes,
                                                                     | 0x80 when its KSN is exhausted
0x11   GET_INFO      —                                               model, serial, firmware: each
                                                                     len(1) + ASCII
0x20   LOAD_KEY      slot(1) alg(1: 1 tdes, 2 aes) key_len(1) key    alg(1) kcv_len(1) kcv ksn_len(1)
                     ksn_len(1) ksn — IPEK (tdes, 16 bytes, KSN 10)  ksn — KCV 3 bytes (tdes: E(key,
                     or AES initial key (16/24/32, KSN 12); the      0^8)) or 5 bytes (aes: CMAC(key,
                     KSN's transaction counter must be 0             0^16))
0x21   GET_KCV       slot(1)                                         alg(1) kcv_len(1) kcv
0x22   GET_KSN       slot(1)                                         alg(1) flags(1: bit0 exhausted)
                                                                     ksn_len(1) ksn — the KSN of the
                                                                     next PIN block; once exhausted,
                                                                     the last one
0x23   ERASE_KEYS    slot(1; 0xFF = every slot)                      —
0x30   START_PIN     slot(1) min(1) max(1) timeout_s(1) format(1:    — then KEY_EVENTs and one
                     0, 4, or 0xFF = by the key: tdes 0, aes 4)      PIN_RESULT, all with this SEQ
                     pan_len(1) pan (8-19 ASCII digits)
0x31   CANCEL_ENTRY  —                                               — (the entry ends with PIN_RESULT
                                                                     host_canceled)
0x32   CLEAR_ENTRY   —                                               — (digits entered so far erased)
0x50   SIGN_START    timeout_s(1)                                    — the pad's screen asks the
                                                                     customer to sign (the previous
                                                                     signature is dropped)
0x51   SIGN_READ     offset(2)                                       state(1: 0 signing, 1 done,
                                                                     2 timed out, 3 customer
                                                                     canceled) total(2) chunk_len(1)
                                                                     chunk — the signature PNG from
                                                                     offset, at most 200 bytes
=====  ============  ==============================================  =================================

PIN pad -> host events during a PIN entry (never replies; SEQ of the START_PIN):

=====  ============  ======================================================================
0x40   KEY_EVENT     kind(1) count(1): the number of digits entered after the key. kind is
                     'D' digit, 'F' digit ignored (already at max), 'C' clear, 'E' enter
                     accepted, 'R' enter refused (fewer than min digits), 'X' cancel key.
                     Digit values never leave the PIN pad.
0x41   PIN_RESULT    outcome(1: a ResultCode) digits(1) format(1) block_len(1) block
                     ksn_len(1) ksn — block and KSN are empty unless outcome is ok. The block
                     is ISO 9564 format 0 under the TDES DUKPT PIN key (8 bytes) or format 4
                     under the AES DUKPT PIN key (16 bytes); the KSN is that transaction's.
=====  ============  ======================================================================

LOAD_KEY carries the initial key in clear: it is meant for a key-loading ceremony on a
trusted line (or the simulator); a key wrapped under a KEK (TR-31) would need its own command.

START_PIN's timeout runs from the start and restarts at every key press; when it expires the
entry ends with PIN_RESULT entry_timeout. The pad enforces min and max itself.

Result codes: 00 ok, 01 unknown_command, 02 bad_parameter, 03 no_key, 04 ksn_exhausted,
05 busy (an entry is in progress), 06 tamper (keys erased), 07 not_in_entry, 08 key_rejected,
09 format_mismatch, and as PIN_RESULT outcomes 10 customer_canceled, 11 entry_timeout,
12 host_canceled.

Decoding never raises: anything that is not a valid frame or message comes out as
``Malformed`` naming what was wrong, and the decoder resynchronises on the next STX.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum
from typing import ClassVar, TypeAlias

STX = 0x02
ETX = 0x03
REPLY_BIT = 0x80
MAX_PAYLOAD = 256
SLOT_COUNT = 4
ALL_SLOTS = 0xFF
FORMAT_BY_KEY = 0xFF
PAN_MIN, PAN_MAX = 8, 19
PIN_MIN, PIN_MAX = 4, 12
SIGN_CHUNK = 200
SIGN_MAX = 0xFFFF

_HEADER = 3  # STX LEN_H LEN_L
_TRAILER = 2  # ETX LRC
_MIN_LEN = 2  # SEQ CMD
_MAX_LEN = _MIN_LEN + MAX_PAYLOAD
# Bytes outside frames are reported in runs; the cap bounds one run.
_MAX_GARBAGE_RUN = 256


class Cmd(IntEnum):
    STATUS = 0x10
    GET_INFO = 0x11
    LOAD_KEY = 0x20
    GET_KCV = 0x21
    GET_KSN = 0x22
    ERASE_KEYS = 0x23
    START_PIN = 0x30
    CANCEL_ENTRY = 0x31
    CLEAR_ENTRY = 0x32
    KEY_EVENT = 0x40
    PIN_RESULT = 0x41
    SIGN_START = 0x50
    SIGN_READ = 0x51


class ResultCode(IntEnum):
    OK = 0x00
    UNKNOWN_COMMAND = 0x01
    BAD_PARAMETER = 0x02
    NO_KEY = 0x03
    KSN_EXHAUSTED = 0x04
    BUSY = 0x05
    TAMPER = 0x06
    NOT_IN_ENTRY = 0x07
    KEY_REJECTED = 0x08
    FORMAT_MISMATCH = 0x09
    CUSTOMER_CANCELED = 0x10
    ENTRY_TIMEOUT = 0x11
    HOST_CANCELED = 0x12

    @property
    def label(self) -> str:
        return self.name.lower()


class Algorithm(StrEnum):
    TDES = "tdes"
    AES = "aes"

    @property
    def wire(self) -> int:
        return 1 if self is Algorithm.TDES else 2

    @property
    def ksn_length(self) -> int:
        return 10 if self is Algorithm.TDES else 12

    @property
    def key_lengths(self) -> tuple[int, ...]:
        return (16,) if self is Algorithm.TDES else (16, 24, 32)

    @property
    def pin_format(self) -> int:
        """The ISO 9564 PIN block format this key produces."""
        return 0 if self is Algorithm.TDES else 4

    @property
    def kcv_length(self) -> int:
        return 3 if self is Algorithm.TDES else 5


_ALG_BY_WIRE = {a.wire: a for a in Algorithm}
BLOCK_LENGTH = {0: 8, 4: 16}


class KeyKind(StrEnum):
    """KEY_EVENT kinds: what the customer pressed, never which digit."""

    DIGIT = "D"
    FULL = "F"
    CLEAR = "C"
    ENTER = "E"
    ENTER_REFUSED = "R"
    CANCEL = "X"


class SlotState(IntEnum):
    EMPTY = 0
    TDES = 1
    AES = 2


EXHAUSTED_BIT = 0x80


# --- framing --------------------------------------------------------------------------------


def lrc(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


@dataclass(frozen=True)
class Frame:
    seq: int
    cmd: int
    payload: bytes = b""


@dataclass(frozen=True)
class Malformed:
    """Input that could not be decoded: ``reason`` says what, ``raw`` is the input."""

    reason: str
    raw: bytes = field(default=b"", repr=False)


def encode_frame(seq: int, cmd: int, payload: bytes = b"") -> bytes:
    """A complete frame. Raises ValueError on out-of-range arguments (a caller's bug)."""
    if not 0 <= seq <= 0xFF or not 0 <= cmd <= 0xFF:
        raise ValueError(f"seq {seq} / cmd {cmd} outside 0..255")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    length = _MIN_LEN + len(payload)
    body = bytes([length >> 8, length & 0xFF, seq, cmd]) + payload + bytes([ETX])
    return bytes([STX]) + body + bytes([lrc(body)])


class _Need:
    pass


_NEED = _Need()


def _judge(buf: bytearray) -> _Need | tuple[Frame | str, int]:
    """Judge the candidate frame at buf[0] == STX: _NEED, (frame, size) or (reason, size)."""
    if len(buf) < _HEADER:
        return _NEED
    length = (buf[1] << 8) | buf[2]
    if not _MIN_LEN <= length <= _MAX_LEN:
        return f"bad length: LEN {length} outside {_MIN_LEN}..{_MAX_LEN}", _HEADER
    total = _HEADER + length + _TRAILER
    if len(buf) < total:
        return _NEED
    etx_at = _HEADER + length
    if buf[etx_at] != ETX:
        return f"missing ETX: expected 0x03 at offset {etx_at}, got 0x{buf[etx_at]:02X}", total
    expected = lrc(bytes(buf[1 : etx_at + 1]))
    if buf[etx_at + 1] != expected:
        return f"bad LRC: expected 0x{expected:02X}, got 0x{buf[etx_at + 1]:02X}", total
    return Frame(buf[3], buf[4], bytes(buf[5:etx_at])), total


class FrameDecoder:
    """Feed bytes in any chunking; get ``Frame`` and ``Malformed`` items out, in order.

    Never raises. A candidate that fails a check is reported once and scanning resumes at the
    byte after its STX, so a good frame swallowed by a corrupted LEN is still found. Decisions
    depend only on the byte stream, so chunking never changes the result.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._garbage = bytearray()
        self._covered = 0  # leading bytes already reported inside a bad candidate

    @property
    def buffered(self) -> int:
        return len(self._buf) + len(self._garbage)

    @property
    def needed(self) -> int:
        """How many more bytes the frame being received needs (1 when none is under way)."""
        if not self._buf or self._buf[0] != STX:
            return 1
        if len(self._buf) < _HEADER:
            return _HEADER - len(self._buf)
        length = (self._buf[1] << 8) | self._buf[2]
        return max(1, _HEADER + length + _TRAILER - len(self._buf))

    def reset(self) -> None:
        self._buf.clear()
        self._garbage.clear()
        self._covered = 0

    def feed(self, data: bytes) -> list[Frame | Malformed]:
        self._buf += data
        return self._drain(final=False)

    def flush(self) -> list[Frame | Malformed]:
        """End of input (a gap on the line): report whatever is still held."""
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[Frame | Malformed]:
        out: list[Frame | Malformed] = []
        buf = self._buf
        while buf:
            if buf[0] == STX:
                verdict = _judge(buf)
                if isinstance(verdict, _Need):
                    if not final:
                        break
                    verdict = (f"truncated frame: {len(buf)} bytes then silence", len(buf))
                self._emit_garbage(out)
                what, size = verdict
                if isinstance(what, Frame):
                    out.append(what)
                    self._drop(size)
                else:
                    if self._covered == 0:
                        out.append(Malformed(what, bytes(buf[:size])))
                        self._covered = size
                    self._drop(1)
            elif self._covered:
                self._drop(1)
            else:
                self._garbage.append(buf[0])
                self._drop(1)
                if len(self._garbage) >= _MAX_GARBAGE_RUN:
                    self._emit_garbage(out)
        if final:
            self._emit_garbage(out)
        return out

    def _drop(self, count: int) -> None:
        del self._buf[:count]
        self._covered = max(0, self._covered - count)

    def _emit_garbage(self, out: list[Frame | Malformed]) -> None:
        if self._garbage:
            raw = bytes(self._garbage)
            out.append(Malformed(f"{len(raw)} unexpected byte(s) outside a frame", raw))
            self._garbage.clear()


# --- payload helpers -----------------------------------------------------------------------


class _Bad(Exception):
    """A payload that does not parse; the message names the field."""


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._at = 0
        self._what = what

    def byte(self, name: str) -> int:
        if self._at >= len(self._data):
            raise _Bad(f"{self._what}: payload ends before {name}")
        value = self._data[self._at]
        self._at += 1
        return value

    def chunk(self, name: str) -> bytes:
        size = self.byte(f"{name} length")
        if self._at + size > len(self._data):
            raise _Bad(f"{self._what}: {name} length {size} runs past the payload")
        value = self._data[self._at : self._at + size]
        self._at += size
        return value

    def text(self, name: str) -> str:
        raw = self.chunk(name)
        if not all(0x20 <= b < 0x7F for b in raw):
            raise _Bad(f"{self._what}: {name} is not printable ASCII")
        return raw.decode("ascii")

    def end(self) -> None:
        if self._at != len(self._data):
            raise _Bad(f"{self._what}: {len(self._data) - self._at} unexpected trailing byte(s)")


def _lv(data: bytes) -> bytes:
    if len(data) > 0xFF:
        raise ValueError("field longer than 255 bytes")
    return bytes([len(data)]) + data


def _alg(value: int, what: str) -> Algorithm:
    try:
        return _ALG_BY_WIRE[value]
    except KeyError:
        raise _Bad(f"{what}: unknown algorithm 0x{value:02X} (1 tdes, 2 aes)") from None


def _slot(value: int, what: str, allow_all: bool = False) -> int:
    if value < SLOT_COUNT or (allow_all and value == ALL_SLOTS):
        return value
    raise _Bad(f"{what}: key slot {value} outside 0..{SLOT_COUNT - 1}")


def _check_key(algorithm: Algorithm, key: bytes, ksn: bytes, what: str) -> None:
    if len(key) not in algorithm.key_lengths:
        raise _Bad(
            f"{what}: {algorithm} key must be {'/'.join(map(str, algorithm.key_lengths))} "
            f"bytes, got {len(key)}"
        )
    if len(ksn) != algorithm.ksn_length:
        raise _Bad(f"{what}: {algorithm} KSN must be {algorithm.ksn_length} bytes, got {len(ksn)}")


def _check_pan(pan: str, what: str) -> None:
    if not PAN_MIN <= len(pan) <= PAN_MAX or not pan.isdigit() or not pan.isascii():
        raise _Bad(f"{what}: PAN must be {PAN_MIN}-{PAN_MAX} ASCII digits")


# --- requests (host -> PIN pad) -------------------------------------------------------------


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
        return bytes([self.slot, self.algorithm.wire]) + _lv(self.key) + _lv(self.ksn)


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
        return head + _lv(self.pan.encode("ascii"))


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


class SignState(IntEnum):
    SIGNING = 0
    DONE = 1
    TIMED_OUT = 2
    CANCELED = 3


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
    r = _Reader(payload, what)
    request: Request
    if kind is Cmd.STATUS:
        request = Status()
    elif kind is Cmd.GET_INFO:
        request = GetInfo()
    elif kind is Cmd.LOAD_KEY:
        slot = _slot(r.byte("slot"), what)
        algorithm = _alg(r.byte("algorithm"), what)
        key, ksn = r.chunk("key"), r.chunk("KSN")
        _check_key(algorithm, key, ksn, what)
        request = LoadKey(slot, algorithm, key, ksn)
    elif kind is Cmd.GET_KCV:
        request = GetKcv(_slot(r.byte("slot"), what))
    elif kind is Cmd.GET_KSN:
        request = GetKsn(_slot(r.byte("slot"), what))
    elif kind is Cmd.ERASE_KEYS:
        request = EraseKeys(_slot(r.byte("slot"), what, allow_all=True))
    elif kind is Cmd.START_PIN:
        slot = _slot(r.byte("slot"), what)
        min_len, max_len, timeout_s = r.byte("min"), r.byte("max"), r.byte("timeout")
        fmt = r.byte("format")
        pan_raw = r.chunk("PAN")
        if not PIN_MIN <= min_len <= max_len <= PIN_MAX:
            raise _Bad(
                f"{what}: PIN lengths min {min_len} max {max_len} outside 4 <= min <= max <= 12"
            )
        if timeout_s == 0:
            raise _Bad(f"{what}: timeout must be 1-255 seconds")
        if fmt not in (0, 4, FORMAT_BY_KEY):
            raise _Bad(f"{what}: PIN block format 0x{fmt:02X} is not 0, 4 or 0xFF")
        pan = pan_raw.decode("latin-1")
        _check_pan(pan, what)
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
            raise _Bad(f"{what}: timeout must be 1-255 seconds")
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
    except _Bad as exc:
        return BadRequest(frame.seq, frame.cmd, str(exc))


# --- PIN pad -> host messages ---------------------------------------------------------------


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
        return _ALG_BY_WIRE.get(self.slots[slot] & ~EXHAUSTED_BIT)

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
        data = b"".join(_lv(s.encode("ascii")) for s in (m.model, m.serial, m.firmware))
        return encode_ok(m.seq, Cmd.GET_INFO, data)
    if isinstance(m, KeyLoadedReply):
        return encode_ok(m.seq, Cmd.LOAD_KEY, bytes([m.algorithm.wire]) + _lv(m.kcv) + _lv(m.ksn))
    if isinstance(m, KcvReply):
        return encode_ok(m.seq, Cmd.GET_KCV, bytes([m.algorithm.wire]) + _lv(m.kcv))
    if isinstance(m, KsnReply):
        data = bytes([m.algorithm.wire, 1 if m.exhausted else 0]) + _lv(m.ksn)
        return encode_ok(m.seq, Cmd.GET_KSN, data)
    if isinstance(m, SignChunk):
        data = bytes([m.state]) + m.total.to_bytes(2, "big") + _lv(m.chunk)
        return encode_ok(m.seq, Cmd.SIGN_READ, data)
    if isinstance(m, KeyEvent):
        return encode_frame(m.seq, Cmd.KEY_EVENT, m.kind.encode("ascii") + bytes([m.count]))
    head = bytes([m.outcome, m.digits, m.pin_format])
    return encode_frame(m.seq, Cmd.PIN_RESULT, head + _lv(m.block) + _lv(m.ksn))


_NO_DATA_REPLIES = (
    Cmd.ERASE_KEYS,
    Cmd.START_PIN,
    Cmd.CANCEL_ENTRY,
    Cmd.CLEAR_ENTRY,
    Cmd.SIGN_START,
)


def _parse_reply(seq: int, cmd: Cmd, r: _Reader) -> DeviceMessage:
    what = f"{cmd.name} reply"
    code_byte = r.byte("result code")
    try:
        code = ResultCode(code_byte)
    except ValueError:
        raise _Bad(f"{what}: unknown result code 0x{code_byte:02X}") from None
    if code is not ResultCode.OK:
        r.end()
        return ErrorReply(seq, cmd, code)
    message: DeviceMessage
    if cmd in _NO_DATA_REPLIES:
        message = OkReply(seq, cmd)
    elif cmd is Cmd.STATUS:
        state, flags, count = r.byte("state"), r.byte("flags"), r.byte("slot count")
        if state > 1:
            raise _Bad(f"{what}: unknown state {state}")
        if flags & ~0x03:
            raise _Bad(f"{what}: unknown flag bits 0x{flags & ~0x03:02X}")
        slots = tuple(r.byte(f"slot {i}") for i in range(count))
        for i, value in enumerate(slots):
            if value & ~EXHAUSTED_BIT not in (0, 1, 2):
                raise _Bad(f"{what}: slot {i} state 0x{value:02X} unknown")
        message = StatusReply(seq, state == 1, bool(flags & 1), bool(flags & 2), slots)
    elif cmd is Cmd.GET_INFO:
        message = InfoReply(seq, r.text("model"), r.text("serial"), r.text("firmware"))
    elif cmd is Cmd.LOAD_KEY:
        algorithm = _alg(r.byte("algorithm"), what)
        message = KeyLoadedReply(seq, algorithm, _kcv(r, algorithm, what), r.chunk("KSN"))
    elif cmd is Cmd.GET_KCV:
        algorithm = _alg(r.byte("algorithm"), what)
        message = KcvReply(seq, algorithm, _kcv(r, algorithm, what))
    elif cmd is Cmd.GET_KSN:
        algorithm = _alg(r.byte("algorithm"), what)
        flags = r.byte("flags")
        if flags & ~0x01:
            raise _Bad(f"{what}: unknown flag bits 0x{flags & ~0x01:02X}")
        ksn = r.chunk("KSN")
        if len(ksn) != algorithm.ksn_length:
            raise _Bad(f"{what}: {algorithm} KSN must be {algorithm.ksn_length} bytes")
        message = KsnReply(seq, algorithm, bool(flags & 1), ksn)
    elif cmd is Cmd.SIGN_READ:
        state_byte = r.byte("state")
        try:
            sign_state = SignState(state_byte)
        except ValueError:
            raise _Bad(f"{what}: unknown signature state {state_byte}") from None
        total = (r.byte("total high") << 8) | r.byte("total low")
        chunk = r.chunk("chunk")
        if len(chunk) > SIGN_CHUNK:
            raise _Bad(f"{what}: a chunk is at most {SIGN_CHUNK} bytes, got {len(chunk)}")
        message = SignChunk(seq, sign_state, total, chunk)
    else:
        raise _Bad(f"{what}: CMD 0x{cmd:02X} is not a request")
    r.end()
    return message


def _kcv(r: _Reader, algorithm: Algorithm, what: str) -> bytes:
    kcv = r.chunk("KCV")
    if len(kcv) != algorithm.kcv_length:
        raise _Bad(f"{what}: {algorithm} KCV must be {algorithm.kcv_length} bytes, got {len(kcv)}")
    return kcv


def _parse_event(seq: int, cmd: Cmd, r: _Reader) -> DeviceMessage:
    what = cmd.name
    if cmd is Cmd.KEY_EVENT:
        raw_kind = r.byte("kind")
        try:
            kind = KeyKind(chr(raw_kind))
        except ValueError:
            raise _Bad(f"{what}: unknown key kind 0x{raw_kind:02X}") from None
        count = r.byte("count")
        if count > PIN_MAX:
            raise _Bad(f"{what}: digit count {count} above {PIN_MAX}")
        r.end()
        return KeyEvent(seq, kind, count)
    outcome_byte = r.byte("outcome")
    try:
        outcome = ResultCode(outcome_byte)
    except ValueError:
        raise _Bad(f"{what}: unknown outcome 0x{outcome_byte:02X}") from None
    digits, fmt = r.byte("digits"), r.byte("format")
    block, ksn = r.chunk("PIN block"), r.chunk("KSN")
    r.end()
    if outcome is ResultCode.OK:
        if fmt not in BLOCK_LENGTH or len(block) != BLOCK_LENGTH[fmt]:
            raise _Bad(f"{what}: format {fmt} with a {len(block)}-byte PIN block")
        if len(ksn) != (10 if fmt == 0 else 12):
            raise _Bad(f"{what}: format {fmt} with a {len(ksn)}-byte KSN")
        if not PIN_MIN <= digits <= PIN_MAX:
            raise _Bad(f"{what}: digit count {digits} outside {PIN_MIN}..{PIN_MAX}")
    elif block or ksn:
        raise _Bad(f"{what}: outcome {outcome.label} must not carry a PIN block or KSN")
    return PinResult(seq, outcome, digits, fmt, block, ksn)


def decode_device_message(frame: Frame) -> DeviceMessage | Malformed:
    """The host's view of one frame from the PIN pad; never raises."""
    try:
        if frame.cmd & REPLY_BIT:
            try:
                cmd = Cmd(frame.cmd & ~REPLY_BIT)
            except ValueError:
                raise _Bad(f"reply to unknown CMD 0x{frame.cmd & ~REPLY_BIT:02X}") from None
            return _parse_reply(frame.seq, cmd, _Reader(frame.payload, cmd.name))
        if frame.cmd in (Cmd.KEY_EVENT, Cmd.PIN_RESULT):
            cmd = Cmd(frame.cmd)
            return _parse_event(frame.seq, cmd, _Reader(frame.payload, cmd.name))
        raise _Bad(f"CMD 0x{frame.cmd:02X} is not a reply or event")
    except _Bad as exc:
        return Malformed(str(exc), encode_frame(frame.seq, frame.cmd, frame.payload))


# --- redaction for the wire spy -------------------------------------------------------------


def redact_frame(frame: Frame) -> Frame:
    """The frame with key material, PIN blocks and all but first 6 / last 4 PAN digits blanked,
    for ``branchline-diag spy``: the technician sees the exchange, never the secrets."""
    p = frame.payload
    if frame.cmd == Cmd.LOAD_KEY and len(p) >= 3:
        size = min(p[2], len(p) - 3)
        return replace(frame, payload=p[:3] + bytes(size) + p[3 + size :])
    if frame.cmd == Cmd.PIN_RESULT and len(p) >= 4:
        size = min(p[3], len(p) - 4)
        return replace(frame, payload=p[:4] + bytes(size) + p[4 + size :])
    if frame.cmd == Cmd.START_PIN and len(p) >= 6:
        size = min(p[5], len(p) - 6)
        pan = p[6 : 6 + size]
        masked = (
            pan[:6] + b"*" * max(0, len(pan) - 10) + pan[-4:] if len(pan) > 10 else b"*" * len(pan)
        )
        return replace(frame, payload=p[:6] + masked + p[6 + size :])
    return frame


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
