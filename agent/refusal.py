"""The agent's refusals in the one error model (``branchline.common.errors``).

The local API's plain functions refuse with a kind (invalid, not_found, refused,
precondition, unavailable), a stable code and, when one field was wrong, its path;
the server's TerminalLink refusals arrive as a code (a status name or a stable reason) and
a field. ``domain_error`` makes either a DomainError, which the servicers end the call with
(``branchline.common.grpc_errors.abort``): BadRequest names the field, ErrorInfo carries the
code. The status message keeps its old shape, the stable code first
(``not_your_account: account_id: ...``), for readers of the text.
"""

from __future__ import annotations

from branchline.common.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)

# The local API's kinds of refusal.
BY_KIND: dict[str, type[DomainError]] = {
    "invalid": InvalidArgument,
    "not_found": NotFound,
    "refused": PermissionDenied,
    "precondition": FailedPrecondition,
    "unavailable": Unavailable,
}
# The server's codes that are status names (the rest are reasons).
BY_STATUS: dict[str, type[DomainError]] = {
    cls.status.lower(): cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        PermissionDenied,
        Unavailable,
        ResourceExhausted,
    )
}


def domain_error(
    kind: str, code: str, message: str, field: str = "", *, code_first: bool = True
) -> DomainError:
    """The refusal as a DomainError: ``kind`` picks the status (a local kind or a status
    name; otherwise invalid when a field is named, else failed precondition), ``code`` is
    the reason. ``code_first`` puts the code before the message in the status text, as the
    tube and statement calls always have (the server's call refusals never did)."""
    cls = BY_KIND.get(kind) or BY_STATUS.get(kind)
    if cls is None:
        cls = InvalidArgument if field else FailedPrecondition
    error: DomainError
    if cls is InvalidArgument:
        error = InvalidArgument(field, message, reason=code)
        # The message already names what was wrong in the sender's words; the field path
        # travels as data, so it is not prefixed to the text a second time.
        error.message = message
        error.args = (message,)
    elif cls is PermissionDenied:
        error = PermissionDenied(message, rule=code, field=field)
    else:
        error = cls(message, field=field, reason=code)
    if code_first and code and not message.startswith(f"{code}:"):
        error.message = f"{code}: {message}"
        error.args = (error.message,)
    return error


class Refused(Exception):
    """A customer request an engine will not take: ``kind`` one of BY_KIND's, ``code`` the
    stable reason, ``field`` the request field's path when one field was wrong."""

    def __init__(self, kind: str, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.field = field

    def as_domain(self) -> DomainError:
        return domain_error(self.kind, self.code, self.message, self.field)
