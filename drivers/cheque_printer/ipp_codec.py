"""IPP/1.1 message encoding (RFC 8010 section 3), shared by the driver and the simulator.

A message is a version, an operation-id (request) or status-code (response), a request-id,
attribute groups and trailing document data. Values keep their value tag so that a message
decodes and re-encodes byte for byte. Collections (RFC 8010 section 3.1.6) decode to a dict
of member name -> Attribute. Like every driver decoder, ``decode`` returns a ``Malformed``
(drivers/malformed.py) for bad input rather than raising; its reason names the byte offset and
what was wrong there (``IPP frame at byte 4: truncated request-id: ...``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from branchline.drivers.malformed import Malformed

# Delimiter tags (RFC 8010 section 3.5.1).
OPERATION_GROUP = 0x01
JOB_GROUP = 0x02
END_OF_ATTRIBUTES = 0x03
PRINTER_GROUP = 0x04
UNSUPPORTED_GROUP = 0x05
GROUP_TAGS = {OPERATION_GROUP, JOB_GROUP, PRINTER_GROUP, UNSUPPORTED_GROUP}

# Value tags (RFC 8010 section 3.5.2).
UNSUPPORTED = 0x10
UNKNOWN = 0x12
NO_VALUE = 0x13
INTEGER = 0x21
BOOLEAN = 0x22
ENUM = 0x23
OCTET_STRING = 0x30
DATE_TIME = 0x31
RESOLUTION = 0x32
RANGE_OF_INTEGER = 0x33
BEGIN_COLLECTION = 0x34
TEXT_WITH_LANGUAGE = 0x35
NAME_WITH_LANGUAGE = 0x36
END_COLLECTION = 0x37
TEXT = 0x41
NAME = 0x42
KEYWORD = 0x44
URI = 0x45
URI_SCHEME = 0x46
CHARSET = 0x47
NATURAL_LANGUAGE = 0x48
MIME_MEDIA_TYPE = 0x49
MEMBER_ATTR_NAME = 0x4A

STRING_TAGS = {
    TEXT,
    NAME,
    KEYWORD,
    URI,
    URI_SCHEME,
    CHARSET,
    NATURAL_LANGUAGE,
    MIME_MEDIA_TYPE,
    MEMBER_ATTR_NAME,
}
OUT_OF_BAND = {UNSUPPORTED, UNKNOWN, NO_VALUE}
MAX_NESTING = 8


class IppFrameError(ValueError):
    """Raised inside the decoder; ``decode`` turns it into a Malformed."""

    def __init__(self, offset: int, what: str) -> None:
        super().__init__(f"IPP frame at byte {offset}: {what}")
        self.offset = offset
        self.what = what


@dataclass
class Attribute:
    tag: int
    values: list[Any]

    @property
    def value(self) -> Any:
        return self.values[0] if self.values else None


@dataclass
class IppMessage:
    code: int  # operation-id in a request, status-code in a response
    request_id: int
    groups: list[tuple[int, dict[str, Attribute]]] = field(default_factory=list)
    data: bytes = b""
    version: tuple[int, int] = (1, 1)

    def group(self, tag: int) -> dict[str, Attribute]:
        """The first group with this tag; an empty dict when there is none."""
        for group_tag, attributes in self.groups:
            if group_tag == tag:
                return attributes
        return {}

    def all_groups(self, tag: int) -> list[dict[str, Attribute]]:
        return [attributes for group_tag, attributes in self.groups if group_tag == tag]

    def add_group(self, tag: int) -> dict[str, Attribute]:
        attributes: dict[str, Attribute] = {}
        self.groups.append((tag, attributes))
        return attributes


# -- encoding -------------------------------------------------------------------------------


def _encode_value(tag: int, value: Any) -> bytes:
    if tag in OUT_OF_BAND:
        return b""
    if tag in (INTEGER, ENUM):
        return struct.pack(">i", value)
    if tag == BOOLEAN:
        return b"\x01" if value else b"\x00"
    if tag == RANGE_OF_INTEGER:
        return struct.pack(">ii", *value)
    if tag == RESOLUTION:
        return struct.pack(">iib", *value)
    if tag in (TEXT_WITH_LANGUAGE, NAME_WITH_LANGUAGE):
        language, text = (part.encode("utf-8") for part in value)
        return struct.pack(">H", len(language)) + language + struct.pack(">H", len(text)) + text
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _encode_one(tag: int, name: str, value: Any) -> bytes:
    raw_name = name.encode("utf-8")
    if tag == BEGIN_COLLECTION:
        out = bytearray(struct.pack(">BH", tag, len(raw_name)) + raw_name + b"\x00\x00")
        for member, attribute in value.items():
            raw_member = member.encode("utf-8")
            out += struct.pack(">BHH", MEMBER_ATTR_NAME, 0, len(raw_member)) + raw_member
            # The member's values follow with empty names (the first one and any others).
            for value_ in attribute.values:
                out += _encode_one(attribute.tag, "", value_)
        out += struct.pack(">BHH", END_COLLECTION, 0, 0)
        return bytes(out)
    body = _encode_value(tag, value)
    return struct.pack(">BH", tag, len(raw_name)) + raw_name + struct.pack(">H", len(body)) + body


def encode(message: IppMessage) -> bytes:
    out = bytearray(struct.pack(">BBhi", *message.version, message.code, message.request_id))
    for group_tag, attributes in message.groups:
        out.append(group_tag)
        for name, attribute in attributes.items():
            values = attribute.values or [None]
            for index, value in enumerate(values):
                out += _encode_one(attribute.tag, name if index == 0 else "", value)
    out.append(END_OF_ATTRIBUTES)
    out += message.data
    return bytes(out)


# -- decoding -------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int, what: str) -> bytes:
        if self.pos + count > len(self.data):
            raise IppFrameError(
                self.pos,
                f"truncated {what}: need {count} bytes, {len(self.data) - self.pos} left",
            )
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int(struct.unpack(">H", self.take(2, what))[0])


def _decode_value(tag: int, raw: bytes, offset: int, name: str) -> Any:
    def need(size: int) -> None:
        if len(raw) != size:
            raise IppFrameError(
                offset,
                f"attribute {name!r}: value of tag 0x{tag:02x} needs {size} bytes, got {len(raw)}",
            )

    if tag in OUT_OF_BAND:
        return None
    if tag in (INTEGER, ENUM):
        need(4)
        return struct.unpack(">i", raw)[0]
    if tag == BOOLEAN:
        need(1)
        if raw[0] > 1:
            raise IppFrameError(offset, f"attribute {name!r}: boolean value {raw[0]} is not 0 or 1")
        return raw[0] == 1
    if tag == RANGE_OF_INTEGER:
        need(8)
        return struct.unpack(">ii", raw)
    if tag == RESOLUTION:
        need(9)
        return struct.unpack(">iib", raw)
    if tag == DATE_TIME:
        need(11)
        return raw
    if tag in (TEXT_WITH_LANGUAGE, NAME_WITH_LANGUAGE):
        inner = _Reader(raw)
        language = inner.take(inner.u16("language length"), "language").decode("utf-8", "replace")
        text = inner.take(inner.u16("text length"), "text").decode("utf-8", "replace")
        return (language, text)
    if tag in STRING_TAGS or 0x40 <= tag <= 0x5F:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise IppFrameError(offset, f"attribute {name!r}: value is not UTF-8") from None
    return raw  # octetString and tags this codec does not interpret


def _read_collection(reader: _Reader, depth: int) -> dict[str, Attribute]:
    if depth > MAX_NESTING:
        raise IppFrameError(reader.pos, f"collections nested deeper than {MAX_NESTING}")
    members: dict[str, Attribute] = {}
    current = ""
    while True:
        start = reader.pos
        tag = reader.u8("member tag")
        reader.take(reader.u16("member name length"), "member name")
        length = reader.u16("member value length")
        if tag == END_COLLECTION:
            reader.take(length, "end-collection value")
            return members
        if tag != MEMBER_ATTR_NAME:
            # A value following a member name (the name's value).
            raise IppFrameError(start, f"expected memberAttrName (0x4a), got tag 0x{tag:02x}")
        current = reader.take(length, "member name").decode("utf-8", "replace")
        value_start = reader.pos
        value_tag = reader.u8("member value tag")
        if value_tag in GROUP_TAGS or value_tag == END_OF_ATTRIBUTES:
            raise IppFrameError(value_start, f"collection member {current!r} has no value")
        reader.take(reader.u16("member value name length"), "member value name")
        if value_tag == BEGIN_COLLECTION:
            reader.take(reader.u16("collection value length"), "collection value")
            value: Any = _read_collection(reader, depth + 1)
        else:
            raw = reader.take(reader.u16("member value length"), "member value")
            value = _decode_value(value_tag, raw, value_start, current)
        if current in members:
            members[current].values.append(value)
        else:
            members[current] = Attribute(value_tag, [value])
        # Additional values of a member come as value tags with an empty name.
        while reader.pos < len(reader.data):
            peek = reader.data[reader.pos]
            if peek in (MEMBER_ATTR_NAME, END_COLLECTION):
                break
            extra_start = reader.pos
            extra_tag = reader.u8("member value tag")
            reader.take(reader.u16("member value name length"), "member value name")
            if extra_tag == BEGIN_COLLECTION:
                reader.take(reader.u16("collection value length"), "collection value")
                members[current].values.append(_read_collection(reader, depth + 1))
            else:
                raw = reader.take(reader.u16("member value length"), "member value")
                members[current].values.append(_decode_value(extra_tag, raw, extra_start, current))


def decode(data: bytes) -> IppMessage | Malformed[bytes]:
    """The message in ``data``, or Malformed naming where and why it is not one."""
    try:
        return _decode(data)
    except IppFrameError as exc:
        return Malformed(str(exc), data)


def _decode(data: bytes) -> IppMessage:
    reader = _Reader(data)
    major = reader.u8("version-number")
    minor = reader.u8("version-number")
    if major not in (1, 2):
        raise IppFrameError(0, f"version-number {major}.{minor} is not IPP 1.x or 2.x")
    code = reader.u16("operation-id or status-code")
    request_id = int(struct.unpack(">i", reader.take(4, "request-id"))[0])
    message = IppMessage(code=code, request_id=request_id, version=(major, minor))
    current: dict[str, Attribute] | None = None
    last: Attribute | None = None
    while True:
        start = reader.pos
        tag = reader.u8("tag (no end-of-attributes-tag)")
        if tag == END_OF_ATTRIBUTES:
            break
        if tag in GROUP_TAGS or tag < 0x10:
            if tag not in GROUP_TAGS:
                raise IppFrameError(start, f"unknown delimiter tag 0x{tag:02x}")
            current = message.add_group(tag)
            last = None
            continue
        if current is None:
            raise IppFrameError(start, f"value tag 0x{tag:02x} before any attribute group")
        name = reader.take(reader.u16("name-length"), "name").decode("utf-8", "replace")
        if tag == BEGIN_COLLECTION:
            reader.take(reader.u16("collection value length"), "collection value")
            value: Any = _read_collection(reader, 1)
        elif tag in (END_COLLECTION, MEMBER_ATTR_NAME):
            raise IppFrameError(start, f"tag 0x{tag:02x} outside a collection")
        else:
            shown = name or (last and "additional value") or "?"
            raw = reader.take(reader.u16("value-length"), f"value of {shown!r}")
            value = _decode_value(tag, raw, start, name)
        if name:
            last = Attribute(tag, [value])
            current[name] = last
        elif last is None:
            raise IppFrameError(start, "additional value with no attribute before it")
        else:
            last.values.append(value)
    message.data = data[reader.pos :]
    return message


def attributes(message: IppMessage, tag: int) -> dict[str, Any]:
    """A group flattened to name -> value (one value) or list (several)."""
    out: dict[str, Any] = {}
    for name, attribute in message.group(tag).items():
        out[name] = attribute.values if len(attribute.values) > 1 else attribute.value
    return out
