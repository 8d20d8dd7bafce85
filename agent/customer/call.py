"""Video-teller calls, the terminal's side: ask for a teller, follow the queue, relay
signalling, and run the teller's remote-peripheral commands on this terminal's devices.

The server pushes the call's state (queue position, estimated wait), the teller's
signalling and device commands over TerminalLink; watchers of the local API (the kiosk)
see each as a ``CallEvent``. Device commands run through the device owners, as every other
use of the hardware: the card's PAN stays in this process (the teller gets it masked; a
PIN request sends it with the PIN block to the server's HSM only), and a signature is the
PNG the PIN pad's signature capture returns, sent with its SHA-256.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from branchline.agent.customer.authenticate import read_card
from branchline.agent.refusal import domain_error
from branchline.agent.service_state import NotInService
from branchline.agent.uplink import UplinkUnavailable
from branchline.common.errors import DomainError
from branchline.common.ids import random_hex
from branchline.common.logs import log_event
from branchline.common.redaction import mask_pan
from branchline.drivers.base import Completion, DeviceError
from branchline.v1 import agent_local_pb2 as local_pb2
from branchline.v1 import calls_pb2
from branchline.v1 import terminal_link_pb2 as link_pb2

if TYPE_CHECKING:
    from branchline.agent.daemon import Agent

log = logging.getLogger("branchline.agent.call")

CARD_TIMEOUT = 60.0
PIN_TIMEOUT = 60.0
ID_TIMEOUT = 30.0
SIGN_TIMEOUT = 60.0
WATCH_BACKLOG = 200
ENDED = (calls_pb2.CALL_STATE_ENDED, calls_pb2.CALL_STATE_LEFT)
# The end reason of a call hung up because the agent restarted during it.
RESTARTED = "agent_restarted"


class CallRefused(Exception):
    """The server refused a call request; ``code`` is its stable code (permission_denied,
    invalid_argument, failed_precondition, not_found, ...)."""

    def __init__(self, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field  # the request field's path when the server named one

    def as_domain(self) -> DomainError:
        """The status the code names (or invalid/failed precondition for another reason)."""
        return domain_error(self.code, self.code, self.message, self.field, code_first=False)


def _needs(agent: Agent, name: str) -> Any:
    owner = agent.owners.get(name)
    if owner is None:
        raise DeviceError(Completion.UNSUPPORTED, "no_device", f"this terminal has no {name}")
    return owner


class CallSession:
    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self.call: calls_pb2.Call | None = None
        self._watchers: set[asyncio.Queue[local_pb2.CallEvent]] = set()
        self._handled: set[int] = set()
        self._signals_seen: set[int] = set()
        # call id -> the PAN of the card read in that call (memory only, never logged).
        self._pans: dict[str, str] = {}
        # command id -> signature command waiting for the customer.
        self._signature_wanted: dict[int, calls_pb2.PeripheralCommand] = {}
        # Outcomes the server has not acknowledged yet: sent again after a reconnect.
        self._unsent_bodies: dict[int, calls_pb2.CommandOutcome] = {}
        self._background: set[asyncio.Task[None]] = set()
        # Until the first connection: calls the server still holds open for this terminal
        # are a previous process's (its page and media are gone) and are hung up then.
        self._fresh = True
        uplink = agent.uplink
        uplink.on_push("call_update", self._on_call_update)
        uplink.on_push("teller_signal", self._on_signal)
        uplink.on_push("peripheral_command", self._on_command)
        uplink.on_connected(self._resend)
        uplink.on_connected(self._end_stale)

    # -- watchers --------------------------------------------------------------------------

    @contextlib.contextmanager
    def watch(self) -> Iterator[asyncio.Queue[local_pb2.CallEvent]]:
        queue: asyncio.Queue[local_pb2.CallEvent] = asyncio.Queue(WATCH_BACKLOG)
        if self.call is not None:
            queue.put_nowait(local_pb2.CallEvent(kind="call", call=self.call))
        self._watchers.add(queue)
        try:
            yield queue
        finally:
            self._watchers.discard(queue)

    def _emit(self, event: local_pb2.CallEvent) -> None:
        for queue in list(self._watchers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    def _set_call(self, call: calls_pb2.Call) -> None:
        if self.call is not None and self.call.call_id != call.call_id and call.state in ENDED:
            return  # news of an older call
        changed = self.call is None or self.call.SerializeToString() != call.SerializeToString()
        self.call = call
        if changed:
            self._emit(local_pb2.CallEvent(kind="call", call=call))
        if call.state in ENDED:
            self._call_closed(call.call_id)

    def _call_closed(self, call_id: str) -> None:
        self._signature_wanted = {
            k: v for k, v in self._signature_wanted.items() if v.call_id != call_id
        }
        if self._pans.pop(call_id, None) is not None and "card_reader" in self._agent.owners:
            # The card read during the call goes back to the customer.
            task = asyncio.get_running_loop().create_task(self._eject())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _eject(self) -> None:
        try:
            await self._agent.owners["card_reader"].submit("eject")
        except DeviceError as exc:
            log_event(log, "eject_failed", logging.WARNING, code=exc.code)

    # -- the customer's requests -----------------------------------------------------------

    async def _ask(self, **body: Any) -> link_pb2.ServerMessage:
        reply = await self._agent.uplink.request(**body)
        if reply.HasField("error"):
            raise CallRefused(reply.error.code, reply.error.message, reply.error.field)
        return reply

    async def request_teller(self, business_type: str, mode: calls_pb2.CallMode) -> calls_pb2.Call:
        reply = await self._ask(
            call_request=calls_pb2.CallRequest(
                request_id=f"call-{random_hex(12)}", business_type=business_type, mode=mode
            )
        )
        self._set_call(reply.call_update)
        log_event(
            log,
            "teller_requested",
            call_id=reply.call_update.call_id,
            position=reply.call_update.position,
        )
        return reply.call_update

    async def leave(self, call_id: str, reason: str = "") -> calls_pb2.Call:
        if not call_id:
            if self.call is None or self.call.state in ENDED:
                raise CallRefused(
                    "failed_precondition", "call_id: this terminal has no open call", "call_id"
                )
            call_id = self.call.call_id
        reply = await self._ask(call_leave=calls_pb2.CallLeave(call_id=call_id, reason=reason))
        self._set_call(reply.call_update)
        return reply.call_update

    async def send_signal(self, call_id: str, kind: str, payload: str) -> calls_pb2.CallAck:
        reply = await self._ask(
            call_signal=calls_pb2.TerminalSignal(call_id=call_id, kind=kind, payload=payload)
        )
        return reply.call_ack

    def waiting_signatures(self, call_id: str) -> list[calls_pb2.PeripheralCommand]:
        """The teller's signature requests of ``call_id`` the customer has not answered."""
        return [c for c in self._signature_wanted.values() if c.call_id == call_id]

    async def _end_stale(self) -> None:
        """After a restart: hang up the calls a previous process left open (reason
        ``agent_restarted``); the kiosk offers the customer to call again."""
        if not self._fresh:
            return
        self._fresh = False
        try:
            reply = await self._ask(call_query=calls_pb2.CallQuery())
        except (CallRefused, UplinkUnavailable) as exc:
            log_event(log, "stale_calls_unknown", logging.WARNING, why=str(exc))
            return
        for call in reply.call_list.calls:
            if call.state in ENDED:
                continue
            try:
                left = await self._ask(
                    call_leave=calls_pb2.CallLeave(call_id=call.call_id, reason=RESTARTED)
                )
            except (CallRefused, UplinkUnavailable) as exc:
                log_event(
                    log, "stale_call_kept", logging.WARNING, call_id=call.call_id, why=str(exc)
                )
                continue
            log_event(log, "stale_call_ended", call_id=call.call_id, state=int(call.state))
            self._set_call(left.call_update)

    async def sign(
        self, command_id: int, confirm: bool, timeout: float
    ) -> calls_pb2.CommandOutcome:
        """The customer answers the teller's signature command: signs on the pad, or declines."""
        command = self._signature_wanted.get(command_id)
        if command is None:
            raise CallRefused(
                "failed_precondition",
                f"command_id: no signature request {command_id} is waiting on this terminal",
            )
        outcome = calls_pb2.CommandOutcome(command_id=command_id, call_id=command.call_id)
        if not confirm:
            outcome.completion = Completion.CANCELED.value
            outcome.code = "customer_declined"
            outcome.detail = "the customer declined to sign"
        else:
            try:
                pad = _needs(self._agent, "pin_pad")
                result = await pad.submit(
                    "read_signature",
                    {"timeout_s": max(1, round(timeout))},
                    timeout=timeout + 10,
                )
                png = base64.b64decode(result["png_base64"])
                outcome.completion = Completion.SUCCESS.value
                outcome.signature_png = png
                outcome.signature_sha256 = hashlib.sha256(png).hexdigest()
                outcome.fields["signature_bytes"] = str(len(png))
            except DeviceError as exc:
                outcome.completion = exc.completion.value
                outcome.code = exc.code
                outcome.detail = exc.message
        self._signature_wanted.pop(command_id, None)
        await self._report(outcome)
        return outcome

    # -- pushes ----------------------------------------------------------------------------

    async def _on_call_update(self, message: link_pb2.ServerMessage) -> None:
        self._set_call(message.call_update)

    async def _on_signal(self, message: link_pb2.ServerMessage) -> None:
        signal = message.teller_signal
        if signal.signal_id in self._signals_seen:
            return
        self._signals_seen.add(signal.signal_id)
        self._emit(local_pb2.CallEvent(kind="signal", signal=signal))

    async def _on_command(self, message: link_pb2.ServerMessage) -> None:
        command = message.peripheral_command.command
        if command.command_id in self._handled:
            return  # pushed again after a reconnect: already running or done
        self._handled.add(command.command_id)
        log_event(
            log, "device_command", call_id=command.call_id, id=command.command_id, kind=command.kind
        )
        self._emit(local_pb2.CallEvent(kind="command", command=command))
        if command.kind == "signature":
            # The customer reads what they confirm on the screen and signs (Sign).
            self._signature_wanted[command.command_id] = command
            return
        outcome = await self._run(command)
        await self._report(outcome)

    # long: one peripheral command per device kind, each with its own outcome fields; a table would hide the order
    async def _run(self, command: calls_pb2.PeripheralCommand) -> calls_pb2.CommandOutcome:
        outcome = calls_pb2.CommandOutcome(
            command_id=command.command_id,
            call_id=command.call_id,
            completion=Completion.SUCCESS.value,
        )
        agent = self._agent
        try:
            if command.kind == "read_card":
                async with agent.service.transaction():
                    card = await read_card(agent, CARD_TIMEOUT)
                pan = str(card["pan"])
                self._pans[command.call_id] = pan
                outcome.fields["pan_masked"] = mask_pan(pan)
                for key in ("expiry", "name", "source"):
                    if card.get(key):
                        outcome.fields[key] = str(card[key])
            elif command.kind == "pin":
                known = self._pans.get(command.call_id)
                if known is None:
                    raise DeviceError(
                        Completion.SEQUENCE_ERROR,
                        "no_card",
                        "read the customer's card in this call before asking for the PIN",
                    )
                pad = _needs(agent, "pin_pad")
                pin = await pad.submit(
                    "read_pin",
                    {"pan": known, "timeout_s": round(PIN_TIMEOUT)},
                    timeout=PIN_TIMEOUT + 10,
                )
                outcome.pin_block = bytes.fromhex(pin["pin_block"])
                outcome.ksn = bytes.fromhex(pin["ksn"])
                outcome.pin_block_format = int(pin["format"])
                outcome.pan = known
                outcome.fields["pan_masked"] = mask_pan(known)
            elif command.kind == "read_id":
                reader = _needs(agent, "id_reader")
                data = await reader.submit(
                    "read_card", {"timeout_s": round(ID_TIMEOUT)}, timeout=ID_TIMEOUT + 10
                )
                for key in ("name", "id_number_masked", "valid_from", "valid_to", "valid"):
                    if key in data:
                        outcome.fields[key] = str(data[key])
            elif command.kind == "print":
                printer = _needs(agent, "printer")
                params: dict[str, Any] = {"lines": list(command.lines)}
                if command.title:
                    params["title"] = command.title
                printed = await printer.submit("print_receipt", params)
                outcome.fields["bytes"] = str(printed.get("bytes", 0))
            else:
                raise DeviceError(
                    Completion.UNSUPPORTED, "unknown_command", f"unknown command {command.kind!r}"
                )
        except NotInService as exc:
            outcome.completion = Completion.DEVICE_NOT_READY.value
            outcome.code = "not_in_service"
            outcome.detail = str(exc)
        except DeviceError as exc:
            outcome.completion = exc.completion.value
            outcome.code = exc.code
            outcome.detail = exc.message
            outcome.ClearField("pin_block")
            outcome.ClearField("ksn")
            outcome.pan = ""
        return outcome

    async def _report(self, outcome: calls_pb2.CommandOutcome) -> None:
        self._unsent_bodies[outcome.command_id] = outcome
        log_event(
            log,
            "device_command_done",
            id=outcome.command_id,
            completion=outcome.completion,
            code=outcome.code,
        )
        await self._send(outcome)

    async def _send(self, outcome: calls_pb2.CommandOutcome) -> None:
        try:
            reply = await self._agent.uplink.request(command_outcome=outcome)
        except UplinkUnavailable as exc:
            log_event(log, "outcome_deferred", logging.WARNING, id=outcome.command_id, why=str(exc))
            return  # sent again once reconnected
        self._unsent_bodies.pop(outcome.command_id, None)
        if reply.HasField("error"):
            log_event(
                log,
                "outcome_refused",
                logging.WARNING,
                id=outcome.command_id,
                code=reply.error.code,
                field=reply.error.field,
                detail=reply.error.message,
            )
        done = calls_pb2.PeripheralCommand(
            command_id=outcome.command_id,
            call_id=outcome.call_id,
            completion=outcome.completion,
            code=outcome.code,
            detail=outcome.detail,
            fields=dict(outcome.fields),
        )
        self._emit(local_pb2.CallEvent(kind="command_done", command=done))

    async def _resend(self) -> None:
        for outcome in list(self._unsent_bodies.values()):
            await self._send(outcome)
