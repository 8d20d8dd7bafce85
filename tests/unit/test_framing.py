"""The shared resynchronising decoder (drivers/framing.py), on a toy codec of its own.

Toy frame: ``AB CD LEN BODY... SUM`` (a two-byte start, LEN = len(BODY) 1..8, SUM = sum of
BODY mod 256); the byte 0x06 outside a frame is an ACK. Each device codec's published
vectors are in its own test file; this pins down the behaviour they all share.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from branchline.drivers.framing import MAX_GARBAGE_RUN, Bad, Good, ResyncDecoder
from branchline.drivers.malformed import Malformed

START = b"\xab\xcd"


@dataclass(frozen=True)
class Toy:
    body: bytes


@dataclass(frozen=True)
class Ack:
    pass


class ToyDecoder(ResyncDecoder[Toy | Ack]):
    start = START

    def judge(self, buf: bytearray) -> Good[Toy] | Bad | None:
        if len(buf) < 3:
            return None
        length = buf[2]
        if not 1 <= length <= 8:
            return Bad(f"bad length {length}", 3)
        total = 3 + length + 1
        if len(buf) < total:
            return None
        if sum(buf[3 : total - 1]) % 256 != buf[total - 1]:
            return Bad("bad sum", total)
        return Good(Toy(bytes(buf[3 : total - 1])), total)

    def truncated(self, buf: bytearray) -> str:
        return f"truncated: {len(buf)} bytes"

    def control(self, byte: int) -> Ack | None:
        return Ack() if byte == 0x06 else None


def frame(body: bytes) -> bytes:
    return START + bytes([len(body)]) + body + bytes([sum(body) % 256])


def test_good_frames_and_control_bytes_come_out_in_order() -> None:
    stream = frame(b"\x01") + b"\x06" + frame(b"\x02\x03")
    assert ToyDecoder().feed(stream) == [Toy(b"\x01"), Ack(), Toy(b"\x02\x03")]


def test_a_bad_candidate_is_reported_once_and_a_frame_inside_it_is_found() -> None:
    inner = frame(b"\x07")
    # LEN 8 swallows the inner frame; the sum fails, the inner frame is still found.
    bad = START + b"\x08" + inner + b"\x00\x00\x00\x00"
    out = ToyDecoder().feed(bad) + ToyDecoder().flush()
    assert out[0] == Malformed("bad sum", bad[:12])
    assert Toy(b"\x07") in out
    assert sum(isinstance(item, Malformed) for item in out) == 1


def test_garbage_runs_become_one_malformed_each_and_are_capped() -> None:
    decoder = ToyDecoder()
    assert decoder.feed(b"\x01\x02" + frame(b"\x09")) == [
        Malformed("2 unexpected byte(s) outside a frame", b"\x01\x02"),
        Toy(b"\x09"),
    ]
    out = decoder.feed(b"\x00" * (MAX_GARBAGE_RUN + 3)) + decoder.flush()
    assert [len(item.raw) for item in out if isinstance(item, Malformed)] == [
        MAX_GARBAGE_RUN,
        3,
    ]


def test_a_partial_start_waits_and_flush_reports_what_is_held() -> None:
    decoder = ToyDecoder()
    assert decoder.feed(b"\xab") == []
    assert decoder.buffered == 1
    assert decoder.feed(b"\xcd\x02\x01") == []
    assert decoder.flush() == [Malformed("truncated: 4 bytes", START + b"\x02\x01")]
    assert decoder.buffered == 0


def test_reset_forgets_what_is_held() -> None:
    decoder = ToyDecoder()
    decoder.feed(START + b"\x03\x01")
    decoder.reset()
    assert decoder.buffered == 0
    assert decoder.feed(frame(b"\x05")) == [Toy(b"\x05")]


pieces = st.lists(
    st.one_of(
        st.binary(min_size=1, max_size=8).map(frame),
        st.sampled_from([b"\x06", b"\xab", b"\xcd", START + b"\x09", START + b"\x02\x01\x01\x00"]),
        st.binary(max_size=6),
    ),
    max_size=12,
)


@given(pieces, st.data())
def test_chunking_never_changes_the_result(parts: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(parts)
    whole = ToyDecoder()
    expected = whole.feed(stream) + whole.flush()
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=6)))
    chunked = ToyDecoder()
    got: list[object] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += chunked.feed(stream[a:b])
    got += chunked.flush()
    assert got == expected


@given(st.lists(st.binary(min_size=1, max_size=8), max_size=10))
def test_clean_frames_decode_to_exactly_themselves(bodies: list[bytes]) -> None:
    decoder = ToyDecoder()
    stream = b"".join(frame(body) for body in bodies)
    assert decoder.feed(stream) + decoder.flush() == [Toy(body) for body in bodies]
