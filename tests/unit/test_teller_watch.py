"""The one resumable watch of branchline-teller (``server/teller/watch.py``): a stream lost to
a transient status is reopened after the last item shown, after a jittered pause that
doubles up to the cap and starts over once items flow; other statuses end the watch; a
count stops it; a stream the server ends is reopened or not as asked."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from branchline.server.teller.watch import Backoff, follow


class Lost(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


class Server:
    """Items 1..N; each stream breaks (with ``code``) after ``per_stream`` items."""

    def __init__(self, total: int, per_stream: int, code: grpc.StatusCode) -> None:
        self.total, self.per_stream, self.code = total, per_stream, code
        self.opened_after: list[int] = []

    def open(self, after: int) -> Iterator[int]:
        self.opened_after.append(after)
        for n, item in enumerate(range(after + 1, self.total + 1)):
            if n == self.per_stream:
                raise Lost(self.code)
            yield item
        raise Lost(self.code)


def test_a_lost_stream_resumes_after_the_last_item_with_doubling_capped_pauses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = Server(total=5, per_stream=2, code=grpc.StatusCode.UNAVAILABLE)
    shown: list[int] = []
    pauses: list[float] = []
    code = follow(
        server.open,
        lambda item: item,
        shown.append,
        after=0,
        count=5,
        backoff=Backoff(first=1.0, cap=4.0),
        sleep=pauses.append,
    )
    assert code == 0
    assert shown == [1, 2, 3, 4, 5]  # nothing twice, nothing skipped
    assert server.opened_after == [0, 2, 4]
    # Items arrived before each loss, so each pause starts over from the first.
    assert len(pauses) == 2 and all(0.5 <= p <= 1.0 for p in pauses), pauses
    assert "stream lost (UNAVAILABLE); resuming after 2" in capsys.readouterr().err


def test_pauses_double_up_to_the_cap_while_nothing_arrives() -> None:
    server = Server(total=0, per_stream=0, code=grpc.StatusCode.UNAVAILABLE)
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 6:
            server.code = grpc.StatusCode.PERMISSION_DENIED

    with pytest.raises(Lost):
        follow(server.open, int, print, backoff=Backoff(first=1.0, cap=4.0), sleep=sleep)
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= p <= c for p, c in zip(pauses, ceilings, strict=True)), pauses
    assert server.opened_after == [0] * 7


def test_a_refusal_is_not_retried() -> None:
    server = Server(total=3, per_stream=1, code=grpc.StatusCode.PERMISSION_DENIED)
    shown: list[int] = []
    with pytest.raises(Lost):
        follow(server.open, int, shown.append, sleep=lambda _: None)
    assert shown == [1] and server.opened_after == [0]


def test_a_stream_the_server_ends_is_reopened_only_when_asked() -> None:
    opened: list[int] = []

    def ends(after: int) -> Iterator[int]:
        opened.append(after)
        yield after + 1

    assert follow(ends, int, print, reconnect_on_end=False, sleep=lambda _: None) == 0
    assert opened == [0]
    assert follow(ends, int, print, count=3, sleep=lambda _: None) == 0
    assert opened == [0, 0, 1, 2]
