"""payShield framing, command layouts, error codes, the simulator's answers and the client's
handling of bad answers - all in process (the real-process test is in integration/)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from branchline.common.hsm.errors import (
    HsmInternalError,
    HsmProtocolError,
    HsmUnavailableError,
    InvalidAccountError,
    InvalidInputError,
    KeyNotFoundError,
    PinBlockInvalidError,
    UnsupportedOperationError,
    WrongKeyTypeError,
)
from branchline.common.hsm.payshield import messages as m
from branchline.common.hsm.payshield.errorcodes import code_for, error_for
from branchline.common.hsm.payshield.wire import (
    FieldError,
    Fields,
    frame,
    key_field,
    parse_message,
    response_code,
)
from branchline.server.hsm.payshield import PayShieldHsm
from branchline.sim.hsm.emulation import PayShieldEmulation
from tests.hsm_support import enroll_pin_for_testing
from tests.unit.hsm_fixtures import (
    A4_PAN,
    A4_PIN_BLOCK,
    AES_KSN,
    TDES_KSN,
    aes_block,
    build_keystore,
    tpk_block,
)


@pytest.mark.parametrize(
    ("command", "response"),
    [
        ("CA", "CB"),
        ("G0", "G1"),
        ("NC", "ND"),
        ("GQ", "GR"),
        ("GO", "GP"),
        ("FW", "FX"),
        ("BK", "BL"),
        ("A9", "ZZ"),
        ("c!", "ZZ"),
    ],
)
def test_response_codes(command: str, response: str) -> None:
    assert response_code(command) == response


def test_frame_is_length_prefixed() -> None:
    assert frame(b"0001NC") == b"\x00\x060001NC"
    with pytest.raises(ValueError):
        frame(bytes(70000))


def test_message_parsing_with_trailer() -> None:
    message = parse_message(b"HDR1NC\x19trailer", 4)
    assert (message.header, message.code, message.body, message.trailer) == (
        b"HDR1",
        "NC",
        "",
        "trailer",
    )
    assert message.encode() == b"HDR1NC\x19trailer"
    with pytest.raises(FieldError, match="no room"):
        parse_message(b"HDR1N", 4)
    with pytest.raises(FieldError, match="not ASCII") as info:
        parse_message(b"HDR1NC\xff", 4)
    assert info.value.error_code == "15"


REQUESTS: list[m.Request] = [
    m.TranslateTpkToZpk(key_field("tpk"), key_field("zpk"), bytes(range(8)), 1, 0, "4012345678909"),
    m.TranslateDukptToZpk(
        key_field("bdk"), key_field("zpk"), TDES_KSN, A4_PIN_BLOCK, 3, "4012345678909"
    ),
    m.TranslateDukptToZpk(
        key_field("bdk-aes"), key_field("zpk"), AES_KSN, bytes(16), 0, "4012345678909"
    ),
    m.VerifyPvvDukpt(
        key_field("bdk"), key_field("pvk"), TDES_KSN, A4_PIN_BLOCK, "4012345678909", 1, "1234"
    ),
    m.VerifyIbmDukpt(
        key_field("bdk-aes"),
        key_field("pvk"),
        AES_KSN,
        bytes(16),
        "4012345678909",
        "0123456789012345",
        "401234567890FFFF",
        "98765",
    ),
    m.GeneratePvv(
        m.KEY_TYPE_TPK, key_field("tpk"), key_field("pvk"), bytes(8), 0, "4012345678909", 6
    ),
    m.GenerateIbmOffset(
        m.KEY_TYPE_ZPK,
        key_field("zpk"),
        key_field("pvk"),
        bytes(8),
        3,
        4,
        "4012345678909",
        "0123456789012345",
        "401234567890FFFF",
    ),
    m.Diagnostics(),
]


def _unkey(value: str) -> str:
    return Fields(value).key("key")


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: r.CODE)
def test_requests_round_trip(request_: m.Request) -> None:
    decoded = type(request_).decode(Fields(request_.encode()))
    # Keys decode to their names; account-only PANs come back with a placeholder check digit.
    for name in ("tpk", "zpk", "bdk", "pvk", "pin_key"):
        if hasattr(request_, name):
            assert getattr(decoded, name) == _unkey(getattr(request_, name))
    if hasattr(request_, "pan"):
        pan = getattr(request_, "pan")  # noqa: B009 - not every request has one
        expected = pan if getattr(request_, "ksn", b"") == AES_KSN else pan[:-1][-12:] + "0"
        assert getattr(decoded, "pan") == expected  # noqa: B009
    for name in ("ksn", "pin_block", "pvki", "pvv", "offset", "out_format", "in_format"):
        if hasattr(request_, name):
            assert getattr(decoded, name) == getattr(request_, name)


def test_g0_layout_is_the_payshield_one() -> None:
    body = REQUESTS[1].encode()
    assert body == (
        "#03bdk#03zpk"
        + "A05FFFF9876543210E00001"
        + "1B9C1845EB993A7A"
        + "01"
        + "47"
        + "401234567890"
    )


@pytest.mark.parametrize(
    ("text", "ksn"),
    [
        ("A05FFFF9876543210E00001", "FFFF9876543210E00001"),
        ("6059876543210E00001", "FFFF9876543210E00001"),  # 6-5-5: 16 digits, F-padded
        ("808123456789012345600000001", "123456789012345600000001"),
    ],
)
def test_ksn_descriptors(text: str, ksn: str) -> None:
    assert m.decode_ksn(Fields(text)) == bytes.fromhex(ksn)


@pytest.mark.parametrize("text", ["FFF" + "0" * 40, "10100000000", "A05FFFF98765"])
def test_bad_ksn_descriptors(text: str) -> None:
    with pytest.raises(FieldError) as info:
        m.decode_ksn(Fields(text))
    assert info.value.error_code == "15"


def test_error_code_mapping_round_trips() -> None:
    for error in (
        InvalidInputError("x"),
        InvalidAccountError("x"),
        PinBlockInvalidError("x"),
        KeyNotFoundError("x"),
        WrongKeyTypeError("x"),
        UnsupportedOperationError("x"),
    ):
        assert type(error_for(code_for(error), "G0")) is type(error)
    assert isinstance(error_for("99", "G0"), HsmInternalError)
    message = str(error_for("11", "G0", ("BDK", "destination ZPK")))
    assert "destination ZPK" in message and "11" in message


# --- the simulator's answers, in process ---------------------------------------------------


@pytest.fixture
def emulation(tmp_path: Path) -> PayShieldEmulation:
    return PayShieldEmulation(build_keystore(tmp_path / "ks.json"), header_length=4)


def ask(emulation: PayShieldEmulation, payload: bytes) -> bytes:
    return emulation.handle(payload)


def test_header_and_trailer_are_echoed(emulation: PayShieldEmulation) -> None:
    reply = ask(emulation, b"ABCDNC\x19end")
    assert reply.startswith(b"ABCDND00") and reply.endswith(b"\x19end")
    assert len(reply) == 4 + 2 + 2 + 16 + 9 + 4


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        (b"", b"ZZ15"),
        (b"ABC", b"ABCZZ15"),
        (b"ABCDN\xffxx", b"ABCDZZ15"),
        (b"ABCDXX", b"ABCDXY68"),  # no such command here
        (b"ABCDNCextra", b"ABCDND15"),
        (b"ABCDG0#03bdk", b"ABCDG115"),  # ends early
        (b"ABCDG0U" + b"0" * 32, b"ABCDG126"),  # a real LMK cryptogram: key scheme refused
        (b"ABCDG0#03bad#03zpk" + REQUESTS[1].encode()[12:].encode(), b"ABCDG110"),
        (b"ABCDG0#03bdk#03bad" + REQUESTS[1].encode()[12:].encode(), b"ABCDG111"),
        (b"ABCDG0#03zpk#03bdk" + REQUESTS[1].encode()[12:].encode(), b"ABCDG128"),
        (b"ABCDG0" + REQUESTS[1].encode().replace("0147", "0547").encode(), b"ABCDG123"),
        (
            b"ABCDG0" + REQUESTS[1].encode().replace("401234567890", "40123456789X").encode(),
            b"ABCDG122",
        ),
    ],
)
def test_malformed_messages_get_payshield_errors(
    emulation: PayShieldEmulation, payload: bytes, answer: bytes
) -> None:
    assert ask(emulation, payload) == answer


def test_wrong_pin_block_and_verification_answers(emulation: PayShieldEmulation) -> None:
    pvv, _ = enroll_pin_for_testing(emulation.soft, "pvk", A4_PAN, "1234")
    good = m.VerifyPvvDukpt(
        key_field("bdk"), key_field("pvk"), TDES_KSN, A4_PIN_BLOCK, A4_PAN, pvv.pvki, pvv.pvv
    )
    assert ask(emulation, b"0001GQ" + good.encode().encode()) == b"0001GR00"
    bad = m.VerifyPvvDukpt(
        key_field("bdk"),
        key_field("pvk"),
        TDES_KSN,
        A4_PIN_BLOCK,
        A4_PAN,
        pvv.pvki,
        "0000" if pvv.pvv != "0000" else "1111",
    )
    assert ask(emulation, b"0001GQ" + bad.encode().encode()) == b"0001GR01"
    garbage = m.TranslateDukptToZpk(
        key_field("bdk"), key_field("zpk"), TDES_KSN, bytes(8), 0, A4_PAN
    )
    assert ask(emulation, b"0001G0" + garbage.encode().encode()) == b"0001G120"
    aes = m.TranslateDukptToZpk(
        key_field("bdk-aes"), key_field("zpk"), AES_KSN, aes_block("1234", A4_PAN), 0, A4_PAN
    )
    assert ask(emulation, b"0001G0" + aes.encode().encode()).startswith(b"0001G10004")
    ca = m.TranslateTpkToZpk(
        key_field("tpk"), key_field("zpk"), tpk_block("12345", A4_PAN), 0, 0, A4_PAN
    )
    assert ask(emulation, b"0001CA" + ca.encode().encode()).startswith(b"0001CB0005")


def test_unexpected_failure_answers_41(
    emulation: PayShieldEmulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(emulation.soft, "dukpt_to_zpk", boom)
    assert ask(emulation, b"0001G0" + REQUESTS[1].encode().encode()) == b"0001G141"
    assert ask(emulation, b"0001NC").startswith(b"0001ND00")  # still answering


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_never_raises(tmp_path_factory: pytest.TempPathFactory, payload: bytes) -> None:
    emulation = _shared_emulation(tmp_path_factory)
    reply = emulation.handle(payload)
    assert len(reply) >= min(len(payload), 4) + 4


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([r.CODE for r in REQUESTS]),
    st.text(alphabet="#0123456789ABCDEFbdkzpvF", max_size=120),
)
def test_field_garbage_gets_an_error_code(
    tmp_path_factory: pytest.TempPathFactory, code: str, body: str
) -> None:
    emulation = _shared_emulation(tmp_path_factory)
    reply = emulation.handle(b"0001" + code.encode() + body.encode())
    assert reply[:6] == b"0001" + response_code(code).encode()
    assert reply[6:8].decode().isdigit()


_EMULATIONS: dict[str, PayShieldEmulation] = {}


def _shared_emulation(factory: pytest.TempPathFactory) -> PayShieldEmulation:
    if "e" not in _EMULATIONS:
        _EMULATIONS["e"] = PayShieldEmulation(build_keystore(factory.mktemp("hsm") / "ks.json"))
    return _EMULATIONS["e"]


# --- the client against misbehaving peers ------------------------------------------------


@pytest.fixture
def fake_hsm() -> Iterator[Callable[[Callable[[bytes], bytes | None]], int]]:
    """Start a one-thread TCP peer answering each request payload with ``reply(payload)``
    (None hangs up); returns its port."""
    servers: list[socket.socket] = []

    def start(reply: Callable[[bytes], bytes | None]) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def serve() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    while True:
                        head = conn.recv(2)
                        if len(head) < 2:
                            break
                        payload = conn.recv(int.from_bytes(head, "big"))
                        answer = reply(payload)
                        if answer is None:
                            break
                        conn.sendall(frame(answer))

        threading.Thread(target=serve, daemon=True).start()
        return int(server.getsockname()[1])

    yield start
    for server in servers:
        server.close()


def test_client_rejects_a_foreign_header(fake_hsm: Callable[..., int]) -> None:
    port = fake_hsm(lambda p: b"9999ND00" + b"0" * 16 + b"FIRMWARE1")
    with pytest.raises(HsmProtocolError, match="another message header"):
        PayShieldHsm("127.0.0.1", port, timeout=2).diagnostics()


def test_client_rejects_a_wrong_response_code(fake_hsm: Callable[..., int]) -> None:
    port = fake_hsm(lambda p: p[:4] + b"XY00")
    with pytest.raises(HsmProtocolError, match="expected ND"):
        PayShieldHsm("127.0.0.1", port, timeout=2).diagnostics()


def test_client_maps_zz_and_error_codes(fake_hsm: Callable[..., int]) -> None:
    port = fake_hsm(lambda p: p[:4] + (b"ZZ68" if p[4:6] == b"NC" else b"G168"))
    hsm = PayShieldHsm("127.0.0.1", port, timeout=2)
    with pytest.raises(UnsupportedOperationError, match="68"):
        hsm.diagnostics()
    with pytest.raises(UnsupportedOperationError, match="G0"):
        hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk")


def test_client_rejects_malformed_fields(fake_hsm: Callable[..., int]) -> None:
    port = fake_hsm(lambda p: p[:4] + b"ND00" + b"XYZ")
    with pytest.raises(HsmProtocolError, match="LMK check value"):
        PayShieldHsm("127.0.0.1", port, timeout=2).diagnostics()


def test_client_reports_hang_up_and_refusal(fake_hsm: Callable[..., int]) -> None:
    port = fake_hsm(lambda p: None)
    with pytest.raises(HsmUnavailableError, match="closed the connection"):
        PayShieldHsm("127.0.0.1", port, timeout=2).diagnostics()
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    unused = free.getsockname()[1]
    free.close()
    with pytest.raises(HsmUnavailableError, match="unreachable"):
        PayShieldHsm("127.0.0.1", unused, timeout=2).diagnostics()


def test_client_times_out(fake_hsm: Callable[..., int]) -> None:
    event = threading.Event()

    def never(payload: bytes) -> bytes | None:
        event.wait(5)
        return None

    port = fake_hsm(never)
    with pytest.raises(HsmUnavailableError, match="timed out"):
        PayShieldHsm("127.0.0.1", port, timeout=0.3).diagnostics()
    event.set()


def test_client_validates_before_sending(fake_hsm: Callable[..., int]) -> None:
    sent: list[bytes] = []

    def record(payload: bytes) -> None:
        sent.append(payload)

    port = fake_hsm(record)
    hsm = PayShieldHsm("127.0.0.1", port, timeout=2)
    with pytest.raises(InvalidAccountError):
        hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, "123", "zpk")
    with pytest.raises(InvalidInputError, match="BDK name"):
        hsm.translate_pin_dukpt_to_zpk("b d k", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk")
    with pytest.raises(UnsupportedOperationError):
        hsm.derive_initial_key("bdk", TDES_KSN)
    with pytest.raises(UnsupportedOperationError):
        hsm.list_keys()
    assert sent == []


def test_client_uses_configured_cryptograms(fake_hsm: Callable[..., int]) -> None:
    sent: list[bytes] = []

    def record(payload: bytes) -> bytes:
        sent.append(payload)
        return payload[:4] + b"G100" + b"04" + b"00" * 8 + b"01"

    port = fake_hsm(record)
    cryptogram = "U" + "1" * 32
    hsm = PayShieldHsm("127.0.0.1", port, timeout=2, key_refs={"zpk": cryptogram})
    assert hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk") == bytes(8)
    assert sent[0][4:].startswith(b"G0#03bdk" + cryptogram.encode() + b"A05")


def test_client_retries_once_on_a_dropped_pooled_connection() -> None:
    """The HSM closed an idle pooled connection: the next command goes out on a new one."""
    server = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            connections.append(1)
            with conn:  # answer one command, then hang up
                head = conn.recv(2)
                payload = conn.recv(int.from_bytes(head, "big"))
                conn.sendall(frame(payload[:4] + b"ND00" + b"0" * 16 + b"FIRMWARE1"))

    threading.Thread(target=serve, daemon=True).start()
    hsm = PayShieldHsm("127.0.0.1", int(server.getsockname()[1]), timeout=2)
    try:
        assert hsm.diagnostics()["firmware"] == "FIRMWARE1"
        assert hsm.diagnostics()["firmware"] == "FIRMWARE1"
        assert len(connections) == 2
    finally:
        hsm.close()
        server.close()
