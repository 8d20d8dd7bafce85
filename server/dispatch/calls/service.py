"""``CallService``: the call operations bound to one ``CallCore`` (the facade the servicers,
the TerminalLink handlers and the tests use)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from branchline.server.dispatch.calls import peripherals, queueing, ringing, signalling
from branchline.server.dispatch.calls.core import CallCore
from branchline.server.dispatch.calls.model import DEFAULT_RING_SECONDS, PinTranslator, utcnow
from branchline.server.dispatch.tasks.service import DispatchService


class CallService(CallCore):
    def __init__(
        self,
        dispatch: DispatchService,
        *,
        translate_pin: PinTranslator | None = None,
        ring_timeout: float = DEFAULT_RING_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(
            dispatch, translate_pin=translate_pin, ring_timeout=ring_timeout, clock=clock
        )
        # A teller the dispatch core frees takes a queued call before a queued task, and
        # may not go off duty while on a call.
        self.dispatch.pull_hooks.append(functools.partial(ringing.pull_call, self))
        self.dispatch.off_duty_checks.append(ringing.check_off_duty)

    # The terminal's side.
    request_call = queueing.request_call
    leave = queueing.leave
    terminal_calls = queueing.terminal_calls
    open_calls_of = queueing.open_calls_of
    last_call_of = queueing.last_call_of
    # The teller's side.
    queue = queueing.branch_queue
    current = queueing.current
    answer = queueing.answer
    end = queueing.end
    # Signalling.
    add_signal = signalling.add_signal
    signals_after = signalling.signals_after
    terminal_signals = signalling.terminal_signals
    # Remote peripherals.
    send_command = peripherals.send_command
    commands_after = peripherals.commands_after
    command = peripherals.command
    pending_commands = peripherals.pending_commands
    record_outcome = peripherals.record_outcome
    signature = peripherals.signature
    signature_of = peripherals.signature_of
    # The sweep.
    expire_ringing = ringing.expire_ringing
    match_queued = ringing.match_queued
