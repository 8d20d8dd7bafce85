"""The pages' call signalling frames, refused before anything reaches the server when they
are wrong (server/console/call_media.py, server/console/desk_media.py): each refusal names
the field."""

from __future__ import annotations

from typing import Any

import pytest

from branchline.common.errors import DomainError, FailedPrecondition, InvalidArgument
from branchline.common.ice import IceServers
from branchline.server.console.call_media import CallMedia
from branchline.server.console.desk_media import DeskMedia

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]


class NoServer:
    """A client that must not be called: every frame here is refused first."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the server was asked ({name}) for a frame that is wrong")


def page(text: str) -> None:
    return None


@pytest.mark.parametrize(
    ("message", "error", "field"),
    [
        ({"type": "call_signal", "call_id": ""}, InvalidArgument, "call_id"),
        ({"type": "call_signal", "call_id": "other"}, FailedPrecondition, "call_id"),
        ({"type": "call_signal", "call_id": "c-1", "kind": "bye", "payload": "x"}, InvalidArgument, "kind"),
        ({"type": "call_signal", "call_id": "c-1", "kind": "offer", "payload": ""}, InvalidArgument, "payload"),
        ({"type": "call_signal", "call_id": "c-1", "kind": "offer", "payload": "x" * 20000}, InvalidArgument, "payload"),
        ({"type": "call_media", "call_id": "c-1", "event": "paused"}, InvalidArgument, "event"),
    ],
)  # fmt: skip
async def test_console_call_frames_refused(
    message: dict[str, Any], error: type[DomainError], field: str
) -> None:
    media = CallMedia(NoServer(), IceServers(), lambda frame: None)  # type: ignore[arg-type]
    media.call_id = "c-1"
    with pytest.raises(error) as refused:
        await media.on_frame(page, message)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "desk_signal", "txn_id": "", "kind": "offer"}, "txn_id"),
        ({"type": "desk_signal", "txn_id": "T-1", "kind": "answer"}, "kind"),
        ({"type": "desk_signal", "txn_id": "T-1", "kind": "offer", "payload": 5}, "payload"),
    ],
)
async def test_console_desk_frames_refused(message: dict[str, Any], field: str) -> None:
    media = DeskMedia(NoServer(), lambda frame: None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as refused:
        await media.on_frame(page, message)
    assert refused.value.field == field
