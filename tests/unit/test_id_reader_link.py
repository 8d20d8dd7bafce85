"""The GA 467 request/reply link against a scripted fake transport."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from branchline.drivers.base import CancelToken, CommandCanceled, Completion, DeviceError
from branchline.drivers.id_reader.frames import (
    Command,
    Reply,
    ReplyDecoder,
    encode_reply,
    encode_request,
)
from branchline.drivers.id_reader.link import Ga467Link, NoReply
from branchline.drivers.transport import Transport

SAM_OK = encode_reply(0x90)
FOUND = encode_reply(0x9F, bytes(4))


def corrupt(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x5A])


class ScriptedTransport(Transport):
    """Each write is answered with the next scripted reply (b"" is silence)."""

    def __init__(self, replies: list[bytes], chunk: int = 4096) -> None:
        super().__init__()
        self.replies = list(replies)
        self.written: list[bytes] = []
        self.chunk = chunk
        self._inbox = bytearray()

    def write(self, data: bytes) -> None:
        self.written.append(data)
        if self.replies:
            self._inbox += self.replies.pop(0)

    def _read_some(self, size: int, timeout: float) -> bytes:
        if not self._inbox:
            time.sleep(min(timeout, 0.01))
            return b""
        out = bytes(self._inbox[: min(size, self.chunk)])
        del self._inbox[: len(out)]
        return out

    def discard_input(self) -> None:
        self._inbox.clear()

    def close(self) -> None:
        pass


def test_exchange_sends_the_request_and_returns_the_reply() -> None:
    line = ScriptedTransport([SAM_OK])
    reply = Ga467Link(line).exchange(Command.SAM_STATUS, 0.5)
    assert reply == Reply(0, 0, 0x90)
    assert line.written == [encode_request(Command.SAM_STATUS)]


def test_reply_arriving_byte_by_byte() -> None:
    line = ScriptedTransport([FOUND], chunk=1)
    assert Ga467Link(line).exchange(Command.FIND_CARD, 0.5).sw3 == 0x9F


def test_garbage_around_the_reply_is_skipped() -> None:
    junk = b"\x00\xff\x13garbage\xaa\xaa\x01"  # even a broken start of a preamble
    line = ScriptedTransport([junk + FOUND + b"\xde\xad"])
    link = Ga467Link(line)
    reply = link.exchange(Command.FIND_CARD, 0.5)
    assert reply.sw3 == 0x9F
    assert link.noise_bytes >= len(junk)
    assert len(line.written) == 1 and link.damaged_replies == 0


def test_bad_checksum_is_retried_once() -> None:
    line = ScriptedTransport([corrupt(FOUND), FOUND])
    link = Ga467Link(line)
    started = time.monotonic()
    assert link.exchange(Command.FIND_CARD, 2.0).sw3 == 0x9F
    assert time.monotonic() - started < 1.0  # a damaged reply is not waited out
    assert line.written == [encode_request(Command.FIND_CARD)] * 2
    assert link.damaged_replies == 1


def test_two_bad_checksums_fail_as_invalid_data_naming_the_command() -> None:
    reply = encode_reply(0x90, bytes(1284))
    line = ScriptedTransport([corrupt(reply), corrupt(reply), reply])
    with pytest.raises(DeviceError) as failed:
        Ga467Link(line).exchange(Command.READ_TEXT_PHOTO, 1.0)
    assert failed.value.completion is Completion.INVALID_DATA
    assert failed.value.code == "bad_checksum"
    assert "read text and photo (30/01)" in failed.value.message
    assert "bad checksum" in failed.value.message
    assert len(line.written) == 2


def test_silence_is_no_reply_after_the_timeout() -> None:
    line = ScriptedTransport([b""])
    started = time.monotonic()
    with pytest.raises(NoReply) as silent:
        Ga467Link(line).exchange(Command.SAM_STATUS, 0.3)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.0
    assert silent.value.code == "no_reply"
    assert "SAM status (11/FF)" in silent.value.message
    assert len(line.written) == 1  # silence is not retried: the caller decides


def test_only_noise_is_no_reply() -> None:
    line = ScriptedTransport([b"\x01\x02\x03" * 50])
    with pytest.raises(NoReply):
        Ga467Link(line).exchange(Command.FIND_CARD, 0.2)


def test_cancel_stops_the_wait() -> None:
    line = ScriptedTransport([b""])
    cancel = CancelToken()
    threading.Timer(0.1, cancel.cancel, args=("stop",)).start()
    started = time.monotonic()
    with pytest.raises(CommandCanceled):
        Ga467Link(line).exchange(Command.FIND_CARD, 5.0, cancel)
    assert time.monotonic() - started < 1.0


def test_decoder_asks_for_exactly_the_missing_bytes() -> None:
    decoder = ReplyDecoder()
    frame = encode_reply(0x90, bytes(1284))
    assert decoder.wanted() == 7
    decoder.feed(frame[:3])
    assert decoder.wanted() == 4
    decoder.feed(frame[3:7])
    assert decoder.wanted() == len(frame) - 7
    decoder.feed(frame[7:100])
    assert decoder.wanted() == len(frame) - 100
    assert decoder.feed(frame[100:]) == [Reply(0, 0, 0x90, bytes(1284))]
    assert decoder.wanted() == 7


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_any_bytes_on_the_line_end_in_a_reply_or_a_clear_error(
    junk: bytes, then_reply: bool
) -> None:
    line = ScriptedTransport([junk + (FOUND if then_reply else b"")] * 2, chunk=97)
    try:
        reply = Ga467Link(line).exchange(Command.FIND_CARD, 0.02)
    except DeviceError as exc:
        assert exc.code in ("no_reply", "bad_checksum", "bad_frame")
    else:
        assert isinstance(reply, Reply)
