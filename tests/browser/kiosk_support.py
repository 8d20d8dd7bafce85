"""The kiosk page in Debian's Chromium against real server, simulator and agent processes.

A branch with a tube (``tests/integration/tube_support.py``) whose agent serves the kiosk page
(``[kiosk]``, on a fixed free loopback port so a restarted agent serves the same address the
page reconnects to). The customer acts only through the page and the simulator's hands; the
back office through ``branchline-teller`` (its ``main``, in process) and the simulator's
back-office station. ``docs/kiosk.md`` is the contract every selector here relies on.

Shared by ``tests/browser`` and ``bench/kiosk_page.py``; the back office is in
``back_office.py``, the secrets check in ``page_secrets.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
from playwright.sync_api import (
    Browser,
    Error,
    Page,
    Playwright,
    Response,
    WebSocket,
    expect,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from branchline.common.grpc_errors import error_details
from branchline.sim.devices.card_reader import GATE_CLOSED
from tests.integration.pin_support import PAN, pin_entry_active
from tests.integration.stack import Stack, wait_for
from tests.integration.tube_support import PAN2, start_agent, start_branch

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Flags for a headless test browser that reaches nothing but the agent's page.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "var" / "screenshots" / "kiosk"
# A kiosk's portrait screen.
VIEWPORT = {"width": 1080, "height": 1440}
LANGUAGES = ("zh-CN", "en")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kiosk_table(port: int, **settings: float | str) -> str:
    lines = [f'listen = "127.0.0.1:{port}"']
    for key, value in settings.items():
        lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    return "\n[kiosk]\n" + "\n".join(lines) + "\n"


@dataclass
class KioskBranch:
    """The branch's processes and the address of the agent's kiosk page."""

    stack: Stack
    url: str

    def kill_agent(self) -> None:
        import signal

        self.stack.procs["agent"].stop(signal.SIGKILL)
        self.stack.agent_socket.unlink(missing_ok=True)

    def start_agent(self) -> None:
        """Start the agent again on the same config and port; wait for devices and link."""
        start_agent(self.stack)
        wait_for(lambda: page_served(self.url), 30, "the kiosk page served again")


def page_served(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url + "healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def kiosk_branch(
    logs: Path | None = None,
    *,
    customer_timeout: float = 60,
    extra_devices: tuple[str, ...] = (),
    server_extra: tuple[str, ...] = (),
    **settings: float | str,
) -> Iterator[KioskBranch]:
    """Start the branch with ``[kiosk]`` ``settings``; stop it and keep the logs after.
    ``server_extra``: more server options (e.g. ``--mobile-url``)."""
    # Unix socket paths are limited to 107 bytes: keep the root short.
    root = Path(tempfile.mkdtemp(prefix="bl-k-", dir="/tmp"))
    stack = Stack(root)
    stack.init_pki()
    port = free_port()
    try:
        start_branch(
            stack,
            customer_timeout=customer_timeout,
            delivery_timeout=60,
            take_timeout=15,
            agent_extra=kiosk_table(port, **settings),
            # As at a branch: a tube fault takes the tube services away, not the terminal.
            required_devices=("card_reader", "pin_pad"),
            extra_devices=extra_devices,
            # Nothing balances load onto this server: it stops without the health drain.
            server_extra=("--shutdown-drain", "0", *server_extra),
        )
        url = f"http://127.0.0.1:{port}/"
        wait_for(lambda: page_served(url), 30, "the kiosk page")
        yield KioskBranch(stack, url)
    finally:
        stack.stop_all()
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            for proc in stack.procs.values():
                (logs / proc.log_path.name).write_text(proc.log())
        for proc in stack.procs.values():
            assert PAN not in proc.log(), f"{proc.name}'s log holds a full card number"
            assert PAN2 not in proc.log(), f"{proc.name}'s log holds a full card number"
        shutil.rmtree(root, ignore_errors=True)


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@dataclass
class Received:
    """Everything a page received: WebSocket frames and HTTP response bodies."""

    frames: list[str] = field(default_factory=list)
    responses: list[tuple[str, int, bytes]] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("websocket", self._on_websocket)
        page.on("response", self._on_response)

    def _on_websocket(self, ws: WebSocket) -> None:
        ws.on("framereceived", self._on_frame)

    def _on_frame(self, payload: str | bytes) -> None:
        self.frames.append(
            payload if isinstance(payload, str) else payload.decode("utf-8", errors="replace")
        )

    def _on_response(self, response: Response) -> None:
        # The body at once, while the page still holds it (a WebSocket upgrade has none).
        try:
            body = response.body()
        except Error:
            body = b""
        self.responses.append((response.url, response.status, body))

    def states(self) -> list[dict[str, Any]]:
        found = []
        for frame in self.frames:
            try:
                message = json.loads(frame)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("type") == "screen":
                found.append(message)
        return found

    def everything(self) -> str:
        bodies = [body.decode("utf-8", errors="replace") for _, _, body in self.responses]
        return "\n".join([*self.frames, *bodies])


class Kiosk:
    """The customer at the terminal: the page in Chromium plus the simulator's hands."""

    def __init__(self, page: Page, branch: KioskBranch, test_name: str) -> None:
        self.page = page
        self.branch = branch
        self.stack = branch.stack
        self.received = Received()
        self.received.attach(page)
        self.test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)

    # -- looking ---------------------------------------------------------------------------

    def open(self) -> None:
        self.page.goto(self.branch.url)
        self.wait_connected()

    def wait_connected(self, timeout: float = 10) -> None:
        self.page.locator('[data-role="connection"][data-state="connected"]').wait_for(
            state="attached", timeout=timeout * 1000
        )

    def screen(self) -> str:
        shown = self.page.locator("[data-screen]:visible")
        return str(shown.first.get_attribute("data-screen")) if shown.count() else ""

    def state(self) -> dict[str, Any]:
        """The newest ``screen`` frame the page received."""
        self.page.wait_for_timeout(1)  # let Playwright deliver frames already received
        states = self.received.states()
        assert states, "the page received no screen frame"
        return states[-1]

    def data(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.state().get("data") or {})

    def wait_screen(
        self,
        name: str,
        timeout: float = 30,
        until: Callable[[dict[str, Any]], bool] | None = None,
        shot: str = "",
    ) -> dict[str, Any]:
        """Wait until ``name`` is the visible screen (and ``until(data)``); screenshot it."""
        self.page.locator(f'[data-screen="{name}"]').wait_for(
            state="visible", timeout=timeout * 1000
        )
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state.get("screen") == name and (until is None or until(state.get("data") or {})):
                break
            assert time.monotonic() < deadline, (
                f"screen {name!r} never met the condition; last state {state}"
            )
            self.page.wait_for_timeout(100)
        self.shot(shot or name)
        return cast(dict[str, Any], state.get("data") or {})

    def shot(self, label: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test_name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def lang(self) -> str:
        return str(self.page.locator("html").get_attribute("lang"))

    def text(self) -> str:
        return str(self.page.locator("[data-screen]:visible").first.inner_text())

    # -- acting on the page ----------------------------------------------------------------

    def button(self, action: str, **attrs: str) -> Any:
        selector = f'[data-action="{action}"]' + "".join(
            f'[data-{k.replace("_", "-")}="{v}"]' for k, v in attrs.items()
        )
        return self.page.locator(selector).locator("visible=true").first

    def click(self, action: str, **attrs: str) -> None:
        self.button(action, **attrs).click()

    def fill(self, name: str, value: str) -> None:
        """Set the visible input named ``name``: a select, a choice button or a text box."""
        field_ = self.page.locator(f'[data-screen] [name="{name}"]').locator("visible=true")
        if field_.count():
            first = field_.first
            tag = first.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
            if tag.startswith("select"):
                first.select_option(value)
            elif tag in ("input:radio", "input:checkbox"):
                self.page.locator(f'[name="{name}"][value="{value}"]').check()
            elif tag.startswith("button"):
                self.page.locator(f'button[name="{name}"][data-value="{value}"]').click()
            else:
                first.fill(value)
            return
        self.page.locator(f'[data-value="{value}"]').locator("visible=true").first.click()

    def choose(self, action: str, value: str) -> None:
        """Press the choice button ``value`` of ``action`` (e.g. a statement's account)."""
        marked = self.button(action, value=value)
        if marked.count():
            marked.click()
            return
        # NEEDS.md: not every choice carries data-value yet; its label is the value.
        self.page.locator(f'[data-action="{action}"]', has_text=value).locator(
            "visible=true"
        ).first.click()

    def back_to_attract(self, timeout: float = 90) -> None:
        """Whatever a failed test left: leave every screen the way a customer would."""
        deadline = time.monotonic() + timeout
        while self.screen() != "attract":
            assert time.monotonic() < deadline, f"stuck on {self.screen()!r}"
            screen = self.screen()
            if screen == "take_card":
                try:
                    self.stack.sim_act("card_reader", "take")
                except grpc.RpcError:
                    pass
            elif screen == "pin":
                self.stack.sim_act("pin_pad", "press", keys="X")
            elif screen == "tube" and self.button("cancel").count() == 0:
                pass  # the engine ends it by its own rules
            elif screen == "video" and self.button("leave").count():
                self._click_if_still_there("leave")
            else:
                for action in ("cancel", "back", "finish", "done", "ok"):
                    if self.button(action).count():
                        self._click_if_still_there(action)
                        break
            self.page.wait_for_timeout(500)

    def _click_if_still_there(self, action: str) -> None:
        # The screen can move on between seeing a button and pressing it (the engine's own
        # timers, a click just made): a short try, and the loop looks at the page again.
        try:
            self.button(action).click(timeout=3000)
        except PlaywrightTimeoutError:
            pass

    def switch_language(self) -> str:
        """Press the language switch: the page turns to the other language; returns it."""
        before, text = self.lang(), self.text()
        screen = self.screen()
        self.click("language")
        other = next(lang for lang in LANGUAGES if lang != before)
        self.page.locator(f'html[lang="{other}"]').wait_for(state="attached", timeout=5000)
        self.page.locator(f'[data-screen="{screen}"]').wait_for(state="visible", timeout=5000)
        wait_for(lambda: self.text() != text, 5, f"the {screen} screen's text in {other}")
        self.shot(f"{screen}-{other}")
        return other

    def check_both_languages(self) -> None:
        """Switch to the other language and back on the current screen."""
        first = self.lang()
        self.switch_language()
        assert self.switch_language() == first
        assert self.lang() == first

    # -- the simulator's hands -------------------------------------------------------------

    def insert_card(self, card: str = "visa") -> None:
        """Push the card in; a person pushes again while the gate is still opening."""

        def push() -> bool:
            try:
                self.stack.sim_act("card_reader", "insert", card=card)
            except grpc.RpcError as exc:
                if error_details(exc).reason == GATE_CLOSED:
                    return False
                raise
            return True

        wait_for(push, 20, "the card reader to take the card", interval=0.2)

    def type_pin(self, pin: str, check_dots: bool = True) -> None:
        """One key at a time on the PIN pad: after each, one more dot on the page."""
        wait_for(lambda: pin_entry_active(self.stack), 30, "PIN entry started")
        self.wait_screen("pin")
        dots = self.page.locator('[data-role="pin-dot"]')
        for typed, key in enumerate(pin, start=1):
            self.stack.sim_act("pin_pad", "press", keys=key)
            if check_dots:
                expect(dots).to_have_count(typed, timeout=5000)
        self.shot("pin-dots")
        self.stack.sim_act("pin_pad", "press", keys="E")

    def sign_in(self, service: str, pin: str = "", card: str = "visa") -> None:
        """From attract: choose ``service``, insert the card, type the PIN."""
        from tests.integration.pin_support import PIN

        self.wait_screen("attract")
        self.click("start", service=service)
        self.wait_screen("card")
        self.insert_card(card)
        self.type_pin(pin or PIN)

    def take_card(self, timeout: float = 30) -> None:
        self.wait_screen("take_card", timeout)
        self.stack.sim_act("card_reader", "take")

    def finish(self) -> None:
        """From the menu: end the session, take the card, back to attract."""
        self.wait_screen("menu")
        self.click("finish")
        self.take_card()
        self.wait_screen("attract", timeout=30)


def screenshots_of(test_name: str) -> list[Path]:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
    return sorted(SCREENSHOTS.glob(f"{name}-*.png"))
