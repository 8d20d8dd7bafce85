"""The console's options, count form and page server: loopback only, the count's checks by
field, and the page's WebSocket (catalogue then the full state, actions, refusals, language,
another origin refused), against a real server over mTLS."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from branchline.common.errors import InvalidArgument
from branchline.server.console import main as console_main
from branchline.server.console.count import parse_count
from branchline.server.console.redact import mask_id_number, mask_pan
from branchline.server.console.session import ConsoleSession
from branchline.server.console.settings import parse_listen
from branchline.server.console.web import ConsoleServer
from branchline.v1 import tube_pb2 as pb
from tests.unit.console_support import Stack, stack

__all__ = ["stack"]


def test_listen_is_loopback_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_listen("127.0.0.1:8790") == ("127.0.0.1", 8790)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen("localhost:8790") == ("localhost", 8790)
    for bad in ("0.0.0.0:8790", "192.168.1.5:8790", "example.com:80"):
        with pytest.raises(InvalidArgument) as caught:
            parse_listen(bad)
        assert caught.value.field == "listen" and caught.value.reason == "not_loopback"
    with pytest.raises(InvalidArgument) as caught:
        parse_listen("8790")
    assert caught.value.field == "listen"
    code = console_main.main(["--as", "teller:BO-1", "--insecure", "--listen", "0.0.0.0:8790"])
    assert code == console_main.EXIT_USAGE
    assert "not a loopback address" in capsys.readouterr().err
    assert console_main.main(["--as", "nobody", "--insecure"]) == console_main.EXIT_USAGE


def test_count_form_by_kind() -> None:
    cash = parse_count({"kind": "cash", "denominations": {"100": "3", "0.5": "3"}}, "CNY")
    assert (cash.asset.kind, cash.asset.amount, cash.note) == (
        pb.ASSET_KIND_CASH,
        "301.5",
        "[100x3 0.5x3]",
    )
    with pytest.raises(InvalidArgument) as caught:
        parse_count({"kind": "cash", "denominations": {"3": "1"}}, "CNY")
    assert caught.value.field == "denominations.3"
    with pytest.raises(InvalidArgument) as caught:
        parse_count({"kind": "cash", "denominations": {}}, "CNY")
    assert caught.value.field == "denominations"
    metal = parse_count({"kind": "metal", "amount": "12.5"}, "XAU")
    assert (metal.asset.kind, metal.asset.amount, metal.asset.currency) == (
        pb.ASSET_KIND_METAL,
        "12.5",
        "XAU",
    )
    with pytest.raises(InvalidArgument) as caught:
        parse_count({"kind": "metal", "amount": "-1"}, "XAU")
    assert caught.value.field == "amount"
    bill = parse_count(
        {"kind": "bill", "amount": "10000", "bill_id": " B-77 ", "maturity": "2026-09-01"}, "CNY"
    )
    assert (bill.asset.bill.bill_id, bill.asset.bill.maturity) == ("B-77", "2026-09-01")
    with pytest.raises(InvalidArgument) as caught:
        parse_count({"kind": "bill", "amount": "10000"}, "CNY")
    assert caught.value.field == "bill_id"
    with pytest.raises(InvalidArgument) as caught:
        parse_count({"kind": "gems"}, "CNY")
    assert caught.value.field == "kind"


def test_masks() -> None:
    assert mask_pan("4761731234560010") == "476173******0010"
    assert mask_pan("476173******0010") == "476173******0010"
    assert mask_id_number("11010519491231002X") == "1101************2X"


async def frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive(), 10)
    data: dict[str, Any] = json.loads(message.data)
    return data


async def until_type(ws: aiohttp.ClientWebSocketResponse, kind: str, **match: Any) -> Any:
    while True:
        data = await frame(ws)
        if data["type"] == kind and all(data.get(k) == v for k, v in match.items()):
            return data


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_page_websocket_state_actions_refusals(stack: Stack) -> None:
    server = ConsoleServer(ConsoleSession(stack.settings("teller:BO-1", lang="zh-CN")))
    url = await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                assert response.status == 200
                assert "default-src 'self'" in response.headers["Content-Security-Policy"]
                assert 'data-role="connection"' in await response.text()
            async with http.get(url + "static/app.js") as response:
                assert response.status == 200
            # DNS rebinding: another site's name pointed at 127.0.0.1 is not served.
            async with http.get(url, headers={"Host": "evil.example:8790"}) as response:
                assert response.status == 421
            async with http.ws_connect(url + "ws", headers={"Origin": "http://evil.example"}) as ws:
                pass
        pytest.fail("a WebSocket from another origin was accepted")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 403
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(url + "ws") as ws:
            catalogue = await frame(ws)
            assert catalogue["type"] == "catalogue" and catalogue["lang"] == "zh-CN"
            assert catalogue["messages"]["view.backoffice"] == "后台"
            state = await until_type(
                ws, "state", views=["backoffice", "tasks", "calls", "cheques", "recordings"]
            )
            assert state["me"]["id"] == "BO-1" and "backoffice" in state
            await ws.send_str(json.dumps({"type": "action", "action": "language"}))
            catalogue = await until_type(ws, "catalogue")
            assert catalogue["lang"] == "en"
            await ws.send_str(
                json.dumps(
                    {
                        "type": "action",
                        "action": "backoffice.search",
                        "data": {"from_date": "yesterday"},
                    }
                )
            )
            refused = await until_type(ws, "refused")
            assert (refused["field"], refused["status"]) == ("from_date", "INVALID_ARGUMENT")
            await ws.send_str("not json")
            refused = await until_type(ws, "refused")
            assert refused["field"] == "frame"
            await ws.send_str(json.dumps({"type": "action", "action": "teleport"}))
            refused = await until_type(ws, "refused")
            assert (refused["field"], refused["reason"]) == ("action", "unknown_action")
    finally:
        await server.stop()


def test_catalogues_hold_every_key_the_page_uses() -> None:
    import re

    from branchline.server.console.i18n import catalogue
    from branchline.server.console.web import static_dir

    en, zh = catalogue("en"), catalogue("zh-CN")
    assert set(en) == set(zh)
    for script in sorted(static_dir().rglob("*.js")):  # app.js and every view module
        used = set(re.findall(r'\bt\("([\w.]+)"', script.read_text()))
        assert used <= set(en), (script.name, sorted(used - set(en)))
    tasks = (static_dir() / "views" / "tasks.js").read_text()
    assert {"task.fields", "task.materials", "task.material.no_image"} <= set(
        re.findall(r'\bt\("([\w.]+)"', tasks)
    )
    # The task fields' labels the console knows, in both languages (task_facts.py).
    assert {"task.field.amount", "task.field.id_number", "task.field_withheld"} <= set(zh)


def test_catalogues_name_every_id_the_server_sends() -> None:
    """Every tube event kind, tube state and kind, actor, incident kind, device name, device
    status and service state the server can send has words in both catalogues: the lists are
    the server's own, so an id added there later fails here until it is named."""
    from branchline.agent.config import DEVICE_NAMES
    from branchline.server.console.i18n import catalogue
    from branchline.server.tube import model as m
    from branchline.v1 import common_pb2 as cpb

    def enum_ids(enum: Any, prefix: str) -> list[str]:
        return [name.removeprefix(prefix).lower() for name in enum.keys()]

    wanted = (
        [f"tube.event.{e}" for e in m.EVENTS]
        + [f"state.{s}" for s in m.STATES]
        + [f"kind.{k}" for k in m.KINDS]
        + [f"asset.{a}" for a in (m.CASH, m.METAL, m.BILL)]
        + [f"actor.{a}" for a in m.ACTORS]
        + [f"incident.{i}" for i in m.INCIDENTS]
        + [f"device.name.{d}" for d in DEVICE_NAMES]
        + [f"device.{s}" for s in enum_ids(cpb.DeviceStatus, "DEVICE_STATUS_")]
        + [f"service.{s}" for s in enum_ids(cpb.ServiceState, "SERVICE_STATE_")]
    )
    for lang in ("en", "zh-CN"):
        missing = [key for key in wanted if key not in catalogue(lang)]
        assert missing == [], (lang, missing)
        blank = [key for key in wanted if not catalogue(lang)[key].strip()]
        assert blank == [], (lang, blank)


def test_catalogues_name_every_id_the_other_views_show() -> None:
    """The ids the other views name through the page's ``named()``: calls (modes, states,
    commands, completions), tasks (states, presences, outcomes), recordings (kinds, cameras),
    the assistant (question statuses, handover reasons, topics, languages, guided flows), the
    cheque sale (book types, display states), who did something (every role): each list the
    server's own."""
    from branchline.server import auth
    from branchline.server.assistant import knowledge, learning, rules, sensitive
    from branchline.server.cheques import desk, seed, view
    from branchline.server.console.i18n import catalogue
    from branchline.server.dispatch import convert
    from branchline.server.dispatch.calls import model as calls
    from branchline.server.recordings import service as recordings

    wanted = (
        [f"call.mode.{m}" for m in calls.MODES]
        + [f"call.state.{s}" for s in (*calls.OPEN, calls.ENDED, calls.LEFT)]
        + [f"call.command.{k}" for k in calls.COMMAND_KINDS]
        + [f"call.completion.{c}" for c in calls.COMPLETIONS]
        + [f"task.state.{s}" for s in convert.TASK_STATES]
        + [f"presence.{p}" for p in convert.PRESENCES]
        + [f"task.outcome.{o}" for o in convert.OUTCOMES]
        + [f"rec.kind.{k}" for k in recordings.KINDS]
        + [f"rec.source.{s}" for s in recordings.SOURCES]
        + [f"kb.status.{s}" for s in learning.QUESTION_STATUSES]
        + [f"kb.reason.{r}" for r in rules.HANDOVER_REASONS]
        + [f"kb.topic.{topic}" for topic, _ in sensitive.TOPICS]
        + [f"lang.name.{lang.lower()}" for lang in knowledge.LANGS]
        + [f"kb.flow.{flow}" for flow in knowledge.ACTIONS if flow]
        + [f"actor.{role}" for role in (auth.TERMINAL, auth.OPERATOR, auth.TELLER, auth.LOBBY)]
        + [f"actor.{auth.MOBILE}"]
        + [f"book.{b[0]}" for b in seed.BOOK_TYPES]
        + [f"display.state.{s}" for s in (*desk.ON_SHOW, *view.FINAL)]
    )
    for lang in ("en", "zh-CN"):
        missing = [key for key in wanted if not catalogue(lang).get(key, "").strip()]
        assert missing == [], (lang, missing)
