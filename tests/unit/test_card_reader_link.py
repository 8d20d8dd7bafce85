"""The card reader's ACK/NAK/EOT exchange against a transport with scripted bytes."""

from __future__ import annotations

import pytest

from branchline.drivers.base import Completion
from branchline.drivers.card_reader import commands as cmd
from branchline.drivers.card_reader.frames import ACK, EOT, NAK, encode_command, encode_reply
from branchline.drivers.card_reader.link import Link, NakStorm, NoAck, ReplyTimeout
from tests.unit.card_reader_fakes import FakeClock, FakeTransport, scripted

A, N = bytes([ACK]), bytes([NAK])
STATUS_FRAME = encode_command(0x31, 0x30)
STATUS_REPLY = encode_reply(0x31, 0x30, b"20")  # card inside, bin not full


def link_for(answers: list[bytes], **kwargs: object) -> tuple[Link, FakeTransport, FakeClock]:
    clock = FakeClock()
    transport = FakeTransport(clock, scripted(answers))
    return Link(transport, clock=clock, **kwargs), transport, clock  # type: ignore[arg-type]


def test_ack_then_reply() -> None:
    link, transport, _ = link_for([A + STATUS_REPLY])
    reply = link.exchange(cmd.STATUS, reply_timeout=1)
    assert reply.positive and reply.status == b"20"
    assert transport.written == [STATUS_FRAME]


def test_nak_then_ack_resends_the_same_frame() -> None:
    link, transport, _ = link_for([N, A + STATUS_REPLY])
    assert link.exchange(cmd.STATUS, reply_timeout=1).status == b"20"
    assert transport.written == [STATUS_FRAME, STATUS_FRAME]
    assert link.naks == 1


def test_nak_storm_is_bounded() -> None:
    link, transport, _ = link_for([N] * 100, nak_retries=3)
    with pytest.raises(NakStorm) as raised:
        link.exchange(cmd.STATUS, reply_timeout=1)
    assert raised.value.completion is Completion.HARDWARE_ERROR
    assert raised.value.code == "nak_storm"
    assert len(transport.written) == 4  # the first send and three resends


def test_garbage_before_ack_is_skipped() -> None:
    noise = b"\x00\xffhello\x13" + encode_reply(0x31, 0x30, b"20")[:-1] + b"\x99"  # bad BCC
    link, _, _ = link_for([noise + A + b"\x7f\x7f" + STATUS_REPLY])
    assert link.exchange(cmd.STATUS, reply_timeout=1).status == b"20"
    assert link.skipped >= 2


def test_a_reply_to_another_command_is_skipped() -> None:
    stale = encode_reply(0x36, 0x32, b"20", b";4761739001010010=31122011?")
    link, _, _ = link_for([A + stale + STATUS_REPLY])
    reply = link.exchange(cmd.STATUS, reply_timeout=1)
    assert (reply.cm, reply.pm) == (0x31, 0x30)


def test_reply_whose_ack_was_lost_is_taken() -> None:
    link, _, _ = link_for([STATUS_REPLY])
    assert link.exchange(cmd.STATUS, reply_timeout=1).status == b"20"


def test_reply_split_across_reads_and_frame_hidden_behind_a_bogus_header() -> None:
    # F2 00 01 00: a "frame" claiming 256 TEXT bytes swallows the ACK; the decoder must still
    # find the real reply inside once the line goes quiet.
    link, _, _ = link_for([b"\xf2\x00\x01\x00" + A + STATUS_REPLY])
    assert link.exchange(cmd.STATUS, reply_timeout=1).status == b"20"


def test_no_ack_at_all() -> None:
    link, transport, clock = link_for([])
    start = clock.now
    with pytest.raises(NoAck) as raised:
        link.exchange(cmd.STATUS, reply_timeout=1)
    assert raised.value.code == "no_ack"
    assert clock.now - start == pytest.approx(link.ack_timeout, abs=0.3)
    assert len(transport.written) == 1  # silence is not resent: nobody is there


def test_reply_timeout_sends_eot() -> None:
    link, transport, _ = link_for([A])
    with pytest.raises(ReplyTimeout) as raised:
        link.exchange(cmd.STATUS, reply_timeout=2)
    assert raised.value.completion is Completion.TIMEOUT
    assert raised.value.code == "reply_timeout"
    assert transport.written[-1] == bytes([EOT])


def test_negative_reply_is_returned_for_the_caller_to_map() -> None:
    link, _, _ = link_for([A + encode_reply(0x32, 0x31, b"10", positive=False)])
    reply = link.exchange(cmd.MOVE_TO_IC, reply_timeout=1)
    assert not reply.positive and reply.error_code == "10"


def test_stale_input_is_discarded_before_sending() -> None:
    link, transport, _ = link_for([A + STATUS_REPLY])
    transport.inbox += encode_reply(0x31, 0x30, b"00")  # left over from an abandoned exchange
    assert link.exchange(cmd.STATUS, reply_timeout=1).status == b"20"


def test_exchange_with_data_and_address() -> None:
    reply = encode_reply(0x51, 0x39, b"20", b"\x90\x00", address=3)
    link, transport, _ = link_for(
        [A + encode_reply(0x51, 0x39, b"20", address=0) + reply], address=3
    )
    got = link.exchange(cmd.APDU_AUTO, b"\x00\xa4\x04\x00", reply_timeout=1)
    assert got.address == 3 and got.data == b"\x90\x00"
    assert transport.written == [encode_command(0x51, 0x39, b"\x00\xa4\x04\x00", address=3)]
