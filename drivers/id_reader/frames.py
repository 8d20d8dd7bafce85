"""GA 467 framing of the China resident ID-card reader (SAM_V module), never-raising decoder.

GA 467-2013 "居民身份证验证安全控制模块接口技术规范" (technical specification for the
interfaces of the resident ID card secure access module, superseded by GA/T 467-2019),
terminal interface ("业务终端接口", section 7 of the 2019 edition). The standard itself was
not at hand; the layout below follows public transcriptions of it and the SAM vendors'
manuals, which agree::

    request  AA AA AA 96 69  LEN_H LEN_L  CMD PARA DATA...     CHK
    reply    AA AA AA 96 69  LEN_H LEN_L  SW1 SW2 SW3 DATA...  CHK

LEN counts the bytes from CMD (or SW1) through CHK inclusive. CHK is the XOR of every byte
after the preamble except CHK itself (the LEN bytes included). Example (find card)::

    request  AA AA AA 96 69 00 03 20 01 22
    reply    AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97

SW3 result codes, as the vendors' SDK headers (sdtapi) list them; the stable codes are ours:

====  ======================  ====================================================
SW3   code                    meaning
====  ======================  ====================================================
0x90  ok                      success
0x91  no_content              the card holds no such item
0x9F  card_found              find card succeeded
0x10  checksum_error          SAM received a request with a bad checksum
0x11  length_error            SAM received a request with a bad length
0x21  bad_command             bad command, parameter or combination
0x23  unauthorised            operation not permitted
0x24  unrecognised_error      unrecognised error
0x31  card_auth_of_sam_failed the card failed to authenticate the SAM
0x32  sam_auth_of_card_failed the SAM failed to authenticate the card
0x33  info_verify_failed      information verification failed
0x40  unknown_card_type       unrecognised card type
0x41  read_failed             reading the card failed
0x47  random_failed           getting a random number failed
0x60  sam_self_test_failed    SAM self-test failed; it accepts no commands
0x66  sam_not_authorised      SAM not authorised; it cannot be used
0x80  no_card                 find card failed (no card on the reader)
0x81  select_failed           select card failed
====  ======================  ====================================================
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from enum import Enum

from branchline.drivers.base import Completion, DeviceError
from branchline.drivers.framing import Bad, Good, ResyncDecoder
from branchline.drivers.malformed import Malformed

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
MIN_REQUEST_LEN = 3  # CMD PARA CHK
MIN_REPLY_LEN = 4  # SW1 SW2 SW3 CHK
# Above the largest real reply (text + photo + fingerprint, 2314 bytes) so a corrupted LEN
# cannot make the decoder wait for a phantom 64 KiB frame.
MAX_LEN = 4096

TEXT_LEN = 256
PHOTO_LEN = 1024


class Command(Enum):
    """(CMD, PARA) pairs of the terminal interface."""

    SAM_STATUS = (0x11, 0xFF)
    FIND_CARD = (0x20, 0x01)
    SELECT_CARD = (0x20, 0x02)
    READ_TEXT_PHOTO = (0x30, 0x01)


@dataclass(frozen=True)
class Request:
    cmd: int
    para: int
    data: bytes = b""

    @property
    def command(self) -> Command | None:
        try:
            return Command((self.cmd, self.para))
        except ValueError:
            return None


@dataclass(frozen=True)
class Reply:
    sw1: int
    sw2: int
    sw3: int
    data: bytes = b""

    @property
    def result(self) -> Sw3:
        return sw3_info(self.sw3)


@dataclass(frozen=True)
class Sw3:
    value: int
    code: str
    message: str
    completion: Completion  # SUCCESS for the good results

    @property
    def ok(self) -> bool:
        return self.completion is Completion.SUCCESS

    def to_device_error(self) -> DeviceError:
        return DeviceError(self.completion, self.code, f"{self.message} (SW3 0x{self.value:02X})")


_C = Completion
# Completion codes are Branchline's reading of each result; the SW3 values are GA 467's.
_SW3 = {
    s.value: s
    for s in (
        Sw3(0x90, "ok", "success", _C.SUCCESS),
        Sw3(0x91, "no_content", "the card holds no such item", _C.INVALID_DATA),
        Sw3(0x9F, "card_found", "card found", _C.SUCCESS),
        Sw3(0x10, "checksum_error", "reader received a bad checksum", _C.HARDWARE_ERROR),
        Sw3(0x11, "length_error", "reader received a bad length", _C.HARDWARE_ERROR),
        Sw3(0x21, "bad_command", "bad command or parameter", _C.UNSUPPORTED),
        Sw3(0x23, "unauthorised", "operation not permitted", _C.UNSUPPORTED),
        Sw3(0x24, "unrecognised_error", "unrecognised error", _C.HARDWARE_ERROR),
        Sw3(0x31, "card_auth_of_sam_failed", "card did not accept the SAM", _C.FRAUD_ATTEMPT),
        Sw3(0x32, "sam_auth_of_card_failed", "SAM did not accept the card", _C.FRAUD_ATTEMPT),
        Sw3(0x33, "info_verify_failed", "card information failed verification", _C.FRAUD_ATTEMPT),
        Sw3(0x40, "unknown_card_type", "not a resident ID card", _C.USER_ERROR),
        Sw3(0x41, "read_failed", "reading the card failed", _C.USER_ERROR),
        Sw3(0x47, "random_failed", "getting a random number failed", _C.HARDWARE_ERROR),
        Sw3(0x60, "sam_self_test_failed", "SAM self-test failed", _C.HARDWARE_ERROR),
        Sw3(0x66, "sam_not_authorised", "SAM not authorised", _C.HARDWARE_ERROR),
        Sw3(0x80, "no_card", "no card on the reader", _C.USER_ERROR),
        Sw3(0x81, "select_failed", "selecting the card failed", _C.USER_ERROR),
    )
}


def sw3_info(sw3: int) -> Sw3:
    known = _SW3.get(sw3)
    if known is not None:
        return known
    return Sw3(sw3, f"sw3_{sw3:02x}", f"unknown result 0x{sw3:02X}", Completion.HARDWARE_ERROR)


def checksum(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def _frame(body: bytes) -> bytes:
    length = len(body) + 1
    if length > MAX_LEN:
        raise ValueError(f"frame body of {length} bytes exceeds {MAX_LEN}")
    covered = length.to_bytes(2, "big") + body
    return PREAMBLE + covered + bytes([checksum(covered)])


def _byte(name: str, value: int) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} {value} outside 0..255")
    return value


def encode_request(command: Command | tuple[int, int], data: bytes = b"") -> bytes:
    cmd, para = command.value if isinstance(command, Command) else command
    return _frame(bytes([_byte("cmd", cmd), _byte("para", para)]) + data)


def encode_reply(sw3: int, data: bytes = b"", *, sw1: int = 0x00, sw2: int = 0x00) -> bytes:
    return _frame(bytes([_byte("sw1", sw1), _byte("sw2", sw2), _byte("sw3", sw3)]) + data)


def encode_item(item: Request | Reply) -> bytes:
    if isinstance(item, Request):
        return encode_request((item.cmd, item.para), item.data)
    return encode_reply(item.sw3, item.data, sw1=item.sw1, sw2=item.sw2)


@dataclass(frozen=True)
class TextAndPhoto:
    """DATA of a successful READ_TEXT_PHOTO reply: the raw text block and the raw photo."""

    text: bytes
    photo: bytes


def parse_text_and_photo(data: bytes) -> TextAndPhoto | Malformed[bytes]:
    """Split ``text length (2) | photo length (2) | text | photo``, lengths big-endian."""
    data = bytes(data)
    if len(data) < 4:
        return Malformed(f"read reply DATA of {len(data)} bytes lacks the two length fields", data)
    text_len = int.from_bytes(data[:2], "big")
    photo_len = int.from_bytes(data[2:4], "big")
    if 4 + text_len + photo_len != len(data):
        return Malformed(
            f"bad length: text {text_len} + photo {photo_len} + 4 != {len(data)} DATA bytes", data
        )
    return TextAndPhoto(data[4 : 4 + text_len], data[4 + text_len :])


def encode_text_and_photo(text: bytes, photo: bytes) -> bytes:
    return len(text).to_bytes(2, "big") + len(photo).to_bytes(2, "big") + text + photo


class _Decoder(ResyncDecoder[Request | Reply]):
    """GA 467 framing on the shared resynchronising decoder; subclasses say what a body is."""

    start = PREAMBLE
    _min_len: int

    def wanted(self) -> int:
        """How many more bytes would complete the frame being received (at least 1).

        Lets a reader ask its line for exactly that many bytes, so it returns as soon as the
        frame is in instead of waiting out a read timeout.
        """
        buf = self._buf
        if len(buf) < 7:
            return 7 - len(buf)
        length = (buf[5] << 8) | buf[6]
        if buf.startswith(PREAMBLE) and self._min_len <= length <= MAX_LEN:
            return max(1, 7 + length - len(buf))
        return 1

    @abstractmethod
    def _make(self, body: bytes) -> Request | Reply:
        """The item a checked frame body (CMD/SW1 onwards, without CHK) decodes to."""

    def judge(self, buf: bytearray) -> Good[Request | Reply] | Bad | None:
        if len(buf) < 7:
            return None
        length = (buf[5] << 8) | buf[6]
        if not self._min_len <= length <= MAX_LEN:
            return Bad(f"bad length: LEN {length} outside {self._min_len}..{MAX_LEN}", 7)
        total = 7 + length
        if len(buf) < total:
            return None
        expected = checksum(bytes(buf[5 : total - 1]))
        if buf[total - 1] != expected:
            return Bad(
                f"bad checksum: expected 0x{expected:02X}, got 0x{buf[total - 1]:02X}", total
            )
        return Good(self._make(bytes(buf[7 : total - 1])), total)

    def truncated(self, buf: bytearray) -> str:
        return f"truncated frame: only {len(buf)} bytes"


class ReplyDecoder(_Decoder):
    """Decodes what the reader sends (the terminal side)."""

    _min_len = MIN_REPLY_LEN

    def _make(self, body: bytes) -> Reply:
        return Reply(body[0], body[1], body[2], body[3:])


class RequestDecoder(_Decoder):
    """Decodes what the terminal sends (the simulator side)."""

    _min_len = MIN_REQUEST_LEN

    def _make(self, body: bytes) -> Request:
        return Request(body[0], body[1], body[2:])
