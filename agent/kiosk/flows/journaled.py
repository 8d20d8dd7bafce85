"""What the screens following a journaled transaction share (the tube's, the cheque
purchase's; agent/engine_base.py): the engine's refusal in the error model, the catalogue key
of the last refusal's code, and following the transaction on its screen until it ends."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from branchline.agent.engine_base import Live
from branchline.agent.kiosk import i18n
from branchline.agent.refusal import Refused
from branchline.common.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

LiveT = TypeVar("LiveT", bound=Live[Any, Any])


def refusal(exc: Refused, field: str) -> DomainError:
    """The engine's refusal in the project's error model, naming ``field`` to the page."""
    if exc.kind == "invalid":
        return InvalidArgument(field, exc.message, reason=exc.code)
    if exc.kind == "not_found":
        return NotFound(exc.message, field=field, reason=exc.code)
    if exc.kind == "refused":
        return PermissionDenied(exc.message, rule=exc.code, field=field)
    if exc.kind == "unavailable":
        return Unavailable(exc.message, field=field, reason=exc.code)
    return FailedPrecondition(exc.message, field=field, reason=exc.code)


def code_key(lang: str, prefix: str, code: str) -> str:
    """The catalogue key telling the customer why a step was not taken (``""``: none):
    ``<prefix>.code.<code>``, or ``<prefix>.code.other`` for a code the catalogue lacks."""
    if not code:
        return ""
    key = f"{prefix}.code.{code}"
    return key if key in i18n.catalogue(lang) else f"{prefix}.code.other"


def follow(
    session: KioskSession,
    live: LiveT,
    screen: str,
    data: Callable[[KioskSession, LiveT], dict[str, Any]],
) -> None:
    """Show ``live`` on ``screen`` from now on (``data`` makes the screen's values), until it
    is finished and the customer moves on."""
    session.show(screen, **data(session, live))
    session.run(_follow(session, live, screen, data), screen)


async def _follow(
    session: KioskSession,
    live: LiveT,
    screen: str,
    data: Callable[[KioskSession, LiveT], dict[str, Any]],
) -> None:
    while True:
        changed = live.changed
        if session.screen == screen:
            session.update(**data(session, live))
        if live.finished:
            return
        await changed.wait()


def recovered(session: KioskSession, lives: Iterable[LiveT]) -> LiveT | None:
    """After an agent restart, on an idle screen: the first transaction the engine recovered
    that has not taken the screen yet (it takes it once)."""
    if session.screen not in ("attract", "out_of_service", "resuming") or session.customer:
        return None
    for live in lives:
        seen = "seen_" + live.key
        if live.recovered and not live.finished and not session.scratch.get(seen):
            session.scratch[seen] = True
            return live
    return None
