"""Whatever a (broken, hostile) reader sends, the driver ends in DeviceError/DeviceGone, never
anything else, and never logs card data."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from branchline.drivers.base import DeviceError, DriverContext, StatusReport
from branchline.drivers.card_reader import emv_tlv
from branchline.drivers.card_reader.driver import Crt591CardReaderDriver
from branchline.drivers.card_reader.frames import ACK, NAK, CommandFrame, FrameDecoder, encode_reply
from branchline.drivers.card_reader.options import CardReaderOptions
from branchline.sim.card.emv_card import ChipCard
from branchline.sim.card.samples import SAMPLE_CARDS
from tests.unit.card_reader_fakes import FakeCancel, FakeClock, FakeTransport

TAGS: tuple[int, ...] = (0x4F, 0x50, 0x57, 0x5A, 0x61, 0x6F, 0x70, 0x77, 0x80, 0x82, 0x84)
TAGS += (0x87, 0x88, 0x94, 0xA5, 0x5F20, 0x5F24, 0x9F38)
VISA = SAMPLE_CARDS["visa"]


def tlv_bytes() -> st.SearchStrategy[bytes]:
    leaf = st.builds(
        lambda tag, value: emv_tlv.encode(tag, value),
        st.sampled_from(TAGS),
        st.binary(max_size=24),
    )
    return st.lists(leaf, max_size=5).map(b"".join)


def mutated(good: bytes) -> st.SearchStrategy[bytes]:
    """Mostly the right bytes, sometimes damaged: a flipped byte, a cut, or junk."""
    if not good:
        return st.just(good) | st.binary(max_size=8)
    flip = st.builds(
        lambda at, value: good[: at % len(good)] + bytes([value]) + good[at % len(good) + 1 :],
        st.integers(0, 10_000),
        st.integers(0, 255),
    )
    cut = st.integers(0, len(good)).map(lambda n: good[:n])
    junk = st.one_of(st.binary(max_size=40), tlv_bytes().map(lambda b: b + b"\x90\x00"))
    choices: dict[str, st.SearchStrategy[bytes]] = {
        "good": st.just(good),
        "flip": flip,
        "cut": cut,
        "junk": junk,
    }
    return st.sampled_from(["good"] * 30 + ["flip", "cut", "junk"]).flatmap(choices.__getitem__)


class FuzzDevice:
    """A reader that behaves like the simulator most of the time and misbehaves at random."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.chip: ChipCard | None = None
        assert VISA.chip is not None
        self.chip = VISA.chip()
        self.chip.power_on()

    def good_data(self, frame: CommandFrame) -> bytes:
        code = (frame.cm, frame.pm)
        if code == (0x51, 0x30):
            assert self.chip is not None
            return b"0" + (self.chip.power_on() or b"")
        if frame.cm == 0x51 and frame.pm in (0x33, 0x34, 0x39) and self.chip is not None:
            return self.chip.transmit(frame.data)
        if frame.cm == 0x36:
            return {0x31: VISA.track1, 0x32: VISA.track2}.get(frame.pm, "").encode()  # type: ignore[union-attr]
        if code == (0xA5, 0x30):
            return b"007"
        return b""

    def __call__(self, written: bytes) -> bytes:
        frames = [i for i in FrameDecoder().feed(written) if isinstance(i, CommandFrame)]
        if not frames:
            return b""  # EOT or a lone control byte
        frame = frames[0]
        draw = self.data.draw
        status = draw(st.sampled_from([b"20"] * 30 + [b"10", b"00", b"21", b"\x00\xff"]))
        body = draw(mutated(self.good_data(frame)))
        positive = draw(st.sampled_from([True] * 30 + [False]))
        reply = encode_reply(frame.cm, frame.pm, status, body, positive=positive)
        behaviour = draw(st.sampled_from(["good"] * 30 + ["nak", "silent", "ack_only", "junk"]))
        if behaviour == "good":
            return bytes([ACK]) + reply
        if behaviour == "nak":
            return bytes([NAK])
        if behaviour == "silent":
            return b""
        if behaviour == "ack_only":
            return bytes([ACK])
        return draw(st.binary(max_size=30)) + bytes([ACK]) + draw(st.binary(max_size=30)) + reply


CALLS: list[tuple[str, dict[str, Any]]] = [
    ("status", {}),
    ("accept_card", {"timeout_s": 1}),
    ("read_tracks", {}),
    ("read_chip", {}),
    ("eject", {"take_timeout_s": 1}),
    ("retain", {}),
    ("bin_count", {}),
    ("initialise", {"card": "retain"}),
    ("set_bin_count", {"count": 3}),
]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_random_device_bytes_only_raise_device_errors(data: st.DataObject) -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, FuzzDevice(data))
    driver = Crt591CardReaderDriver(
        DriverContext("T-1", "BR-1", "card_reader"),
        CardReaderOptions(port="fake://", ack_timeout=0.2, reply_timeout=0.5),
        opener=lambda port, baud: transport,
        clock=clock,
    )
    driver.open()
    assert isinstance(driver.poll(), StatusReport)
    name, params = data.draw(st.sampled_from(CALLS))
    try:
        result = driver.commands()[name](params, FakeCancel(clock))
    except DeviceError:
        return
    assert isinstance(result, dict)
    assert isinstance(driver.poll(), StatusReport)


def test_no_card_data_in_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    # A track that does not parse must not leak through an error message.
    clock = FakeClock()

    def respond(written: bytes) -> bytes:
        frame = next((i for i in FrameDecoder().feed(written) if isinstance(i, CommandFrame)), None)
        if frame is None:
            return b""  # EOT
        if (frame.cm, frame.pm) == (0x31, 0x30):
            return bytes([ACK]) + encode_reply(0x31, 0x30, b"20")
        if frame.cm == 0x36:
            return bytes([ACK]) + encode_reply(0x36, frame.pm, b"20", b";4761739001010010=31X?")
        return bytes([ACK]) + encode_reply(frame.cm, frame.pm, b"20", b"000")

    transport = FakeTransport(clock, respond)
    driver = Crt591CardReaderDriver(
        DriverContext("T-1", "BR-1", "card_reader"),
        CardReaderOptions(port="fake://"),
        opener=lambda port, baud: transport,
        clock=clock,
    )
    driver.open()
    with caplog.at_level(logging.DEBUG), pytest.raises(DeviceError) as raised:
        driver.read_tracks({}, FakeCancel(clock))
    assert raised.value.code == "unreadable_tracks"
    assert "4761739001010010" not in str(raised.value) and "4761739001010010" not in caplog.text
