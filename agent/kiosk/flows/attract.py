"""The attract screen (services available now) and the out-of-service screen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from branchline.agent.kiosk import services
from branchline.common.errors import FailedPrecondition, InvalidArgument

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession


def _derive(session: KioskSession) -> tuple[str, dict[str, Any]]:
    live = services.live_from_agent(session.agent)
    reason = services.out_of_service_reason(live)
    if reason:
        return "out_of_service", {"reason": reason}
    phone = session.phone.attract_data(live.connected) if session.phone is not None else None
    return "attract", {
        "services": [offer.to_json() for offer in services.offers(live)],
        "notices": services.notices(live),
        "phone": phone,
    }


def show(session: KioskSession) -> None:
    screen, data = _derive(session)
    session.show(screen, **data)


def refresh(session: KioskSession) -> None:
    """Follow device status and service state while attract or out-of-service shows."""
    screen, data = _derive(session)
    if screen != session.screen:
        session.show(screen, **data)
    else:
        session.update(**data)


def offer(session: KioskSession, service: Any) -> services.Offer:
    """The named service if the terminal can do it now; refusals name ``service``."""
    if service not in services.SERVICE_IDS:
        raise InvalidArgument(
            "service",
            f"must be one of {', '.join(services.SERVICE_IDS)}",
            reason="unknown_service",
        )
    live = services.live_from_agent(session.agent)
    for item in services.offers(live):
        if item.id == service and item.available:
            return item
    raise FailedPrecondition(
        f"service: {service} is not available on this terminal right now",
        field="service",
        reason="service_unavailable",
    )


async def on_action(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    from branchline.agent.kiosk.flows import card_pin, enter, phone

    if action == "phone_cancel":
        await phone.cancel(session)
        refresh(session)
        return
    if action != "start":
        raise FailedPrecondition(
            f"action: attract takes start or phone_cancel, not {action[:32]!r}",
            reason="wrong_screen",
        )
    chosen = offer(session, data.get("service"))
    if chosen.id in services.SIGNED_IN:
        card_pin.start(session, chosen.id)
    else:
        enter(session, chosen.id)
