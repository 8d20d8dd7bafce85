"""One error model for every Branchline process.

Plain functions raise these; each boundary converts them once: gRPC servicers through
``branchline.common.grpc_errors`` (a status with ``google.rpc.BadRequest`` / ``ErrorInfo``
details), TerminalLink replies as a ``RequestError``/refusal carrying ``code``, ``message``
and ``field``, pages as JSON. A caller reads the field and the reason as data, never by
parsing the message.

- ``field``: the path of the offending field in the request, dotted (``asset.amount``).
- ``reason``: a stable snake_case code (``insufficient_funds``, ``wrong_state``); defaults to
  the status name in lower case.
- ``rule``: for PermissionDenied, the rule that refused the caller (``own_branch_only``).

Messages never carry more than a short, truncated piece of what the caller sent
(``echo``), so a 5,000-character id is not written back to anyone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

# The longest piece of caller input an error message repeats.
ECHO_LIMIT = 40

# Bounds for what callers send; a boundary checks each field with check_text.
MAX_ID = 64
MAX_NAME = 128
MAX_TEXT = 2000


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """``value`` as a short quoted piece for an error message: at most ``limit`` characters
    of it, with the length noted when it was cut."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


class DomainError(Exception):
    """A refused request. ``status`` is the gRPC status name the boundary uses."""

    status: ClassVar[str] = "FAILED_PRECONDITION"

    def __init__(
        self,
        message: str,
        *,
        field: str = "",
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason or self.status.lower()
        self.metadata: dict[str, str] = dict(metadata or {})

    # Older call sites read ``code`` for the stable reason.
    @property
    def code(self) -> str:
        return self.reason

    def as_dict(self) -> dict[str, Any]:
        """The error as JSON-friendly data (for pages and ``--json`` output)."""
        out: dict[str, Any] = {
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
        }
        if self.field:
            out["field"] = self.field
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, field={self.field!r}, reason={self.reason!r})"
        )


class InvalidArgument(DomainError):
    """The request is malformed; ``field`` names what was wrong."""

    status = "INVALID_ARGUMENT"

    def __init__(
        self,
        field: str,
        message: str,
        *,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        text = message if message.startswith(f"{field}:") or not field else f"{field}: {message}"
        super().__init__(text, field=field, reason=reason, metadata=metadata)
        self.description = message


class NotFound(DomainError):
    status = "NOT_FOUND"


class AlreadyExists(DomainError):
    status = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """Well formed, but the current state forbids it (``reason`` says which state)."""

    status = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    """The caller may not do this; ``rule`` names the rule that refused it."""

    status = "PERMISSION_DENIED"

    def __init__(
        self,
        message: str,
        *,
        rule: str = "",
        field: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            message, field=field, reason=rule or "permission_denied", metadata=metadata
        )
        self.rule = rule


class Unavailable(DomainError):
    """A dependency (database, HSM, device) is down; the same request may succeed later."""

    status = "UNAVAILABLE"


class ResourceExhausted(DomainError):
    """Saturated or over a limit; retry later."""

    status = "RESOURCE_EXHAUSTED"


def check_text(
    field: str,
    value: str,
    *,
    max_len: int = MAX_ID,
    required: bool = True,
) -> str:
    """Return ``value`` when it is a string within ``max_len`` characters (and not empty when
    ``required``); raise InvalidArgument naming ``field`` otherwise."""
    if not isinstance(value, str):
        raise InvalidArgument(field, f"must be text, not {type(value).__name__}")
    if required and not value:
        raise InvalidArgument(field, "is required", reason="required")
    if len(value) > max_len:
        raise InvalidArgument(
            field,
            f"is {len(value)} characters, at most {max_len} allowed (got {echo(value)})",
            reason="too_long",
        )
    return value
