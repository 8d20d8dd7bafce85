"""The RFC 8010 codec: the RFC's own example byte for byte, round trips, bad frames named."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from branchline.drivers.cheque_printer import ipp_codec as c
from branchline.drivers.cheque_printer.ipp_codec import Attribute, IppMessage
from branchline.drivers.malformed import Malformed


def attr(tag: int, name: str, value: bytes) -> bytes:
    return (
        struct.pack(">BH", tag, len(name)) + name.encode() + struct.pack(">H", len(value)) + value
    )


# RFC 8010 section 10.1, "Print-Job Request", octet by octet as the RFC lists them.
RFC8010_PRINT_JOB = (
    b"\x01\x01"  # version-number 1.1
    b"\x00\x02"  # operation-id Print-Job
    b"\x00\x00\x00\x01"  # request-id 1
    b"\x01"  # operation-attributes-tag
    + attr(0x47, "attributes-charset", b"utf-8")
    + attr(0x48, "attributes-natural-language", b"en-us")
    + attr(0x45, "printer-uri", b"ipp://printer.example.com/ipp/print/pinetree")
    + attr(0x42, "job-name", b"foobar")
    + attr(0x22, "ipp-attribute-fidelity", b"\x01")
    + b"\x02"  # job-attributes-tag
    + attr(0x21, "copies", b"\x00\x00\x00\x14")
    + attr(0x44, "sides", b"two-sided-long-edge")
    + b"\x03"  # end-of-attributes-tag
    + b"%!PS..."
)


def rfc_print_job() -> IppMessage:
    message = IppMessage(code=0x0002, request_id=1)
    op = message.add_group(c.OPERATION_GROUP)
    op["attributes-charset"] = Attribute(c.CHARSET, ["utf-8"])
    op["attributes-natural-language"] = Attribute(c.NATURAL_LANGUAGE, ["en-us"])
    op["printer-uri"] = Attribute(c.URI, ["ipp://printer.example.com/ipp/print/pinetree"])
    op["job-name"] = Attribute(c.NAME, ["foobar"])
    op["ipp-attribute-fidelity"] = Attribute(c.BOOLEAN, [True])
    job = message.add_group(c.JOB_GROUP)
    job["copies"] = Attribute(c.INTEGER, [20])
    job["sides"] = Attribute(c.KEYWORD, ["two-sided-long-edge"])
    message.data = b"%!PS..."
    return message


def test_rfc8010_print_job_example_encodes_byte_for_byte() -> None:
    # The RFC's length fields, checked against the listing itself.
    # The length fields exactly as the RFC's listing gives them (not computed by a helper).
    lengths = [
        (b"\x47\x00\x12attributes-charset\x00\x05utf-8"),
        (b"\x48\x00\x1battributes-natural-language\x00\x05en-us"),
        (b"\x45\x00\x0bprinter-uri\x00\x2cipp://printer.example.com/ipp/print/pinetree"),
        (b"\x42\x00\x08job-name\x00\x06foobar"),
        (b"\x22\x00\x16ipp-attribute-fidelity\x00\x01\x01"),
        (b"\x02\x21\x00\x06copies\x00\x04\x00\x00\x00\x14"),
        (b"\x44\x00\x05sides\x00\x13two-sided-long-edge\x03%!PS..."),
    ]
    assert RFC8010_PRINT_JOB == b"\x01\x01\x00\x02\x00\x00\x00\x01\x01" + b"".join(lengths)
    assert c.encode(rfc_print_job()) == RFC8010_PRINT_JOB


def decoded(data: bytes) -> IppMessage:
    message = c.decode(data)
    assert isinstance(message, IppMessage), message
    return message


def test_rfc8010_print_job_example_decodes() -> None:
    message = decoded(RFC8010_PRINT_JOB)
    assert (message.version, message.code, message.request_id) == ((1, 1), 2, 1)
    assert c.attributes(message, c.OPERATION_GROUP) == {
        "attributes-charset": "utf-8",
        "attributes-natural-language": "en-us",
        "printer-uri": "ipp://printer.example.com/ipp/print/pinetree",
        "job-name": "foobar",
        "ipp-attribute-fidelity": True,
    }
    assert c.attributes(message, c.JOB_GROUP) == {"copies": 20, "sides": "two-sided-long-edge"}
    assert message.data == b"%!PS..."
    assert c.encode(message) == RFC8010_PRINT_JOB


def test_sets_collections_and_out_of_band_values_round_trip() -> None:
    message = IppMessage(code=0x0000, request_id=7, version=(2, 0))
    printer = message.add_group(c.PRINTER_GROUP)
    printer["printer-state-reasons"] = Attribute(c.KEYWORD, ["media-jam", "cover-open"])
    printer["operations-supported"] = Attribute(c.ENUM, [2, 4, 0x4001])
    printer["printer-resolution-default"] = Attribute(c.RESOLUTION, [(300, 300, 3)])
    printer["copies-supported"] = Attribute(c.RANGE_OF_INTEGER, [(1, 99)])
    printer["printer-info"] = Attribute(c.TEXT_WITH_LANGUAGE, [("zh-cn", "支票打印机")])
    printer["branchline-feeder-ocr-serial"] = Attribute(c.NO_VALUE, [None])
    media = {
        "media-size": Attribute(
            c.BEGIN_COLLECTION,
            [
                {
                    "x-dimension": Attribute(c.INTEGER, [17600]),
                    "y-dimension": Attribute(c.INTEGER, [8000]),
                }
            ],
        ),
        "media-type": Attribute(c.KEYWORD, ["stationery"]),
    }
    printer["media-col-default"] = Attribute(c.BEGIN_COLLECTION, [media, media])
    raw = c.encode(message)
    again = decoded(raw)
    assert again.groups == message.groups
    assert c.encode(again) == raw


@pytest.mark.parametrize(
    ("frame", "offset", "words"),
    [
        (b"\x01", 1, "truncated version-number"),
        (b"\x09\x01\x00\x02\x00\x00\x00\x01\x03", 0, "version-number 9.1"),
        (b"\x01\x01\x00\x02\x00\x00\x00\x01", 8, "no end-of-attributes-tag"),
        (
            b"\x01\x01\x00\x02\x00\x00\x00\x01" + attr(0x44, "sides", b"x") + b"\x03",
            8,
            "before any attribute group",
        ),
        (
            b"\x01\x01\x00\x02\x00\x00\x00\x01\x01" + attr(0x21, "copies", b"\x00\x01") + b"\x03",
            9,
            "'copies': value of tag 0x21 needs 4 bytes, got 2",
        ),
        (
            b"\x01\x01\x00\x02\x00\x00\x00\x01\x01" + attr(0x22, "fidelity", b"\x07") + b"\x03",
            9,
            "boolean value 7",
        ),
        (b"\x01\x01\x00\x02\x00\x00\x00\x01\x01\x44\x00\x05sid", 12, "truncated name"),
        (
            b"\x01\x01\x00\x02\x00\x00\x00\x01\x01\x44\x00\x05sides\x00\x09two",
            19,
            "truncated value of 'sides'",
        ),
        (
            b"\x01\x01\x00\x02\x00\x00\x00\x01\x01" + attr(0x44, "", b"x") + b"\x03",
            9,
            "additional value with no attribute",
        ),
        (
            b"\x01\x01\x00\x02\x00\x00\x00\x01\x01" + attr(0x37, "", b"") + b"\x03",
            9,
            "outside a collection",
        ),
        (b"\x01\x01\x00\x02\x00\x00\x00\x01\x0f\x03", 8, "unknown delimiter tag 0x0f"),
        (
            b"\x01\x01\x00\x02\x00\x00\x00\x01\x01"
            + attr(0x41, "status-message", b"\xff\xfe")
            + b"\x03",
            9,
            "'status-message': value is not UTF-8",
        ),
    ],
)
def test_bad_frames_are_named(frame: bytes, offset: int, words: str) -> None:
    result = c.decode(frame)
    assert isinstance(result, Malformed)
    assert result.raw == frame
    assert result.reason.startswith(f"IPP frame at byte {offset}: ")
    assert words in result.reason


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_come_back_malformed_with_a_reason(data: bytes) -> None:
    result = c.decode(data)  # never raises
    if isinstance(result, Malformed):
        assert result.reason.startswith("IPP frame at byte ")
    else:
        assert result.version[0] in (1, 2)


def test_every_truncation_of_a_real_message_is_malformed() -> None:
    attributes_only = RFC8010_PRINT_JOB[: RFC8010_PRINT_JOB.index(b"%!PS")]
    for end in range(len(attributes_only)):
        assert isinstance(c.decode(attributes_only[:end]), Malformed), end
