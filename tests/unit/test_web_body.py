"""Reading an uploaded body (common/web/pages.read_bounded): a face image or a recording chunk
that reaches the page server in several pieces is read whole, and an oversized one is seen to be
too big. The console's face enrolment once read only the first piece: under load the image
arrived truncated and the purchaser was never enrolled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from branchline.common.web.pages import read_bounded

LIMIT = 64 * 1024


async def _body_length(request: web.Request) -> web.Response:
    return web.json_response({"length": len(await read_bounded(request, LIMIT))})


async def _in_pieces(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
        await asyncio.sleep(0.05)  # each piece its own segment, the reader waiting between


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([b"a" * 20_000, b"b" * 2_414], 22_414),
        ([b"x" * 1000] * 30, 30_000),
        ([b"y" * LIMIT, b"z" * 10], LIMIT + 1),
        ([], 0),
    ],
    ids=["two-pieces", "many-pieces", "too-big", "empty"],
)
async def test_a_body_in_pieces_is_read_whole_up_to_one_past_the_limit(
    pieces: list[bytes], expected: int
) -> None:
    app = web.Application()
    app.router.add_post("/upload", _body_length)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            url = str(server.make_url("/upload"))
            async with http.post(url, data=_in_pieces(pieces)) as response:
                assert response.status == 200
                assert (await response.json())["length"] == expected
    finally:
        await server.close()
