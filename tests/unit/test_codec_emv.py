"""EMV BER-TLV (EMV Book 3 Annex B) and ISO/IEC 7816-4 APDUs.

The records below are laid out like a Visa test card's (PAN 4761739001010010), built by hand
byte by byte; the comments give each object's tag, length and value.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from branchline.drivers.card_reader import apdu, emv_tlv
from branchline.drivers.card_reader.emv_tlv import AflEntry, Tlv, Track2Equivalent
from branchline.drivers.malformed import Malformed

# READ RECORD response, SFI 1 record 1: template 70 (59 = 0x3B bytes) with
#   57   13  4761739001010010 D 2212 201 1143804400000 F   (track 2 equivalent, 19 bytes)
#   5F20 0F  "CARDHOLDER/VISA"
#   5A   08  4761739001010010
#   5F24 03  221231                                         (expiry 2022-12-31)
#   5F34 01  01                                             (PAN sequence number)
RECORD = bytes.fromhex(
    "70 3B"
    "57 13 4761739001010010 D2212201 1143804400000F"
    "5F20 0F 43415244484F4C4445522F56495341"
    "5A 08 4761739001010010"
    "5F24 03 221231"
    "5F34 01 01"
)

# FCI of the PSE: 6F { 84 "1PAY.SYS.DDF01", A5 { 88 01 01, 5F2D 02 "en" } }
PSE_FCI = bytes.fromhex("6F 1A 84 0E 315041592E5359532E4444463031 A5 08 88 01 01 5F2D 02 656E")

# GPO response format 1: AIP 7C00, AFL (SFI 1 rec 1..1), (SFI 2 rec 1..4), (SFI 3 rec 1..2, 1 ODA)
GPO_FORMAT_1 = bytes.fromhex("80 0E 7C00 08010100 10010400 18010201")


def test_record_parses_into_a_template() -> None:
    tlvs = emv_tlv.parse(RECORD)
    assert not isinstance(tlvs, Malformed)
    [record] = tlvs
    assert record.tag == emv_tlv.TAG_RECORD and record.constructed
    assert [c.tag for c in record.children] == [0x57, 0x5F20, 0x5A, 0x5F24, 0x5F34]
    assert emv_tlv.encode_all(tlvs) == RECORD


def test_card_facts_from_the_record() -> None:
    tlvs = emv_tlv.parse(RECORD)
    assert not isinstance(tlvs, Malformed)
    facts = emv_tlv.card_facts(tlvs)
    assert facts == emv_tlv.CardFacts(
        pan="4761739001010010",
        expiry=date(2022, 12, 31),
        cardholder_name="CARDHOLDER/VISA",
        track2=Track2Equivalent("4761739001010010", "2212", "201", "1143804400000"),
    )


def test_card_facts_fall_back_to_track2_pan() -> None:
    track2 = emv_tlv.primitive(0x57, bytes.fromhex("4761739001010010D2212201"))
    facts = emv_tlv.card_facts([emv_tlv.constructed(0x70, track2)])
    assert not isinstance(facts, Malformed)
    assert facts.pan == "4761739001010010" and facts.expiry is None


def test_nested_templates_and_find() -> None:
    tlvs = emv_tlv.parse(PSE_FCI)
    assert not isinstance(tlvs, Malformed)
    sfi = emv_tlv.find(tlvs, emv_tlv.TAG_SFI)
    assert sfi is not None and sfi.value == b"\x01"
    name = emv_tlv.find(tlvs, emv_tlv.TAG_DF_NAME)
    assert name is not None and name.value == apdu.PSE
    assert emv_tlv.find(tlvs, 0x9F38) is None


def test_gpo_format_1_and_2() -> None:
    expected = emv_tlv.GpoResponse(
        bytes.fromhex("7C00"),
        (AflEntry(1, 1, 1, 0), AflEntry(2, 1, 4, 0), AflEntry(3, 1, 2, 1)),
    )
    assert emv_tlv.decode_gpo_response(GPO_FORMAT_1) == expected
    format2 = emv_tlv.constructed(
        0x77,
        emv_tlv.primitive(0x82, bytes.fromhex("7C00")),
        emv_tlv.primitive(0x94, emv_tlv.encode_afl(expected.afl)),
    ).encode()
    assert format2[:2] == bytes([0x77, 0x12])
    assert emv_tlv.decode_gpo_response(format2) == expected


def test_long_form_lengths_and_multi_byte_tags() -> None:
    value = bytes(range(200))
    encoded = emv_tlv.encode(0x9F38, value)
    assert encoded[:4] == bytes([0x9F, 0x38, 0x81, 200])
    assert emv_tlv.parse(encoded) == (Tlv(0x9F38, value),)
    big = emv_tlv.encode(0xDF8101, b"\xaa" * 300)  # three-byte tag, two length bytes
    assert big[:6] == bytes([0xDF, 0x81, 0x01, 0x82, 0x01, 0x2C])
    assert emv_tlv.parse(big) == (Tlv(0xDF8101, b"\xaa" * 300),)


def test_padding_between_objects_is_skipped() -> None:
    assert emv_tlv.parse(bytes.fromhex("00 5A 02 1234 00 00 FF 50 01 41 00")) == (
        Tlv(0x5A, b"\x12\x34"),
        Tlv(0x50, b"A"),
    )


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("5A 08 4761", "bad length: tag 5A claims 8 bytes, 2 remain"),
        ("9F", "tag truncated"),
        ("9F 38", "has no length"),
        ("9F 81 81 81 01 00", "tag longer than 3 bytes"),
        ("5A 80", "indefinite length"),
        ("5A 84 00 00 00 01 00", "length field of 4 bytes too long"),
        ("5A 82 01", "length field of tag 5A truncated"),
        ("70 04 5A 05 12 34", "at offset 3: bad length"),  # offset of 5A's length byte
    ],
)
def test_malformed_tlv_names_the_problem(raw: str, fragment: str) -> None:
    result = emv_tlv.parse(bytes.fromhex(raw))
    assert isinstance(result, Malformed)
    assert fragment in result.reason
    assert result.raw == bytes.fromhex(raw)


def test_nesting_is_capped() -> None:
    deep = b""
    for _ in range(emv_tlv.MAX_DEPTH + 2):
        deep = emv_tlv.encode(0x70, deep)
    result = emv_tlv.parse(deep)
    assert isinstance(result, Malformed) and "nested deeper" in result.reason


def test_data_element_errors() -> None:
    assert isinstance(emv_tlv.decode_pan(bytes.fromhex("47617390010100AF")), Malformed)
    assert emv_tlv.decode_pan(bytes.fromhex("4761739001010010111F")) == "4761739001010010111"
    assert emv_tlv.decode_date(bytes.fromhex("491231")) == date(2049, 12, 31)
    assert emv_tlv.decode_date(bytes.fromhex("500101")) == date(1950, 1, 1)
    assert isinstance(emv_tlv.decode_date(bytes.fromhex("221331")), Malformed)
    assert isinstance(emv_tlv.decode_date(bytes.fromhex("2212")), Malformed)
    assert emv_tlv.decode_name(b"SMITH/JOHN    ") == "SMITH/JOHN"
    assert isinstance(emv_tlv.decode_name(b"\x00\x01"), Malformed)
    assert isinstance(
        emv_tlv.decode_track2_equivalent(bytes.fromhex("4761739001010010")), Malformed
    )
    assert isinstance(emv_tlv.decode_afl(bytes.fromhex("080101")), Malformed)
    assert isinstance(emv_tlv.decode_afl(bytes.fromhex("08020100")), Malformed)  # last < first
    assert isinstance(emv_tlv.decode_afl(bytes.fromhex("09010100")), Malformed)  # low bits set
    assert isinstance(emv_tlv.decode_afl(bytes.fromhex("08010102")), Malformed)  # ODA > records
    bad_record = emv_tlv.parse(bytes.fromhex("70 03 5A 01 12"))
    assert not isinstance(bad_record, Malformed)
    assert isinstance(emv_tlv.card_facts(bad_record), Malformed)


def test_encoders_for_the_simulator() -> None:
    assert emv_tlv.encode_pan("4761739001010010") == bytes.fromhex("4761739001010010")
    assert emv_tlv.encode_pan("476173900101001") == bytes.fromhex("476173900101001F")
    assert emv_tlv.encode_date(date(2022, 12, 31)) == bytes.fromhex("221231")
    t2 = Track2Equivalent("4761739001010010", "2212", "201", "1143804400000")
    assert emv_tlv.encode_track2_equivalent(t2) == RECORD[4:23]
    with pytest.raises(ValueError):
        emv_tlv.primitive(0x70, b"")
    with pytest.raises(ValueError):
        emv_tlv.constructed(0x5A)


# --- properties ----------------------------------------------------------------------------

primitive_tags = st.sampled_from(
    [0x4F, 0x50, 0x57, 0x5A, 0x82, 0x94, 0x5F20, 0x5F24, 0x9F38, 0xDF8101]
)
constructed_tags = st.sampled_from([0x61, 0x6F, 0x70, 0x77, 0xA5, 0xBF0C])
tlv_trees = st.recursive(
    st.builds(emv_tlv.primitive, primitive_tags, st.binary(max_size=300)),
    lambda kids: st.builds(
        lambda tag, children: emv_tlv.constructed(tag, *children),
        constructed_tags,
        st.lists(kids, max_size=4),
    ),
    max_leaves=12,
)


@given(st.lists(tlv_trees, max_size=4))
def test_tlv_round_trips(tlvs: list[Tlv]) -> None:
    assert emv_tlv.parse(emv_tlv.encode_all(tlvs)) == tuple(tlvs)


@given(st.binary(max_size=400))
def test_tlv_parser_never_raises(data: bytes) -> None:
    result = emv_tlv.parse(data)
    if isinstance(result, Malformed):
        assert result.raw == data and result.reason
    else:
        # Whatever parsed must re-encode to the same bytes minus padding and long forms.
        assert all(isinstance(t, Tlv) for t in emv_tlv.walk(result))
    for decoder in (
        emv_tlv.decode_pan,
        emv_tlv.decode_date,
        emv_tlv.decode_name,
        emv_tlv.decode_track2_equivalent,
        emv_tlv.decode_afl,
        emv_tlv.decode_gpo_response,
    ):
        decoder(data)


@given(st.text("0123456789", min_size=8, max_size=19))
def test_pan_round_trips(pan: str) -> None:
    assert emv_tlv.decode_pan(emv_tlv.encode_pan(pan)) == pan


# --- APDUs ---------------------------------------------------------------------------------


def test_select_pse() -> None:
    command = apdu.select_by_name(apdu.PSE)
    assert command.encode() == bytes.fromhex("00 A4 04 00 0E 315041592E5359532E4444463031 00")
    assert apdu.select_by_name(apdu.PSE, next_occurrence=True).p2 == 0x02


def test_get_processing_options_without_pdol() -> None:
    assert apdu.get_processing_options().encode() == bytes.fromhex("80 A8 00 00 02 83 00 00")
    with_pdol = apdu.get_processing_options(bytes.fromhex("0000000010000826"))
    assert with_pdol.encode() == bytes.fromhex("80 A8 00 00 0A 83 08 0000000010000826 00")


def test_read_record() -> None:
    assert apdu.read_record(1, 1).encode() == bytes.fromhex("00 B2 01 0C 00")
    assert apdu.read_record(3, 2).encode() == bytes.fromhex("00 B2 03 14 00")
    with pytest.raises(ValueError):
        apdu.read_record(0, 1)
    with pytest.raises(ValueError):
        apdu.read_record(1, 31)


def test_status_words() -> None:
    ok = apdu.parse_response(bytes.fromhex("9000"))
    assert (
        isinstance(ok, apdu.ResponseApdu) and ok.ok and ok.data == b"" and ok.meaning == "success"
    )
    assert apdu.status_meaning(0x6A, 0x82) == "file or application not found"
    assert apdu.status_meaning(0x61, 0x1C) == "success, 28 more bytes available (GET RESPONSE)"
    assert apdu.status_meaning(0x6C, 0x00) == "wrong Le, resend with Le 256"
    assert apdu.status_meaning(0x63, 0xC2) == "verification failed, 2 tries left"
    assert apdu.status_meaning(0x69, 0x99) == "error 6999"


def test_follow_up_for_t0() -> None:
    command = apdu.read_record(1, 1)
    more = apdu.ResponseApdu(b"", 0x61, 0x1C)
    assert apdu.follow_up(command, more) == apdu.CommandApdu(0x00, 0xC0, 0x00, 0x00, le=0x1C)
    wrong_le = apdu.ResponseApdu(b"", 0x6C, 0x2A)
    retry = apdu.follow_up(command, wrong_le)
    assert retry is not None and retry.encode() == bytes.fromhex("00 B2 01 0C 2A")
    assert apdu.follow_up(command, apdu.ResponseApdu(RECORD, 0x90, 0x00)) is None


def test_command_apdu_cases_parse() -> None:
    assert apdu.parse_command(bytes.fromhex("00 B2 01 0C 00")) == apdu.read_record(1, 1)
    assert apdu.parse_command(bytes.fromhex("80 A8 00 00 02 83 00 00")) == (
        apdu.get_processing_options()
    )
    assert apdu.parse_command(bytes.fromhex("00 A4 04 00 02 3F 00")) == apdu.CommandApdu(
        0, 0xA4, 4, 0, b"\x3f\x00"
    )
    assert apdu.parse_command(bytes.fromhex("00 84 00 00")) == apdu.CommandApdu(0, 0x84, 0, 0)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("00 A4 04", "shorter than the 4-byte header"),
        ("00 A4 04 00 05 3F 00", "Lc 5 but 2 bytes follow"),
        ("00 A4 04 00 00 00 02 3F 00", "extended-length"),
    ],
)
def test_malformed_command_apdu(raw: str, fragment: str) -> None:
    result = apdu.parse_command(bytes.fromhex(raw))
    assert isinstance(result, Malformed) and fragment in result.reason


def test_short_response_is_malformed() -> None:
    assert isinstance(apdu.parse_response(b"\x90"), Malformed)


command_apdus = st.builds(
    apdu.CommandApdu,
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=255),
    st.one_of(st.none(), st.integers(1, 256)),
)


@given(command_apdus)
def test_command_apdus_round_trip(command: apdu.CommandApdu) -> None:
    assert apdu.parse_command(command.encode()) == command


@given(st.binary(max_size=300))
def test_apdu_parsers_never_raise(data: bytes) -> None:
    command = apdu.parse_command(data)
    if not isinstance(command, Malformed):
        assert command.encode() == data
    response = apdu.parse_response(data)
    if not isinstance(response, Malformed):
        assert response.encode() == data
