"""Video-teller calls: states, kinds and limits, the records handed out, and the PIN
translation the server's HSM does for a teller."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row

from branchline.common.errors import FailedPrecondition

QUEUED = "queued"
RINGING = "ringing"
ACTIVE = "active"
ENDED = "ended"
LEFT = "left"
OPEN = (QUEUED, RINGING, ACTIVE)
HELD = (RINGING, ACTIVE)
MODES = ("super_counter", "video_service", "video_teller")
SIGNAL_KINDS = ("offer", "answer", "candidate")
COMMAND_KINDS = ("read_card", "read_id", "pin", "print", "signature")
COMPLETIONS = (
    "success",
    "canceled",
    "device_not_ready",
    "hardware_error",
    "timeout",
    "invalid_data",
    "user_error",
    "sequence_error",
    "fraud_attempt",
    "unsupported",
)
MAX_SDP = 16 * 1024
MAX_CANDIDATE = 1024
MAX_LINES = 40
MAX_LINE = 200
MAX_FIELDS = 32
MAX_SIGNATURE_BYTES = 512 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A call ringing this long unanswered goes back to the head of the queue; the teller is
# marked away (as for a missed task offer).
DEFAULT_RING_SECONDS = 30.0
# Until calls have ended in the branch, a call is expected to take this long.
DEFAULT_HANDLE_SECONDS = 180
HANDLE_SAMPLE = 20

# How many times a call reads a fresh page of free-teller candidates when every one of the
# page was taken by other transactions meanwhile.
RING_PAGES = 3

# (pan, DUKPT PIN block, KSN, format) -> (block under the teller ZPK, its format, ZPK name)
PinTranslator = Callable[[str, bytes, bytes, int], tuple[bytes, int, str]]


class TranslationFailed(FailedPrecondition):
    """The HSM could not translate the PIN block; ``code`` (the reason) is shown to the
    teller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, reason=code)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CallView:
    call_id: str
    request_id: str
    terminal_id: str
    branch: str
    business_type: str
    mode: str
    state: str
    teller_id: str | None
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: str
    position: int = 0
    estimated_wait_seconds: int = 0


@dataclass(frozen=True)
class SignalView:
    signal_id: int
    call_id: str
    sender: str
    kind: str
    payload: str
    at: datetime


@dataclass(frozen=True)
class CommandView:
    command_id: int
    call_id: str
    kind: str
    title: str
    lines: tuple[str, ...]
    sent_at: datetime
    completion: str | None
    code: str
    detail: str
    fields: dict[str, str] = field(default_factory=dict)
    pin_block: bytes | None = None
    pin_block_format: int | None = None
    zpk_name: str | None = None
    signature_sha256: str | None = None
    signature_size: int = 0
    done_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """A device command's outcome as the terminal reports it."""

    command_id: int
    call_id: str
    completion: str
    code: str = ""
    detail: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    pin_block: bytes = b""
    ksn: bytes = b""
    pin_block_format: int = 0
    pan: str = ""
    signature_png: bytes = b""
    signature_sha256: str = ""


@dataclass(frozen=True)
class StoredSignature:
    """A signature the customer gave for a command, as stored with the call."""

    call_id: str
    command_id: int
    sha256: str
    content_type: str
    png: bytes


def call_view(row: Row[Any], position: int = 0, wait: int = 0) -> CallView:
    return CallView(
        call_id=row.call_id,
        request_id=row.request_id,
        terminal_id=row.terminal_id,
        branch=row.branch,
        business_type=row.business_type,
        mode=row.mode,
        state=row.state,
        teller_id=row.teller_id,
        created_at=row.created_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        position=position,
        estimated_wait_seconds=wait,
    )


def command_view(row: Row[Any], signature_size: int = 0) -> CommandView:
    return CommandView(
        command_id=int(row.id),
        call_id=row.call_id,
        kind=row.kind,
        title=row.title,
        lines=tuple(json.loads(row.lines)),
        sent_at=row.sent_at,
        completion=row.completion,
        code=row.code,
        detail=row.detail,
        fields={str(k): str(v) for k, v in json.loads(row.fields).items()},
        pin_block=row.pin_block,
        pin_block_format=row.pin_block_format,
        zpk_name=row.zpk_name,
        signature_sha256=row.signature_sha256,
        signature_size=signature_size,
        done_at=row.done_at,
    )


def signal_view(row: Row[Any]) -> SignalView:
    return SignalView(int(row.id), row.call_id, row.sender, row.kind, row.payload, row.at)


def estimated_wait(position: int, handle_seconds: float, serving: int) -> int:
    """Seconds until a call at ``position`` is answered: the calls ahead of it (and its own
    turn coming up) shared among the tellers serving its queue."""
    return int(math.ceil(position * handle_seconds / max(1, serving)))
