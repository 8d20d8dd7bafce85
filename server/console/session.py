"""The console's state and flow for one signed-in person, without a browser.

Signing in is the certificate: ``WhoAmI`` gives a teller's or lobby manager's branch and
skills; an operator has no staff record. The role decides the views the page gets (a
teller with the ``back_office`` skill works the tube desk, an operator the fleet board); an
action for a view the person does not have is refused here, and the server refuses the
call anyway. Every change publishes the full state to every page (never a diff).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import grpc

from branchline.common.errors import DomainError, InvalidArgument, PermissionDenied
from branchline.common.grpc_errors import error_details
from branchline.common.logs import log_event
from branchline.server.console import i18n
from branchline.server.console.assistant import ACTIONS as ASSISTANT_ACTIONS
from branchline.server.console.assistant import AssistantDesk
from branchline.server.console.backoffice import ACTIONS as DESK_ACTIONS
from branchline.server.console.backoffice import BackOfficeDesk
from branchline.server.console.calls import ACTIONS as CALL_ACTIONS
from branchline.server.console.calls import CallDesk
from branchline.server.console.cheques import ACTIONS as CHEQUE_ACTIONS
from branchline.server.console.cheques import ChequeDesk
from branchline.server.console.client import StaffClient
from branchline.server.console.desk_media import DeskMedia
from branchline.server.console.fleet import ACTIONS as FLEET_ACTIONS
from branchline.server.console.fleet import FleetBoard
from branchline.server.console.recordings import ACTIONS as RECORDING_ACTIONS
from branchline.server.console.recordings import ConsoleRecordings, RecordingsDesk
from branchline.server.console.settings import LANGUAGES, ConsoleSettings
from branchline.server.console.tasks import LOBBY_ACTIONS, TELLER_ACTIONS, TaskDesk
from branchline.v1 import dispatch_pb2 as dpb

log = logging.getLogger("branchline.server.console")
# A view's follower that failed starts again after this long (it logged why).
FOLLOWER_RESTART_SECONDS = 1.0


async def _supervised(name: str, follower: Callable[[], Awaitable[None]]) -> None:
    """Run a view's follower (its poll or watch loop) for the console's life: one that fails
    is logged and started again, so a view never goes quietly stale (a dead calls follower
    would show a teller no new call)."""
    while True:
        try:
            await follower()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever it was, the view must keep following
            log_event(log, "console_follower_failed", logging.ERROR, follower=name, error=repr(exc))
            await asyncio.sleep(FOLLOWER_RESTART_SECONDS)


BACK_OFFICE_SKILL = "back_office"
SIGN_IN_RETRY = 1.0
VIEW_ACTIONS = {
    "backoffice": DESK_ACTIONS,
    "fleet": FLEET_ACTIONS,
    "tasks": TELLER_ACTIONS,
    "lobby": LOBBY_ACTIONS,
    "calls": CALL_ACTIONS,
    "cheques": CHEQUE_ACTIONS,
    "assistant": ASSISTANT_ACTIONS,
    "recordings": RECORDING_ACTIONS,
}
PRESENCE = {
    v.number: v.name.removeprefix("PRESENCE_").lower() for v in dpb.Presence.DESCRIPTOR.values
}


def views_for(role: str, skills: list[str]) -> list[str]:
    """The screens a person's role opens (the server still checks every call); every role
    watches recordings (each viewing audited by the server)."""
    if role == "operator":
        return ["fleet", "recordings"]
    if role == "lobby":
        return ["lobby", "assistant", "recordings"]
    if role == "teller" and BACK_OFFICE_SKILL in skills:
        return ["backoffice", "tasks", "calls", "cheques", "recordings"]
    if role == "teller":
        return ["tasks", "calls", "assistant", "recordings"]
    return []


class ConsoleSession:
    def __init__(self, settings: ConsoleSettings, client: StaffClient | None = None) -> None:
        self.settings = settings
        self.client = client or StaffClient(settings)
        self.lang = settings.lang
        identity = settings.identity
        self.me: dict[str, Any] = {
            "role": identity.role,
            "id": identity.ident,
            "name": "",
            "branch": "",
            "skills": [],
            "on_duty": False,
            "presence": "",
        }
        self.views: list[str] = []
        self.signed_in = False
        self.sign_in_refusal: dict[str, str] | None = None
        self.desk: BackOfficeDesk | None = None
        self.fleet: FleetBoard | None = None
        self.tasks: TaskDesk | None = None
        self.calls: CallDesk | None = None
        # The back office's camera on the customer's screen (desk_media.py).
        self.desk_media: DeskMedia | None = None
        self.cheques: ChequeDesk | None = None
        self.assistant: AssistantDesk | None = None
        self.recdesk: RecordingsDesk | None = None
        self.recordings = ConsoleRecordings(settings)
        self.seq = 0
        self._pages: set[Callable[[str], None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.changed = asyncio.Event()  # set on every publish (tests wait on it)

    # -- life -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.recordings.start()
        self._tasks.append(asyncio.ensure_future(self._sign_in_and_follow()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.client.close()
        await self.recordings.stop()

    async def _sign_in_and_follow(self) -> None:
        while not await self._sign_in():
            self.publish()
            await asyncio.sleep(SIGN_IN_RETRY)
        self.views = views_for(self.me["role"], self.me["skills"])
        log_event(log, "console_signed_in", who=str(self.settings.identity), views=self.views)
        followers: list[Awaitable[None]] = []
        if "backoffice" in self.views:
            self.desk = BackOfficeDesk(self.client, self.publish)
            self.desk_media = DeskMedia(self.client, self.send_frame)
            followers.append(_supervised("backoffice", partial(self.desk.run, self._down)))
        if "fleet" in self.views:
            self.fleet = FleetBoard(self.client, self.publish)
            followers.append(_supervised("fleet", partial(self.fleet.run, self._down)))
        if "tasks" in self.views or "lobby" in self.views:
            self.tasks = TaskDesk(self.client, self.me, self.publish)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.tasks.refresh_roster()
            followers.append(_supervised("tasks", partial(self.tasks.run, self._down)))
        if "calls" in self.views:
            self.calls = CallDesk(self.client, self.publish, self.send_frame, self.settings.ice)
            followers.append(_supervised("calls", partial(self.calls.run, self._down)))
        if "cheques" in self.views:
            self.cheques = ChequeDesk(
                self.client, self.publish, f"{self.me['role']}:{self.me['id']}"
            )
            followers.append(_supervised("cheques", partial(self.cheques.run, self._down)))
        if "assistant" in self.views:
            self.assistant = AssistantDesk(
                self.client, self.me["role"], self.publish, self._current_call_id
            )
            followers.append(_supervised("assistant", partial(self.assistant.run, self._down)))
        if "recordings" in self.views:
            self.recdesk = RecordingsDesk(self.client, self.publish, self.me["role"])
        self.publish()
        await asyncio.gather(*followers)

    async def _sign_in(self) -> bool:
        """True once the person is known; False (to retry) while the server is unreachable."""
        if self.me["role"] == "operator":
            self.signed_in = True  # operators have no staff record: the certificate is all
            return True
        try:
            member = await self.client.call(self.client.dispatch.WhoAmI, dpb.WhoAmIRequest())
        except grpc.aio.AioRpcError as exc:
            details = error_details(exc)
            self.sign_in_refusal = {"status": details.status, "message": details.message}
            return False
        self._keep_member(member)
        self.signed_in = True
        self.sign_in_refusal = None
        return True

    def _current_call_id(self) -> str:
        current = self.calls.current if self.calls is not None else None
        return current.call_id if current is not None else ""

    def _keep_member(self, member: dpb.StaffMember) -> None:
        self.me.update(
            name=member.name,
            branch=member.branch,
            skills=list(member.skills),
            on_duty=member.on_duty,
            presence=PRESENCE.get(member.presence, ""),
        )

    def _down(self) -> None:
        self.client.online = False
        self.publish()

    # -- pages ------------------------------------------------------------------------------

    def connect(self, send: Callable[[str], None]) -> Callable[[], None]:
        """A page joined: it gets the catalogue and the state now, then every change."""
        send(self.encode(self.catalogue_frame()))
        send(self.encode(self.state_frame()))
        self._pages.add(send)
        return lambda: self._pages.discard(send)

    def encode(self, frame: dict[str, Any]) -> str:
        return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))

    def catalogue_frame(self) -> dict[str, Any]:
        return {"type": "catalogue", "lang": self.lang, "messages": i18n.catalogue(self.lang)}

    def state_frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "state",
            "seq": self.seq,
            "lang": self.lang,
            "me": dict(self.me),
            "signed_in": self.signed_in,
            "sign_in_refusal": self.sign_in_refusal,
            "server": "online" if self.client.online else "connecting",
            "views": list(self.views),
        }
        if self.desk is not None:
            frame["backoffice"] = self.desk.snapshot(self.lang)
            frame["desk_media"] = {"ice_servers": self.settings.ice.for_page()}
        if self.fleet is not None:
            frame["fleet"] = self.fleet.snapshot(self.lang)
        if self.tasks is not None:
            frame["tasks"] = self.tasks.snapshot(self.lang)
        if self.calls is not None:
            frame["calls"] = self.calls.snapshot(self.lang)
        if self.cheques is not None:
            frame["cheques"] = self.cheques.snapshot()
        if self.assistant is not None:
            frame["assistant"] = self.assistant.snapshot()
        if self.recdesk is not None:
            frame["recordings"] = self.recdesk.snapshot()
        return frame

    def _send_all(self, text: str) -> None:
        for send in list(self._pages):
            try:
                send(text)
            except RuntimeError:  # a page that stopped reading: it reconnects for the state
                self._pages.discard(send)

    def send_frame(self, frame: dict[str, Any]) -> None:
        """A frame of another type (a call's signalling) to every page."""
        self._send_all(self.encode(frame))

    async def handle_frame(self, send: Callable[[str], None], message: dict[str, Any]) -> None:
        """A page's call signalling frame (``call_media.FRAME_TYPES``); refused like an action."""
        kind = str(message.get("type"))
        try:
            if kind == "desk_signal" and self.desk_media is not None:
                await self.desk_media.on_frame(send, message)
            elif kind == "desk_signal" or self.calls is None:
                raise PermissionDenied(f"{kind} is not open to this console", rule="role_view")
            else:
                await self.calls.media.on_frame(send, message)
        except DomainError as exc:
            refusal = {"status": exc.status, "field": exc.field, "reason": exc.reason}
            self.refuse(kind, {**refusal, "message": exc.message})
        except grpc.aio.AioRpcError as exc:
            details = error_details(exc)
            refusal = {"status": details.status, "field": details.field, "reason": details.reason}
            self.refuse(kind, {**refusal, "message": details.message})

    async def page_gone(self, send: Callable[[str], None]) -> None:
        if self.calls is not None:
            await self.calls.media.page_gone(send)
        if self.desk_media is not None:
            await self.desk_media.page_gone(send)

    def publish(self) -> None:
        self.seq += 1
        self._send_all(self.encode(self.state_frame()))
        self.changed.set()

    def refuse(self, action: str, refusal: dict[str, Any]) -> dict[str, Any]:
        frame = {"type": "refused", "action": action, **refusal}
        self._send_all(self.encode(frame))
        return frame

    # -- actions ----------------------------------------------------------------------------

    async def handle(self, action: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Carry out a page's action; the refusal frame (also sent to the pages) or None."""
        try:
            await self._dispatch(action, data)
        except DomainError as exc:
            refusal = {"status": exc.status, "field": exc.field, "reason": exc.reason}
            return self.refuse(action, {**refusal, "message": exc.message})
        except grpc.aio.AioRpcError as exc:
            details = error_details(exc)
            refusal = {"status": details.status, "field": details.field, "reason": details.reason}
            self.publish()  # the server indicator may have changed
            return self.refuse(action, {**refusal, "message": details.message})
        return None

    async def _dispatch(self, action: str, data: dict[str, Any]) -> None:
        if action == "language":
            lang = data.get("lang") or ("en" if self.lang == "zh-CN" else "zh-CN")
            if lang not in LANGUAGES:
                raise InvalidArgument("lang", f"one of {', '.join(LANGUAGES)}")
            self.lang = str(lang)
            self._send_all(self.encode(self.catalogue_frame()))
            self.publish()
            return
        view, _, name = action.partition(".")
        if view not in VIEW_ACTIONS or name not in VIEW_ACTIONS[view]:
            raise InvalidArgument("action", f"unknown action {action!r}", reason="unknown_action")
        if view not in self.views:
            raise PermissionDenied(
                f"the {view} screen is not open to {self.settings.identity}", rule="role_view"
            )
        if view == "backoffice" and self.desk is not None:
            await self.desk.handle(name, data)
        elif view == "fleet" and self.fleet is not None:
            await self.fleet.handle(name, data)
        elif view == "calls" and self.calls is not None:
            await self.calls.handle(name, data)
        elif view == "cheques" and self.cheques is not None:
            await self.cheques.handle(name, data)
        elif view == "assistant" and self.assistant is not None:
            await self.assistant.handle(name, data)
        elif view == "recordings" and self.recdesk is not None:
            await self.recdesk.handle(name, data)
        elif view in ("tasks", "lobby") and self.tasks is not None:
            member = await self.tasks.handle(name, data)
            if member is not None:
                self._keep_member(member)
            self.publish()
