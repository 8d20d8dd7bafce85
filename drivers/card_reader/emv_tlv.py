"""BER-TLV as used by EMV (EMV 4.x Book 3, Annex B), and the few card data elements we read.

Tags: bits 5-1 of the first byte all set means more tag bytes follow, each with b8 set while
yet another follows (at most 3 tag bytes here, the ISO/IEC 7816-4 limit). Bit 6 of the first
byte marks a constructed object, whose value is itself a series of TLVs. Lengths: one byte
0..127, or 0x81/0x82/0x83 followed by 1-3 length bytes; the indefinite form 0x80 is not
allowed in EMV. Bytes 0x00 (and 0xFF, per ISO/IEC 7816-4) between objects are padding.

The parser never raises: bad input returns ``Malformed`` with the offset and the problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from branchline.drivers.malformed import Malformed

TAG_AID = 0x4F
TAG_APP_LABEL = 0x50
TAG_TRACK2_EQUIVALENT = 0x57
TAG_PAN = 0x5A
TAG_APP_TEMPLATE = 0x61
TAG_FCI = 0x6F
TAG_RECORD = 0x70
TAG_RESPONSE_FORMAT_2 = 0x77
TAG_RESPONSE_FORMAT_1 = 0x80
TAG_AIP = 0x82
TAG_COMMAND_TEMPLATE = 0x83
TAG_DF_NAME = 0x84
TAG_SFI = 0x88
TAG_AFL = 0x94
TAG_FCI_PROPRIETARY = 0xA5
TAG_CARDHOLDER_NAME = 0x5F20
TAG_EXPIRY = 0x5F24
TAG_EFFECTIVE = 0x5F25
TAG_PAN_SEQUENCE = 0x5F34
TAG_PDOL = 0x9F38

MAX_DEPTH = 8  # EMV templates nest 3-4 deep; the cap stops hostile input recursing forever
_PADDING = (0x00, 0xFF)

_T = TypeVar("_T")


@dataclass(frozen=True)
class Tlv:
    """One data object. For a constructed tag ``children`` holds the parsed value."""

    tag: int
    value: bytes
    children: tuple[Tlv, ...] = ()

    @property
    def constructed(self) -> bool:
        return is_constructed(self.tag)

    def encode(self) -> bytes:
        return encode(self.tag, self.value)

    def find(self, tag: int) -> Tlv | None:
        return find(self.children, tag)


def tag_bytes(tag: int) -> bytes:
    if tag <= 0:
        raise ValueError(f"tag {tag:#x} is not a tag")
    return tag.to_bytes((tag.bit_length() + 7) // 8, "big")


def is_constructed(tag: int) -> bool:
    return bool(tag_bytes(tag)[0] & 0x20)


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    for size in (1, 2, 3):
        if length < 1 << (8 * size):
            return bytes([0x80 | size]) + length.to_bytes(size, "big")
    raise ValueError(f"length {length} does not fit three length bytes")


def encode(tag: int, value: bytes) -> bytes:
    """One TLV with the shortest length form."""
    return tag_bytes(tag) + encode_length(len(value)) + value


def primitive(tag: int, value: bytes) -> Tlv:
    if is_constructed(tag):
        raise ValueError(f"tag {tag:#x} is constructed")
    return Tlv(tag, value)


def constructed(tag: int, *children: Tlv) -> Tlv:
    if not is_constructed(tag):
        raise ValueError(f"tag {tag:#x} is primitive")
    return Tlv(tag, b"".join(child.encode() for child in children), tuple(children))


def encode_all(tlvs: Iterable[Tlv]) -> bytes:
    return b"".join(tlv.encode() for tlv in tlvs)


def parse(data: bytes) -> tuple[Tlv, ...] | Malformed:
    """All TLVs in ``data``, constructed ones parsed recursively."""
    result = _parse(data, 0, 0)
    if isinstance(result, str):
        return Malformed(result, bytes(data))
    return result


def _parse(data: bytes, base: int, depth: int) -> tuple[Tlv, ...] | str:
    if depth > MAX_DEPTH:
        return f"at offset {base}: templates nested deeper than {MAX_DEPTH}"
    items: list[Tlv] = []
    i = 0
    while i < len(data):
        if data[i] in _PADDING:
            i += 1
            continue
        start = i
        tag_end = i + 1
        if data[i] & 0x1F == 0x1F:
            while True:
                if tag_end >= len(data):
                    return f"at offset {base + start}: tag truncated"
                tag_end += 1
                if not data[tag_end - 1] & 0x80:
                    break
                if tag_end - start >= 3:
                    return f"at offset {base + start}: tag longer than 3 bytes"
        tag = int.from_bytes(data[start:tag_end], "big")
        if tag_end >= len(data):
            return f"at offset {base + start}: tag {tag:X} has no length"
        first = data[tag_end]
        value_at = tag_end + 1
        if first < 0x80:
            length = first
        elif first == 0x80:
            return f"at offset {base + tag_end}: indefinite length is not allowed in EMV"
        elif first <= 0x83:
            value_at += first & 0x7F
            if value_at > len(data):
                return f"at offset {base + tag_end}: length field of tag {tag:X} truncated"
            length = int.from_bytes(data[tag_end + 1 : value_at], "big")
        else:
            return f"at offset {base + tag_end}: length field of {first & 0x7F} bytes too long"
        if value_at + length > len(data):
            return (
                f"at offset {base + tag_end}: bad length: tag {tag:X} claims {length} bytes, "
                f"{len(data) - value_at} remain"
            )
        value = bytes(data[value_at : value_at + length])
        children: tuple[Tlv, ...] = ()
        if data[start] & 0x20:
            parsed = _parse(value, base + value_at, depth + 1)
            if isinstance(parsed, str):
                return parsed
            children = parsed
        items.append(Tlv(tag, value, children))
        i = value_at + length
    return tuple(items)


def walk(tlvs: Iterable[Tlv]) -> Iterator[Tlv]:
    """Every object, depth first, templates before their contents."""
    for tlv in tlvs:
        yield tlv
        yield from walk(tlv.children)


def find(tlvs: Iterable[Tlv], tag: int) -> Tlv | None:
    """The first object with ``tag`` anywhere in the tree."""
    return next((tlv for tlv in walk(tlvs) if tlv.tag == tag), None)


# --- data elements -------------------------------------------------------------------------


def _nibbles(value: bytes) -> str:
    return value.hex().upper()


def decode_pan(value: bytes) -> str | Malformed:
    """Tag 5A: compressed numeric, padded at the end with F nibbles."""
    digits = _nibbles(value).rstrip("F")
    if not digits.isdigit() or not 8 <= len(digits) <= 19:
        return Malformed(f"PAN {_nibbles(value)} is not 8-19 BCD digits with F padding", value)
    return digits


def encode_pan(pan: str) -> bytes:
    if not pan.isascii() or not pan.isdigit():
        raise ValueError("PAN must be digits")
    return bytes.fromhex(pan + "F" * (len(pan) % 2))


def _emv_year(yy: int) -> int:
    # EMV Book 4 section 6.7.3: YY 00-49 is 2000-2049, 50-99 is 1950-1999.
    return 2000 + yy if yy < 50 else 1900 + yy


def decode_date(value: bytes) -> date | Malformed:
    """Tags 5F24/5F25: n6 YYMMDD."""
    text = _nibbles(value)
    if len(value) != 3 or not text.isdigit():
        return Malformed(f"date {text} is not YYMMDD", value)
    try:
        return date(_emv_year(int(text[:2])), int(text[2:4]), int(text[4:]))
    except ValueError:
        return Malformed(f"date {text} is not a calendar date", value)


def encode_date(day: date) -> bytes:
    return bytes.fromhex(day.strftime("%y%m%d"))


def decode_name(value: bytes) -> str | Malformed:
    """Tag 5F20: ans 2-26, trailing spaces are padding."""
    if not 2 <= len(value) <= 26 or any(not 0x20 <= b <= 0x7E for b in value):
        return Malformed("cardholder name is not 2-26 printable ASCII characters", value)
    return value.decode("ascii").rstrip()


@dataclass(frozen=True)
class Track2Equivalent:
    """Tag 57: the magnetic track 2 layout in BCD, 'D' as the field separator."""

    pan: str
    expiry: str  # YYMM
    service_code: str
    discretionary: str


def decode_track2_equivalent(value: bytes) -> Track2Equivalent | Malformed:
    text = _nibbles(value)
    if text.endswith("F"):
        text = text[:-1]  # one pad nibble to whole bytes
    pan, separator, rest = text.partition("D")
    if not separator:
        return Malformed("track 2 equivalent has no 'D' separator", value)
    if not pan.isdigit() or not 8 <= len(pan) <= 19:
        return Malformed(f"track 2 equivalent PAN {pan} is not 8-19 digits", value)
    if len(rest) < 7 or not rest.isdigit():
        return Malformed("track 2 equivalent lacks YYMM and service code digits", value)
    if not 1 <= int(rest[2:4]) <= 12:
        return Malformed(f"track 2 equivalent expiry {rest[:4]} has month {rest[2:4]}", value)
    return Track2Equivalent(pan, rest[:4], rest[4:7], rest[7:])


def encode_track2_equivalent(track: Track2Equivalent) -> bytes:
    text = f"{track.pan}D{track.expiry}{track.service_code}{track.discretionary}"
    if not text.replace("D", "", 1).isdigit():
        raise ValueError("track 2 equivalent fields must be digits")
    return bytes.fromhex(text + "F" * (len(text) % 2))


@dataclass(frozen=True)
class AflEntry:
    """One 4-byte Application File Locator entry: read records first..last of file sfi."""

    sfi: int
    first: int
    last: int
    offline_auth_records: int


def decode_afl(value: bytes) -> tuple[AflEntry, ...] | Malformed:
    """Tag 94 (EMV Book 3 section 10.2)."""
    if not value or len(value) % 4:
        return Malformed(f"AFL of {len(value)} bytes is not a non-empty multiple of 4", value)
    entries = []
    for at in range(0, len(value), 4):
        sfi_byte, first, last, oda = value[at : at + 4]
        sfi = sfi_byte >> 3
        if sfi_byte & 0x07 or not 1 <= sfi <= 30:
            return Malformed(f"AFL entry {at // 4}: SFI byte {sfi_byte:02X} invalid", value)
        if first == 0 or last < first:
            return Malformed(f"AFL entry {at // 4}: records {first}..{last} invalid", value)
        if oda > last - first + 1:
            return Malformed(
                f"AFL entry {at // 4}: {oda} offline records of {first}..{last}", value
            )
        entries.append(AflEntry(sfi, first, last, oda))
    return tuple(entries)


def encode_afl(entries: Iterable[AflEntry]) -> bytes:
    return b"".join(bytes([e.sfi << 3, e.first, e.last, e.offline_auth_records]) for e in entries)


@dataclass(frozen=True)
class GpoResponse:
    aip: bytes
    afl: tuple[AflEntry, ...]


def decode_gpo_response(data: bytes) -> GpoResponse | Malformed:
    """GET PROCESSING OPTIONS data: format 1 (tag 80: AIP + AFL) or format 2 (tag 77)."""
    tlvs = parse(data)
    if isinstance(tlvs, Malformed):
        return tlvs
    if len(tlvs) != 1 or tlvs[0].tag not in (TAG_RESPONSE_FORMAT_1, TAG_RESPONSE_FORMAT_2):
        return Malformed("GPO response is not one tag 80 or tag 77 object", data)
    if tlvs[0].tag == TAG_RESPONSE_FORMAT_1:
        aip, afl_bytes = tlvs[0].value[:2], tlvs[0].value[2:]
    else:
        aip_tlv, afl_tlv = tlvs[0].find(TAG_AIP), tlvs[0].find(TAG_AFL)
        if aip_tlv is None or afl_tlv is None:
            return Malformed("GPO format 2 response lacks AIP (82) or AFL (94)", data)
        aip, afl_bytes = aip_tlv.value, afl_tlv.value
    if len(aip) != 2:
        return Malformed(f"AIP of {len(aip)} bytes, expected 2", data)
    afl = decode_afl(afl_bytes)
    if isinstance(afl, Malformed):
        return afl
    return GpoResponse(aip, afl)


@dataclass(frozen=True)
class CardFacts:
    """What the terminal shows or sends from the read records; None where the card had none."""

    pan: str | None
    expiry: date | None
    cardholder_name: str | None
    track2: Track2Equivalent | None


def _optional(
    tlvs: tuple[Tlv, ...], tag: int, decoder: Callable[[bytes], _T | Malformed]
) -> _T | None | Malformed:
    tlv = find(tlvs, tag)
    return None if tlv is None else decoder(tlv.value)


def card_facts(tlvs: Iterable[Tlv]) -> CardFacts | Malformed:
    """Collect PAN, expiry, name and track 2 equivalent; PAN falls back to track 2's."""
    found = tuple(tlvs)
    track2 = _optional(found, TAG_TRACK2_EQUIVALENT, decode_track2_equivalent)
    if isinstance(track2, Malformed):
        return track2
    pan = _optional(found, TAG_PAN, decode_pan)
    if isinstance(pan, Malformed):
        return pan
    expiry = _optional(found, TAG_EXPIRY, decode_date)
    if isinstance(expiry, Malformed):
        return expiry
    name = _optional(found, TAG_CARDHOLDER_NAME, decode_name)
    if isinstance(name, Malformed):
        return name
    if pan is None and track2 is not None:
        pan = track2.pan
    return CardFacts(pan, expiry, name, track2)
