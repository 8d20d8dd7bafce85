"""The kiosk session: the one state the customer's screen shows, and what moves it.

The session holds the current screen (name + data), the language, the on-screen display
settings, the inactivity warning and the signed-in customer. Pages are views: each gets the
full state after every change (``publish``) and sends actions (``handle``), which the
current screen's flow module (``flows/``) carries out over the agent's own services.
Long steps (card and PIN, a tube transaction, printing) run as one *operation* task, so a
page's socket is never held up; a new operation replaces the previous one.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from branchline.agent.kiosk import i18n, redact
from branchline.agent.kiosk.settings import LANGUAGES, KioskSettings
from branchline.common.errors import DomainError, FailedPrecondition, InvalidArgument
from branchline.common.logs import log_event

if TYPE_CHECKING:
    from branchline.agent.customer.session import CustomerSession
    from branchline.agent.daemon import Agent
    from branchline.agent.kiosk.flows.phone import PhonePairing

log = logging.getLogger("branchline.agent.kiosk")

Handler = Callable[["KioskSession", str, dict[str, Any]], Awaitable[None]]
Send = Callable[[str], None]

# How often live screens (services, rates, queue) are re-derived and timers checked.
TICK = 0.5
# How long the resuming screen waits for the engine to recover a journaled transaction.
RESUME_WAIT = 15.0
# Screens that wait for the customer and so run the inactivity timer.
TIMED = frozenset(
    {
        "menu",
        "deposit_form",
        "withdrawal_form",
        "withdrawal_quote",
        "statement",
        "rates",
        "pin_failed",
        "auth_error",
        "card_retained",
        "assistant",
        # A phone's job waiting for the customer here: nobody there ends it (abandoned).
        "phone_job",
        "phone_job_confirm",
    }
)
# Actions every screen takes.
GLOBAL_ACTIONS = frozenset({"language", "contrast", "text_size", "more_time"})
DEFAULT_DISPLAY = {"contrast": "normal", "text": "normal"}


class KioskSession:
    def __init__(
        self,
        agent: Agent,
        settings: KioskSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.agent = agent
        self.settings = settings
        self.clock = clock
        self.lang = settings.language
        self.display = dict(DEFAULT_DISPLAY)
        # Until run_forever knows whether a transaction is being recovered: never attract first.
        self.screen = "resuming"
        self.data: dict[str, Any] = {}
        self.seq = 0
        self.customer: CustomerSession | None = None
        # The service chosen on attract, carried out once the customer has signed in.
        self.chosen = ""
        # Whether the customer's card is in the reader (set when it was read).
        self.card_in = False
        # Flow scratch data that is not shown (e.g. the transaction followed).
        self.scratch: dict[str, Any] = {}
        # The phone pairing the attract screen shows (flows/phone.py); None without a server.
        self.phone: PhonePairing | None = None
        # The video call's signalling relay (call_media.py); None without a page server.
        self.call_media: Any = None
        self._senders: set[Send] = set()
        self._operation: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._device_ops = 0
        self._last_activity = clock()
        self._warning_until: float | None = None
        self._last_sent = ""

    # -- what pages receive ------------------------------------------------------------------

    def state_frame(self) -> dict[str, Any]:
        overlay = None
        if self._warning_until is not None:
            left = max(0, round(self._warning_until - self.clock()))
            overlay = {"name": "timeout-warning", "seconds": left}
        return {
            "type": "screen",
            "seq": self.seq,
            "screen": self.screen,
            "lang": self.lang,
            "data": self.data,
            "overlay": overlay,
            "display": dict(self.display),
        }

    def catalogue_frame(self) -> dict[str, Any]:
        return {"type": "catalogue", "lang": self.lang, "messages": i18n.catalogue(self.lang)}

    def secrets(self) -> tuple[str, ...]:
        """What must never reach a page, whatever a screen was built with."""
        if self.customer is None:
            return ()
        return (self.customer.token, self.customer.session_id)

    def encode(self, frame: dict[str, Any]) -> str:
        return redact.encode(frame, self.secrets())

    def connect(self, send: Send) -> Callable[[], None]:
        """A page connected: it gets the catalogue and the current screen, then every change."""
        send(self.encode(self.catalogue_frame()))
        send(self.encode(self.state_frame()))
        self._senders.add(send)
        return lambda: self._senders.discard(send)

    def _broadcast(self, text: str) -> None:
        for send in list(self._senders):
            try:
                send(text)
            except Exception as exc:  # a page that went away must not stop the others
                log_event(log, "kiosk_send_failed", logging.WARNING, error=repr(exc))
                self._senders.discard(send)

    def send_frame(self, frame: dict[str, Any], *, opaque: bool = False) -> None:
        """A frame of another type to every page. ``opaque``: a video call's SDP or ICE
        candidate from the teller's browser, sent as it is (the card-number scrub would
        mangle its long random numbers, and it never holds the customer's data)."""
        if opaque:
            self._broadcast(json.dumps(frame, ensure_ascii=False, separators=(",", ":")))
        else:
            self._broadcast(self.encode(frame))

    def keep(self, task: asyncio.Task[None]) -> None:
        """Run ``task`` beside the session until it stops."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def publish(self) -> None:
        self.seq += 1
        text = self.encode(self.state_frame())
        self._last_sent = text
        self._broadcast(text)

    def show(self, screen: str, **data: Any) -> None:
        """Move to ``screen`` with ``data`` (the full data of that screen)."""
        self.screen = screen
        self.data = data
        self._warning_until = None
        self._last_activity = self.clock()
        self.publish()

    def update(self, **data: Any) -> None:
        """Change some of the current screen's data; published only when it changed."""
        merged = {**self.data, **data}
        if merged != self.data:
            self.data = merged
            self.publish()

    def refuse(self, exc: DomainError, action: str) -> None:
        field = exc.field.rsplit(".", 1)[-1] if exc.field else ""
        key = f"refused.{exc.reason}"
        known = i18n.catalogue(self.lang)
        message = known[key] if key in known else i18n.text(self.lang, "refused.generic")
        frame = {"type": "refused", "action": action, "field": field, "message": message}
        # The reason's detail is the engine's English text: the page gets it only when no
        # catalogue message says it better, and never with a secret (scrubbed like all frames).
        if key not in known:
            frame["detail"] = exc.message[:200]
        self._broadcast(self.encode(frame))

    # -- customer actions --------------------------------------------------------------------

    def activity(self) -> None:
        self._last_activity = self.clock()
        if self._warning_until is not None:
            self._warning_until = None
            self.publish()

    async def handle(self, action: str, data: dict[str, Any]) -> None:
        """One action from a page: global ones here, the rest by the current screen's flow."""
        from branchline.agent.kiosk.flows import HANDLERS

        try:
            if not isinstance(action, str) or not action:
                raise InvalidArgument("action", "must name an action", reason="invalid_action")
            if not isinstance(data, dict):
                raise InvalidArgument("data", "must be an object", reason="invalid_argument")
            if action in GLOBAL_ACTIONS:
                self._global(action, data)
                return
            self.activity()
            handler = HANDLERS.get(self.screen)
            if handler is None:
                raise FailedPrecondition(
                    f"action: the {self.screen} screen takes no {redact_action(action)}",
                    reason="wrong_screen",
                )
            await handler(self, action, data)
        except DomainError as exc:
            self.refuse(exc, action if isinstance(action, str) else "")

    def _global(self, action: str, data: dict[str, Any]) -> None:
        if action == "language":
            wanted = data.get("lang")
            if wanted is None:
                wanted = LANGUAGES[1 - LANGUAGES.index(self.lang)]
            if wanted not in LANGUAGES:
                raise InvalidArgument(
                    "lang", f"must be one of {', '.join(LANGUAGES)}", reason="unknown_language"
                )
            self.lang = str(wanted)
            self._last_activity = self.clock()
            self._broadcast(self.encode(self.catalogue_frame()))
            self.relabel()
            self.publish()
        elif action == "contrast":
            self.display["contrast"] = "normal" if self.display["contrast"] == "high" else "high"
            self.activity()
            self.publish()
        elif action == "text_size":
            self.display["text"] = "normal" if self.display["text"] == "large" else "large"
            self.activity()
            self.publish()
        elif action == "more_time":
            if self._warning_until is None:
                raise FailedPrecondition(
                    "more_time: no time limit is running out", reason="no_warning"
                )
            self.activity()

    def relabel(self) -> None:
        """Re-format the current screen's values in the new language."""
        from branchline.agent.kiosk.flows import RELABEL

        relabel = RELABEL.get(self.screen)
        if relabel is not None:
            relabel(self)

    # -- operations --------------------------------------------------------------------------

    def run(self, work: Awaitable[None], name: str) -> None:
        """Run ``work`` as the session's operation, replacing (canceling) the one before."""
        self.cancel_operation()
        self._operation = asyncio.ensure_future(self._guard(work, name))
        self._operation.add_done_callback(_close_unstarted(work))

    def spawn(self, work: Awaitable[None], name: str, action: str) -> None:
        """Run a customer step beside the operation; its refusal goes back to the pages."""
        task = asyncio.ensure_future(self._guard(work, name, action))
        task.add_done_callback(_close_unstarted(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _guard(self, work: Awaitable[None], name: str, action: str = "") -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except DomainError as exc:
            self.refuse(exc, action or name)
        except Exception as exc:
            log.error("kiosk %s failed", name, exc_info=exc)
            if self.customer is None:
                self.show("auth_error", code="device")
            else:
                self.home()

    def cancel_operation(self) -> None:
        current = asyncio.current_task()
        if self._operation is not None and self._operation is not current:
            self._operation.cancel()
        self._operation = None

    @contextlib.contextmanager
    def device_operation(self) -> Iterator[None]:
        """While held, the inactivity timer stands still (never interrupt a device)."""
        self._device_ops += 1
        try:
            yield
        finally:
            self._device_ops -= 1
            self._last_activity = self.clock()

    # -- where the customer goes -------------------------------------------------------------

    def home(self) -> None:
        """The signed-in menu, or attract when nobody is signed in."""
        from branchline.agent.kiosk.flows import menu

        if self.customer is not None:
            menu.show_menu(self)
        else:
            self.show_attract()

    def show_attract(self) -> None:
        from branchline.agent.kiosk.flows import attract

        attract.show(self)

    def reset(self) -> None:
        """Forget the customer: data cleared, settings back to the terminal's defaults."""
        if self.customer is not None:
            self.agent.sessions.close(self.customer.session_id)
        self.customer = None
        self.chosen = ""
        self.card_in = False
        self.scratch = {}
        self.lang = self.settings.language
        self.display = dict(DEFAULT_DISPLAY)
        self._broadcast(self.encode(self.catalogue_frame()))

    async def end(self, reason: str) -> None:
        """End the customer's session: card back (or retained), data cleared, attract."""
        from branchline.agent.kiosk.flows import card_pin, phone_job_state, video

        # A phone's job on these screens ends with the session (its transaction, once
        # started, ends it instead).
        await phone_job_state.abandon_current(self, reason)
        self.cancel_operation()
        await video.leave_quietly(self)
        if self.card_in:
            await card_pin.return_card(self, reason)
            return
        self.reset()
        self.show("session_ended", reason=reason)
        await asyncio.sleep(3.0)
        if self.screen == "session_ended":
            self.show_attract()

    # -- the clock ---------------------------------------------------------------------------

    def timed(self) -> bool:
        # A transaction being opened with the bank is not interrupted (the engine has it).
        if self._device_ops or self.data.get("busy"):
            return False
        if self.screen in TIMED:
            return True
        if self.screen == "tube":
            return bool(self.data.get("finished"))
        if self.screen == "video":
            return self.data.get("state") in ("choose", "ended")
        if self.screen in ("cheque_method", "cheque_code"):
            return True
        if self.screen == "cheque":  # the purchase engine has its own customer time limits
            return bool(self.data.get("finished"))
        return False

    def tick(self) -> None:
        """Re-derive live screens and run the inactivity timer; called every ``TICK``."""
        from branchline.agent.kiosk.flows import LIVE, phone_job_state

        phone_job_state.check_in_service(self)
        refresh = LIVE.get(self.screen)
        if refresh is not None:
            refresh(self)
        now = self.clock()
        if not self.timed():
            self._last_activity = now
            if self._warning_until is not None:
                self._warning_until = None
                self.publish()
            return
        if self._warning_until is None:
            if now - self._last_activity >= self.settings.inactivity_timeout:
                self._warning_until = now + self.settings.warning_seconds
                log_event(log, "kiosk_timeout_warning", screen=self.screen)
                self.publish()
        elif now >= self._warning_until:
            self._warning_until = None
            log_event(log, "kiosk_session_timeout", screen=self.screen)
            self.run(self.end("timeout"), "timeout")

    async def run_forever(self) -> None:
        from branchline.agent.kiosk.flows import cheque, tube

        if await tube.unfinished_in_journal(self):
            # The engine is about to recover a transaction: show that, never attract first.
            self.show("resuming")
            self.scratch["resuming_until"] = self.clock() + RESUME_WAIT
        else:
            self.show_attract()
        while True:
            await asyncio.sleep(TICK)
            try:
                if not cheque.adopt_recovered(self):
                    tube.adopt_recovered(self)
                self.tick()
            except Exception as exc:  # the screen must keep running whatever one tick did
                log.error("kiosk tick failed", exc_info=exc)

    async def stop(self) -> None:
        self.cancel_operation()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)


def _close_unstarted(work: Awaitable[None]) -> Callable[[asyncio.Task[None]], None]:
    """A task canceled before it ran never awaited its work: close it (no warning, no leak)."""

    def done(task: asyncio.Task[None]) -> None:
        if inspect.iscoroutine(work) and inspect.getcoroutinestate(work) == inspect.CORO_CREATED:
            work.close()

    return done


def redact_action(action: str) -> str:
    return repr(action[:32])
