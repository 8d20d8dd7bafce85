"""The kiosk session without a browser: card + PIN, menu, time limits, languages, attract."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from branchline.agent.kiosk.session import KioskSession
from branchline.agent.kiosk.settings import KioskSettings
from branchline.drivers.base import Completion, DeviceError, DeviceStatus
from branchline.drivers.pin_pad import protocol as pp
from tests.unit.kiosk_support import (
    PAN,
    TOKEN,
    FakeAgent,
    Page,
    card_and_pin,
    until,
    verified,
    wrong_pin,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, **settings: Any) -> tuple[FakeAgent, KioskSession, Page, Clock]:
    agent = FakeAgent(tmp_path, KioskSettings(port=0, **settings))
    clock = Clock()
    session = KioskSession(agent, agent.config.kiosk, clock=clock)  # type: ignore[arg-type]
    session.show_attract()
    return agent, session, Page(session), clock


async def sign_in(agent: FakeAgent, session: KioskSession, page: Page, service: str) -> None:
    go = card_and_pin(agent, keys=4)
    agent.uplink.pin_replies.append(verified())
    await session.handle("start", {"service": service})
    await until(lambda: page.last["screen"] == "pin")
    go.set()
    await until(lambda: page.last["screen"] not in ("pin", "card"))


async def test_attract_lists_the_services_and_a_page_gets_catalogue_then_screen(
    tmp_path: Path,
) -> None:
    agent, session, page, _ = make(tmp_path)
    first, second = page.frames[:2]
    assert first["type"] == "catalogue" and first["lang"] == "zh-CN"
    assert first["messages"]["attract.title"] == "欢迎使用自助服务"
    assert second["type"] == "screen" and second["screen"] == "attract"
    offered = {s["id"]: s["available"] for s in second["data"]["services"]}
    # No rate table yet: the rates board is not offered; nor cheques (no cheque printer,
    # face camera or ID reader here); everything else is.
    assert offered == {
        "deposit": True,
        "withdrawal": True,
        "statement": True,
        "rates": False,
        "video": True,
        "cheque": False,
        "assistant": True,
        "recordings": True,
    }


async def test_card_then_pin_shows_one_dot_per_key_then_the_chosen_service(
    tmp_path: Path,
) -> None:
    agent, session, page, _ = make(tmp_path)
    go = card_and_pin(agent, keys=5)
    agent.uplink.pin_replies.append(verified())
    await session.handle("start", {"service": "statement"})
    await until(lambda: page.last["screen"] == "pin")
    pin = page.last["data"]
    assert pin == {"pan_masked": "476173******0010", "digits": 0, "max_digits": 12}
    statement_reply = agent.uplink
    statement_reply.statement = None
    go.set()
    await until(lambda: any(s["screen"] == "statement" for s in page.screens))
    counts = [s["data"]["digits"] for s in page.screens if s["screen"] == "pin"]
    assert counts == [0, 1, 2, 3, 4, 5]
    assert session.customer is not None and session.customer.customer_id == "C-1"
    # The authentication went through the agent's own function, with the card kept inside.
    assert [c[0] for c in agent.owners["card_reader"].calls] == ["accept_card", "read_chip"]
    everything = "".join(page.texts)
    assert PAN not in everything and TOKEN not in everything
    assert session.customer.session_id not in everything


async def test_incorrect_pin_says_attempts_left_and_retry_asks_again(tmp_path: Path) -> None:
    agent, session, page, _ = make(tmp_path)
    go = card_and_pin(agent)
    go.set()
    agent.uplink.pin_replies += [wrong_pin(2), verified()]
    await session.handle("start", {"service": "deposit"})
    await until(lambda: page.last["screen"] == "pin_failed")
    assert page.last["data"] == {"attempts_left": 2, "locked": False}
    await session.handle("retry", {})
    await until(lambda: page.last["screen"] == "deposit_form")
    assert session.customer is not None


async def test_a_locked_card_takes_no_retry(tmp_path: Path) -> None:
    agent, session, page, _ = make(tmp_path)
    card_and_pin(agent).set()
    agent.uplink.pin_replies.append(wrong_pin(0, locked=True))
    await session.handle("start", {"service": "deposit"})
    await until(lambda: page.last["screen"] == "pin_failed")
    assert page.last["data"]["locked"] is True
    await session.handle("retry", {})
    assert page.refusals[-1]["action"] == "retry"
    assert page.last["screen"] == "pin_failed"


async def test_cancel_during_pin_entry_returns_the_card_and_ends(tmp_path: Path) -> None:
    agent, session, page, _ = make(tmp_path)
    card_and_pin(agent)  # the PIN never comes
    await session.handle("start", {"service": "statement"})
    await until(lambda: page.last["screen"] == "pin")
    await session.handle("cancel", {})
    await until(lambda: page.last["screen"] == "session_ended")
    assert page.last["data"] == {"reason": "canceled"}
    assert agent.owners["card_reader"].calls[-1][0] == "eject"
    assert session.customer is None and not session.card_in


async def test_no_card_inserted_goes_back_to_attract(tmp_path: Path) -> None:
    agent, session, page, _ = make(tmp_path)

    async def no_card(params: dict[str, Any]) -> Any:
        raise DeviceError(Completion.TIMEOUT, "no_card_inserted", "no card")

    agent.owners["card_reader"].scripts["accept_card"] = no_card
    await session.handle("start", {"service": "statement"})
    await until(lambda: page.last["screen"] == "attract")
    assert [s["screen"] for s in page.screens] == ["attract", "card", "attract"]


async def test_pin_pad_cancel_key_ends_the_session(tmp_path: Path) -> None:
    agent, session, page, _ = make(tmp_path)
    card_and_pin(agent)

    async def canceled(params: dict[str, Any]) -> Any:
        agent.owners["pin_pad"].key(0, pp.KeyKind.CANCEL)
        raise DeviceError(Completion.CANCELED, "customer_canceled", "canceled on the pad")

    agent.owners["pin_pad"].scripts["read_pin"] = canceled
    await session.handle("start", {"service": "statement"})
    await until(lambda: page.last["screen"] == "session_ended")
    assert agent.owners["card_reader"].calls[-1][0] == "eject"


async def test_card_not_taken_is_retained_and_said_so(tmp_path: Path) -> None:
    agent, session, page, _ = make(tmp_path)
    await sign_in(agent, session, page, "deposit")

    async def retained(params: dict[str, Any]) -> Any:
        return {"card": "retained", "bin_count": 1}

    agent.owners["card_reader"].scripts["eject"] = retained
    await session.handle("back", {})
    assert page.last["screen"] == "menu"
    await session.handle("finish", {})
    await until(lambda: page.last["screen"] == "card_retained")
    assert "take_card" in [s["screen"] for s in page.screens]
    assert session.customer is None
    await session.handle("ok", {})
    await until(lambda: page.last["screen"] == "session_ended")


async def test_inactivity_warns_then_more_time_then_times_out(tmp_path: Path) -> None:
    agent, session, page, clock = make(tmp_path, inactivity_timeout=30.0, warning_seconds=20.0)
    await sign_in(agent, session, page, "deposit")
    assert page.last["screen"] == "deposit_form"
    clock.now += 29
    session.tick()
    assert page.last["overlay"] is None
    clock.now += 2
    session.tick()
    assert page.last["overlay"] == {"name": "timeout-warning", "seconds": 20}
    await session.handle("more_time", {})
    assert page.last["overlay"] is None
    assert page.last["screen"] == "deposit_form"
    # Without a warning showing, more_time is refused by name.
    await session.handle("more_time", {})
    assert page.refusals[-1]["action"] == "more_time"
    clock.now += 31
    session.tick()
    assert page.screens[-1]["overlay"] == {"name": "timeout-warning", "seconds": 20}
    clock.now += 21
    session.tick()
    await until(lambda: page.last["screen"] == "session_ended")
    assert page.last["data"] == {"reason": "timeout"}
    assert agent.owners["card_reader"].calls[-1][0] == "eject"
    assert session.customer is None
    assert agent.sessions._sessions == {}


async def test_no_time_limit_during_a_device_operation_or_on_attract(tmp_path: Path) -> None:
    agent, session, page, clock = make(tmp_path, inactivity_timeout=10.0, warning_seconds=20.0)
    clock.now += 1000
    session.tick()
    assert page.last["overlay"] is None  # attract waits forever
    card_and_pin(agent)  # PIN never comes: a device operation in progress
    await session.handle("start", {"service": "deposit"})
    await until(lambda: page.last["screen"] == "pin")
    clock.now += 1000
    session.tick()
    assert page.last["overlay"] is None
    session.cancel_operation()


async def test_language_switch_on_any_screen_sends_catalogue_and_reformats(
    tmp_path: Path,
) -> None:
    agent, session, page, _ = make(tmp_path)
    await sign_in(agent, session, page, "deposit")
    await session.handle("back", {})
    zh_accounts = page.last["data"]["accounts"]
    assert zh_accounts[0]["balance"] == "1,000.00 元"
    assert zh_accounts[1]["balance"] == "黄金 12.500 克"
    await session.handle("language", {"lang": "en"})
    catalogue = [f for f in page.frames if f["type"] == "catalogue"][-1]
    assert catalogue["lang"] == "en" and catalogue["messages"]["menu.title"]
    assert page.last["lang"] == "en" and page.last["screen"] == "menu"
    assert page.last["data"]["accounts"][0]["balance"] == "CNY 1,000.00"
    assert page.last["data"]["accounts"][1]["balance"] == "12.500 g gold"
    await session.handle("language", {})
    assert page.last["lang"] == "zh-CN"
    await session.handle("language", {"lang": "fr"})
    assert page.refusals[-1]["field"] == "lang"


async def test_display_settings_toggle_and_reset_with_the_session(tmp_path: Path) -> None:
    agent, session, page, _ = make(tmp_path)
    await session.handle("contrast", {})
    await session.handle("text_size", {})
    assert page.last["display"] == {"contrast": "high", "text": "large"}
    await sign_in(agent, session, page, "deposit")
    await session.handle("back", {})
    await session.handle("finish", {})
    await until(lambda: page.last["screen"] == "session_ended")
    assert page.last["display"] == {"contrast": "normal", "text": "normal"}


async def test_attract_follows_device_status_and_service_state(tmp_path: Path) -> None:
    agent, session, page, _ = make(tmp_path)
    agent.set_status("tube_station", DeviceStatus.HARDWARE_ERROR)
    session.tick()
    offered = {s["id"]: s["available"] for s in page.last["data"]["services"]}
    assert offered["deposit"] is False and offered["withdrawal"] is False
    assert offered["statement"] is True
    assert "notice.tube_unavailable" in page.last["data"]["notices"]
    agent.set_status("printer", DeviceStatus.USER_ERROR)
    session.tick()
    statement = next(s for s in page.last["data"]["services"] if s["id"] == "statement")
    assert statement == {
        "id": "statement",
        "available": True,
        "notice": "notice.printer_unavailable",
    }
    agent.service.set_maintenance(True)
    session.tick()
    assert page.last["screen"] == "out_of_service"
    assert page.last["data"] == {"reason": "maintenance"}
    agent.service.set_maintenance(False)
    session.tick()
    assert page.last["screen"] == "attract"
    # A service that is not available now is refused by name.
    await session.handle("start", {"service": "deposit"})
    assert page.refusals[-1]["field"] == "service"
    await session.handle("start", {"service": "nonsense"})
    assert page.refusals[-1]["field"] == "service"


async def test_unknown_actions_and_bad_data_are_refused_and_change_nothing(
    tmp_path: Path,
) -> None:
    agent, session, page, _ = make(tmp_path)
    before = len(page.screens)
    await session.handle("fly", {})
    await session.handle("start", "not an object")  # type: ignore[arg-type]
    assert [r["action"] for r in page.refusals] == ["fly", "start"]
    assert page.refusals[1]["field"] == "data"
    assert len(page.screens) == before


@pytest.fixture(autouse=True)
def quick_goodbye(monkeypatch: pytest.MonkeyPatch) -> None:
    from branchline.agent.kiosk.flows import card_pin

    monkeypatch.setattr(card_pin, "GOODBYE_SECONDS", 0.05)


async def test_run_forever_starts_on_attract_and_stops_cleanly(tmp_path: Path) -> None:
    agent, session, page, _ = make(tmp_path)
    task = asyncio.ensure_future(session.run_forever())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await session.stop()
    assert page.last["screen"] == "attract"


async def test_the_pads_clear_key_takes_the_dots_away(tmp_path: Path) -> None:
    agent, session, page, _ = make(tmp_path)
    card_and_pin(agent)
    pad = agent.owners["pin_pad"]
    await session.handle("start", {"service": "statement"})
    await until(lambda: page.last["screen"] == "pin")
    pad.key(1)
    pad.key(2)
    await until(lambda: page.last["data"]["digits"] == 2)
    pad.key(0, pp.KeyKind.CLEAR)
    await until(lambda: page.last["data"]["digits"] == 0)
    pad.key(1)
    await until(lambda: page.last["data"]["digits"] == 1)
    session.cancel_operation()


@pytest.mark.parametrize(
    ("completion", "code", "shown"),
    [
        (Completion.TIMEOUT, "entry_timeout", "timeout"),
        (Completion.HARDWARE_ERROR, "tamper", "device"),
    ],
)
async def test_pin_entry_problems_are_said_and_ok_returns_the_card(
    tmp_path: Path, completion: Completion, code: str, shown: str
) -> None:
    agent, session, page, _ = make(tmp_path)
    card_and_pin(agent)

    async def failed(params: dict[str, Any]) -> Any:
        raise DeviceError(completion, code, "pin pad says no")

    agent.owners["pin_pad"].scripts["read_pin"] = failed
    await session.handle("start", {"service": "statement"})
    await until(lambda: page.last["screen"] == "auth_error")
    assert page.last["data"] == {"code": shown}
    await session.handle("ok", {})
    await until(lambda: page.last["screen"] == "session_ended")
    assert agent.owners["card_reader"].calls[-1][0] == "eject"


async def test_the_bank_unreachable_during_sign_in_is_said(tmp_path: Path) -> None:
    from branchline.agent.uplink import UplinkUnavailable

    agent, session, page, _ = make(tmp_path)
    card_and_pin(agent).set()

    async def down(timeout: float | None = None, **body: Any) -> Any:
        raise UplinkUnavailable("not connected")

    agent.uplink.request = down  # type: ignore[method-assign]
    await session.handle("start", {"service": "statement"})
    await until(lambda: page.last["screen"] == "auth_error")
    assert page.last["data"] == {"code": "bank_unavailable"}


async def test_cheque_books_offered_only_with_their_devices(tmp_path: Path) -> None:
    agent, session, page, _ = make(tmp_path)
    for name in ("cheque_printer", "face_camera", "id_reader"):
        agent.add(name)
    session.tick()
    offered = {s["id"]: s["available"] for s in page.last["data"]["services"]}
    assert offered["cheque"] is True
    agent.set_status("face_camera", DeviceStatus.HARDWARE_ERROR)
    session.tick()
    offered = {s["id"]: s["available"] for s in page.last["data"]["services"]}
    assert offered["cheque"] is False and offered["deposit"] is True
