"""A small agent for kiosk tests: real service state, sessions, rate book and spy hubs; devices
and the bank faked at their plain-method boundary (``owner.submit``, ``uplink.request``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from branchline.agent.customer.session import SessionStore
from branchline.agent.device_owner import DeviceSnapshot, SpyHub
from branchline.agent.kiosk.session import KioskSession
from branchline.agent.kiosk.settings import KioskSettings
from branchline.agent.rates import RateBook
from branchline.agent.service_state import ServiceStateMachine
from branchline.drivers.base import Completion, DeviceError, DeviceStatus
from branchline.drivers.pin_pad import protocol as pp
from branchline.v1 import customer_info_pb2 as info_pb
from branchline.v1 import terminal_link_pb2 as link_pb2

PAN = "4761739001010010"
TOKEN = "server-session-token-0123456789abcdef"

Script = Callable[[dict[str, Any]], Awaitable[Any]]


class FakeOwner:
    """A device owner: ``submit`` runs the scripted handler for the command."""

    def __init__(self, name: str, status: DeviceStatus = DeviceStatus.ONLINE) -> None:
        self.name = name
        self.spy = SpyHub()
        self.spy.bind(asyncio.get_event_loop())
        self.snapshot = DeviceSnapshot(name, "fake", status, "")
        self.config = SimpleNamespace(options=SimpleNamespace(take_timeout=20.0))
        self.scripts: dict[str, Script] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def submit(
        self, name: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        self.calls.append((name, dict(params or {})))
        script = self.scripts.get(name)
        if script is None:
            raise DeviceError(Completion.UNSUPPORTED, "unknown_command", f"no {name}")
        return await script(dict(params or {}))

    def key(self, count: int, kind: pp.KeyKind = pp.KeyKind.DIGIT) -> None:
        """The pad reports a key: a KEY_EVENT frame on the wire, as the spy sees it."""
        frame = pp.encode_message(pp.KeyEvent(seq=7, kind=kind, count=count))
        self.spy.tap("rx", frame)


@dataclass
class FakeUplink:
    connected: bool = True
    pin_replies: list[link_pb2.PinVerifyResult] = field(default_factory=list)
    statement: info_pb.Statement | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    # What the server answers to pairing_cancel, and the push handlers the agent installed.
    pairing_reply: Any = None
    push_handlers: dict[str, Any] = field(default_factory=dict)

    def on_push(self, body: str, handler: Any) -> None:
        self.push_handlers[body] = handler

    async def request(self, timeout: float | None = None, **body: Any) -> Any:
        self.requests.append(body)
        if "pairing_cancel" in body:
            return link_pb2.ServerMessage(pairing_update=self.pairing_reply)
        if "pin_verify" in body:
            return link_pb2.ServerMessage(pin_verify_result=self.pin_replies.pop(0))
        if "statement_request" in body:
            return link_pb2.ServerMessage(statement=self.statement)
        raise AssertionError(f"unexpected request {sorted(body)}")


class FakeCalls:
    def __init__(self) -> None:
        self.call: Any = None


class FakeEngine:
    def __init__(self) -> None:
        self.live: dict[str, Any] = {}

    def busy(self) -> Any:
        return next((x for x in self.live.values() if not x.finished), None)


class FakeAgent:
    def __init__(self, state_dir: Path, settings: KioskSettings | None = None) -> None:
        self.config = SimpleNamespace(
            terminal=SimpleNamespace(terminal_id="K-1", branch="BR-1", state_dir=state_dir),
            kiosk=settings or KioskSettings(port=0),
        )
        self.service = ServiceStateMachine(("card_reader", "pin_pad"), lambda: None)
        self.owners: dict[str, FakeOwner] = {}
        for name in ("card_reader", "pin_pad", "printer", "tube_station"):
            self.add(name)
        self.uplink = FakeUplink()
        self.sessions = SessionStore()
        self.rates = RateBook(state_dir, lambda: self.uplink.connected)
        self.calls = FakeCalls()
        self.tube = FakeEngine()
        self.cheques = FakeEngine()  # the cheque purchase engine: no purchase here
        # No recording spool: the kiosk app adds no recording routes.
        self.recordings = None

    def add(self, name: str, status: DeviceStatus = DeviceStatus.ONLINE) -> FakeOwner:
        owner = FakeOwner(name, status)
        self.owners[name] = owner
        self.service.device_changed(name, status)
        return owner

    def set_status(self, name: str, status: DeviceStatus) -> None:
        owner = self.owners[name]
        owner.snapshot = DeviceSnapshot(name, "fake", status, "")
        self.service.device_changed(name, status)

    def device_snapshots(self) -> list[DeviceSnapshot]:
        return [o.snapshot for o in self.owners.values()]


def verified(attempts_left: int = 3) -> link_pb2.PinVerifyResult:
    result = link_pb2.PinVerifyResult(
        verified=True,
        attempts_left=attempts_left,
        session_token=TOKEN,
        customer_id="C-1",
        pan_masked="476173******0010",
    )
    result.accounts.add(
        account_id="ACC-1", kind="cash", currency="CNY", balance="1000.00", available="900.00"
    )
    result.accounts.add(
        account_id="ACC-G", kind="metal", currency="XAU", balance="12.5", available="12.5"
    )
    return result


def wrong_pin(attempts_left: int, locked: bool = False) -> link_pb2.PinVerifyResult:
    return link_pb2.PinVerifyResult(
        verified=False, attempts_left=attempts_left, locked=locked, pan_masked="476173******0010"
    )


def card_and_pin(agent: FakeAgent, keys: int = 4) -> asyncio.Event:
    """Script a card that is inserted at once and a PIN of ``keys`` digits; the PIN pad waits
    for the returned event before it reports the keys and answers."""
    go = asyncio.Event()
    reader, pad = agent.owners["card_reader"], agent.owners["pin_pad"]

    async def accept(params: dict[str, Any]) -> Any:
        return {"card": "inserted"}

    async def read_chip(params: dict[str, Any]) -> Any:
        return {"pan": PAN, "track2": f";{PAN}=2512101?"}

    async def read_pin(params: dict[str, Any]) -> Any:
        await go.wait()
        for count in range(1, keys + 1):
            pad.key(count)
            await asyncio.sleep(0.01)
        pad.key(keys, pp.KeyKind.ENTER)
        await asyncio.sleep(0.01)
        return {"pin_block": "00" * 8, "ksn": "FF" * 10, "format": 0, "digits": keys}

    async def eject(params: dict[str, Any]) -> Any:
        return {"card": "taken"}

    reader.scripts.update(accept_card=accept, read_chip=read_chip, eject=eject)
    pad.scripts["read_pin"] = read_pin
    return go


class Page:
    """What a page received: every frame, decoded, in order."""

    def __init__(self, session: KioskSession) -> None:
        self.texts: list[str] = []
        self.disconnect = session.connect(self.texts.append)

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(t) for t in self.texts]

    @property
    def screens(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "screen"]

    @property
    def last(self) -> dict[str, Any]:
        return self.screens[-1]

    @property
    def refusals(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "refused"]


async def until(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def rate_table(version: int = 3) -> info_pb.RateTable:
    table = info_pb.RateTable(version=version, base_currency="CNY", source="test")
    table.rates.add(currency="USD", bid="7.10", ask="7.20")
    table.rates.add(currency="EUR", bid="7.70", ask="7.85")
    table.as_of.FromDatetime(datetime(2026, 12, 6, 9, 30, tzinfo=UTC))
    return table
