"""The staff console in Chromium against real processes: ``branchline-console`` started with a
clerk's certificate on a free loopback port of the kiosk tests' branch (server, simulator,
agent), its page opened in its own browser context beside the kiosk page. docs/console.md is
the contract every selector here relies on. Screenshots go to ``var/screenshots/console/``."""

from __future__ import annotations

import json
import re
import signal
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from playwright.sync_api import Browser, Locator, Page

from tests.browser.kiosk_support import ROOT, free_port, page_served
from tests.integration.stack import Proc, Stack, wait_for

SCREENSHOTS = ROOT / "var" / "screenshots" / "console"
# A staff workstation's screen.
VIEWPORT = {"width": 1600, "height": 1000}


def start_console(
    stack: Stack, who: str, lang: str = "en", port: int = 0, *, append: bool = False
) -> tuple[Proc, str]:
    """``branchline-console --as WHO`` for the stack's server (on ``port``, or a free one),
    served; the process and its page's address. ``append``: a restart keeps the log."""
    proc, url = spawn_console(stack, who, lang, port, append=append)
    wait_for(lambda: page_served(url), 30, f"the console of {who}")
    return proc, url


def spawn_console(
    stack: Stack, who: str, lang: str = "en", port: int = 0, *, append: bool = False
) -> tuple[Proc, str]:
    """``start_console`` without waiting for its page (start several, then wait for all)."""
    port = port or free_port()
    name = console_name(who)
    proc: Proc = stack._spawn(  # noqa: SLF001 - the stack's own process launcher
        name,
        ["branchline.server.console.main", "--target", f"127.0.0.1:{stack.server_port}",
         "--tls-dir", str(stack.pki), "--as", who, "--listen", f"127.0.0.1:{port}",
         "--lang", lang, "--state-dir", str(stack.root / name)],
        append=append,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}/"


def console_name(who: str) -> str:
    return "console-" + who.replace(":", "-")


@contextmanager
def console_process(stack: Stack, who: str, lang: str = "en", port: int = 0) -> Iterator[str]:
    """A console (``start_console``) for the ``with`` block; stopped after it, or the one
    ``restart_console`` started in its place."""
    _, url = start_console(stack, who, lang, port)
    try:
        yield url
    finally:
        stack.procs[console_name(who)].stop()


@contextmanager
def console_processes(stack: Stack, *whos: str, lang: str = "en") -> Iterator[list[str]]:
    """Several consoles (``console_process``) started together, each a Python start-up that
    a busy machine makes take seconds; their pages' addresses in ``whos``' order."""
    started: list[tuple[Proc, str]] = []
    ports: set[int] = set()
    try:
        for who in whos:
            port = free_port()
            while port in ports:  # none has bound yet: the kernel may hand one out twice
                port = free_port()
            ports.add(port)
            started.append(spawn_console(stack, who, lang, port))
        for who, (_, url) in zip(whos, started, strict=True):
            wait_for(lambda u=url: page_served(u), 30, f"the console of {who}")  # type: ignore[misc]
        yield [url for _, url in started]
    finally:
        for who, (proc, _) in zip(whos, started, strict=False):
            proc.stop()
            # Or the one ``restart_console`` started in its place.
            stack.procs[console_name(who)].stop()


def restart_console(stack: Stack, who: str, url: str, lang: str = "en") -> None:
    """Kill ``who``'s console process (a crash, nothing said) and start it again on the
    same port and state directory."""
    stack.procs[console_name(who)].stop(signal.SIGKILL)
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    start_console(stack, who, lang, port, append=True)


class Console:
    """A staff member's console page: what it received, and the buttons they press."""

    def __init__(self, browser: Browser, url: str, test_name: str) -> None:
        self.url = url
        self.context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        self.page: Page = self.context.new_page()
        self.frames: list[dict[str, Any]] = []
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._on_frame))
        self.test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        self.page.goto(url)
        self.page.locator('[data-role="connection"][data-state="connected"]').wait_for(
            state="attached", timeout=10_000
        )

    def _on_frame(self, payload: str | bytes) -> None:
        self.frames.append(json.loads(payload))

    def close(self) -> None:
        self.context.close()

    def state(self) -> dict[str, Any]:
        self.page.wait_for_timeout(1)
        states = [f for f in self.frames if f.get("type") == "state"]
        assert states, "the console page received no state"
        return states[-1]

    def refusals(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == "refused"]

    def row(self, txn_id: str, state: str = "", timeout: float = 30) -> Locator:
        """The carrier's row on the back-office screen (in ``state``), once it shows."""
        selector = f'[data-screen="backoffice"] tr[data-txn="{txn_id}"]'
        if state:
            selector += f'[data-state="{state}"]'
        row = self.page.locator(selector).first
        row.wait_for(state="visible", timeout=timeout * 1000)
        return row

    def shot(self, label: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test_name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def error(self) -> Locator:
        return self.page.locator('[data-role="error"]')


def newest_carrier(console: Console, state: str, timeout: float = 30) -> dict[str, Any]:
    """The newest carrier the console's state lists in ``state``."""

    def found() -> dict[str, Any] | None:
        rows = [
            c for c in console.state().get("backoffice", {}).get("carriers", [])
            if c["state"] == state
        ]  # fmt: skip
        return rows[-1] if rows else None

    return cast(dict[str, Any], wait_for(found, timeout, f"a carrier {state} on the console", 0.2))


def document_png(width: int = 96, height: int = 60) -> bytes:
    """A small picture of a card (a blue frame on pale blue) that shows as more than blank."""
    frame = bytes((20, 60, 140))
    inside = bytes((235, 240, 250))
    rows = b"".join(
        b"\0"
        + b"".join(
            frame if min(x, y, width - 1 - x, height - 1 - y) < 4 else inside for x in range(width)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
