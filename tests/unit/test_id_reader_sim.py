"""The simulated ID-card reader on its own: GA 467 answers, actions, faults and pacing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import serial

from branchline.drivers.id_reader.frames import (
    Command,
    Malformed,
    Reply,
    ReplyDecoder,
    Request,
    encode_request,
    parse_text_and_photo,
)
from branchline.drivers.id_reader.identity import (
    IdentityCard,
    id_number_problems,
    parse_identity,
)
from branchline.sim.devices.base import SimError
from branchline.sim.devices.id_reader import SimulatedIdReader
from branchline.sim.id_cards import SAMPLE_CARDS
from branchline.sim.pty_line import PtyLine


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.device = SimulatedIdReader(tmp_path)
        self.sent = bytearray()
        self.device.send = self.sent.extend

    def ask(
        self, command: Command | tuple[int, int], raw: bytes | None = None
    ) -> list[Request | Reply | Malformed]:
        self.sent.clear()
        self.device.on_bytes(raw if raw is not None else encode_request(command))
        return ReplyDecoder().feed(bytes(self.sent))

    def sw3(self, command: Command) -> int:
        [reply] = self.ask(command)
        assert isinstance(reply, Reply)
        return reply.sw3


def test_sample_cards_are_what_they_claim() -> None:
    assert SAMPLE_CARDS["valid"].card.id_number == "11010519491231002X"
    assert id_number_problems(SAMPLE_CARDS["valid"].card.id_number) == []
    assert id_number_problems(SAMPLE_CARDS["long_term"].card.id_number) == []
    assert id_number_problems(SAMPLE_CARDS["expired"].card.id_number) == []
    [problem] = id_number_problems(SAMPLE_CARDS["bad_check_digit"].card.id_number)
    assert problem.code == "bad_check_digit"
    for sample in SAMPLE_CARDS.values():
        assert len(sample.text) == 256 and len(sample.card.photo) == 1024


def test_no_card_then_find_select_read(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    assert h.sw3(Command.SAM_STATUS) == 0x90
    assert h.sw3(Command.FIND_CARD) == 0x80
    assert h.sw3(Command.SELECT_CARD) == 0x81
    h.device.act("place", {"card": "expired"})
    assert h.sw3(Command.READ_TEXT_PHOTO) == 0x41  # not selected yet
    assert h.sw3(Command.FIND_CARD) == 0x9F
    assert h.sw3(Command.SELECT_CARD) == 0x90
    [reply] = h.ask(Command.READ_TEXT_PHOTO)
    assert isinstance(reply, Reply) and reply.sw3 == 0x90
    parts = parse_text_and_photo(reply.data)
    assert not isinstance(parts, Malformed)
    card = parse_identity(parts.text, parts.photo)
    assert isinstance(card, IdentityCard) and card.name == "陈伟"
    assert h.sw3(Command.READ_TEXT_PHOTO) == 0x41  # halted after the read
    assert h.device.act("remove", {}) == {"removed": "expired"}
    assert h.sw3(Command.FIND_CARD) == 0x80


def test_bad_requests(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    assert h.sw3(Command.SAM_STATUS) == 0x90
    [reply] = h.ask((0x55, 0x01), encode_request((0x55, 0x01)))
    assert isinstance(reply, Reply) and reply.sw3 == 0x21
    bad = bytearray(encode_request(Command.FIND_CARD))
    bad[-1] ^= 0xFF
    [reply] = h.ask(Command.FIND_CARD, bytes(bad))
    assert isinstance(reply, Reply) and reply.sw3 == 0x10
    assert h.ask(Command.FIND_CARD, b"\x01\x02noise") == []
    assert h.device.noise_bytes == 0  # held until it is clearly not a frame start
    assert h.sw3(Command.SAM_STATUS) == 0x90
    assert h.device.noise_bytes > 0


def test_faults(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.device.act("place", {"card": "valid"})
    h.device.set_fault("sam_fault", True)
    assert h.sw3(Command.SAM_STATUS) == 0x60 and h.sw3(Command.FIND_CARD) == 0x60
    assert h.device.facts()["sam"] == "self_test_failed"
    h.device.set_fault("sam_fault", False)
    h.device.set_fault("bad_checksum", True)
    [damaged] = h.ask(Command.SAM_STATUS)
    assert isinstance(damaged, Malformed) and damaged.reason.startswith("bad checksum")
    assert h.sw3(Command.SAM_STATUS) == 0x90  # once only
    h.device.set_fault("read_fail", True)
    assert h.sw3(Command.FIND_CARD) == 0x9F and h.sw3(Command.SELECT_CARD) == 0x90
    assert h.sw3(Command.READ_TEXT_PHOTO) == 0x41
    with pytest.raises(SimError, match="no fault 'jam'"):
        h.device.set_fault("jam", True)


def test_actions_name_what_was_wrong(tmp_path: Path) -> None:
    device = SimulatedIdReader(tmp_path)
    assert set(device.act("list_cards", {})) >= {"valid", "expired", "bad_check_digit", "long_term"}
    placed = device.act("place", {"card": "valid"})
    assert placed == {"card": "valid", "id_number_masked": "110105********002X"}
    with pytest.raises(SimError, match="place: card: required"):
        device.act("place", {})
    with pytest.raises(SimError, match="unknown card 'nobody'"):
        device.act("place", {"card": "nobody"})
    with pytest.raises(SimError, match="no action 'fly'"):
        device.act("fly", {})


def test_paced_line_takes_the_wire_time(tmp_path: Path) -> None:
    """A line paced at 115200 delivers a reply no sooner than request + reply wire time."""

    async def scenario() -> tuple[float, bytes]:
        device = SimulatedIdReader(tmp_path)
        line = PtyLine(tmp_path / "dev" / "id_reader", device.on_bytes)
        device.send = line.write
        line.plug()
        line.set_baud(115200)
        device.act("place", {"card": "valid"})
        loop = asyncio.get_running_loop()
        port = serial.Serial(str(tmp_path / "dev" / "id_reader"), 115200, timeout=0)
        try:
            received = bytearray()
            for command in (Command.FIND_CARD, Command.SELECT_CARD, Command.READ_TEXT_PHOTO):
                received.clear()
                started = loop.time()
                port.write(encode_request(command))
                while not ReplyDecoder().feed(bytes(received)):
                    await asyncio.sleep(0.002)
                    received += port.read(4096)
                    assert loop.time() - started < 2
            return loop.time() - started, bytes(received)
        finally:
            port.close()
            line.unplug()

    elapsed, sent = asyncio.run(scenario())
    wire = (10 + 1295) * 10 / 115200
    assert wire * 0.9 <= elapsed < wire + 0.5
    [reply] = ReplyDecoder().feed(sent)
    assert isinstance(reply, Reply) and reply.sw3 == 0x90


def test_set_baud_is_checked() -> None:
    line = PtyLine(Path("/nonexistent/dev/x"), lambda data: None)
    with pytest.raises(ValueError, match="baud: must be 0"):
        line.set_baud(-1)
    line.set_baud(9600)
    assert line.baud == 9600


def test_a_reply_larger_than_the_pty_buffer_arrives_whole(tmp_path: Path) -> None:
    """The line waits for room instead of dropping what the kernel's buffer cannot take."""

    async def scenario() -> bytes:
        line = PtyLine(tmp_path / "dev" / "big", lambda data: None)
        line.plug()
        port = serial.Serial(str(line.link_path), timeout=0.05)
        payload = bytes(range(256)) * 1024  # 256 KiB, far past a pty's buffer
        line.write(payload)
        got = bytearray()
        deadline = asyncio.get_running_loop().time() + 10
        while len(got) < len(payload) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.001)
            got += port.read(65536)
        port.close()
        line.unplug()
        assert bytes(got) == payload
        return bytes(got)

    asyncio.run(scenario())
