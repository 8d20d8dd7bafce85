"""Operations' terminal detail on the console, against a real server over mTLS: the selected
terminal shows its devices' status history as the server keeps it (``Fleet.DeviceHistory``),
newest first, including changes made before the console started, and again after each new
change; the server answers that history to operators only."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from branchline.server import fleet_registry
from branchline.server.console.session import ConsoleSession
from branchline.server.fleet_registry import DeviceRecord
from branchline.v1 import fleet_pb2
from tests.unit.console_support import Stack, stack, until

__all__ = ["stack"]

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


def report(stack: Stack, status: str, detail: str = "") -> None:
    printer = DeviceRecord("printer", "escpos_printer", status, detail)
    assert fleet_registry.update_device(stack.engine, "K-9", printer, datetime.now(UTC))


def changes(frame: dict[str, object]) -> list[tuple[str, str, str]]:
    detail = frame.get("fleet", {}).get("detail")  # type: ignore[attr-defined]
    if not detail:
        return []
    return [(h["device"], h["status"], h["detail"]) for h in detail["history"]]


async def test_terminal_detail_shows_the_device_history_newest_first(stack: Stack) -> None:
    # Before the console starts: the printer was unplugged and came back.
    report(stack, "online")
    report(stack, "no_device", "port missing")
    report(stack, "online")
    ops = ConsoleSession(stack.settings("operator:ops"))
    teller = ConsoleSession(stack.settings("teller:T-1"))
    await ops.start()
    try:
        await until(
            ops,
            lambda f: "K-9" in {t["terminal_id"] for t in f.get("fleet", {}).get("terminals", [])},
        )
        assert await ops.handle("fleet.select", {"terminal_id": "K-9"}) is None
        assert changes(ops.state_frame()) == [
            ("printer", "online", ""),
            ("printer", "no_device", "port missing"),
            ("printer", "online", ""),
        ]
        # A change while the detail is open is shown at the top.
        report(stack, "offline", "cover open")
        shown = await until(ops, lambda f: (c := changes(f)) and c[0][1] == "offline" and c)
        assert shown[0] == ("printer", "offline", "cover open") and len(shown) == 4
        assert await ops.handle("fleet.close", {}) is None
        assert ops.state_frame()["fleet"]["detail"] is None

        # Operators only: a teller's certificate is refused by the server.
        request = fleet_pb2.DeviceHistoryRequest(terminal_id="K-9")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await teller.client.call(teller.client.fleet.DeviceHistory, request)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await ops.stop()
        await teller.stop()
