"""Which services the terminal can offer right now, from live device status and service state.

A declarative table (as Home Assistant's entity descriptions): each service names the
devices it needs and whether it needs the bank; the attract screen lists what passes.
A printer that cannot print leaves statements on screen with a notice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from branchline.agent.service_state import ServiceState
from branchline.drivers.base import DeviceStatus

if TYPE_CHECKING:
    from branchline.agent.daemon import Agent

SERVICE_IDS = (
    "deposit",
    "withdrawal",
    "statement",
    "rates",
    "video",
    "cheque",
    "assistant",
    "recordings",
)
# Services that need the customer signed in with card and PIN.
SIGNED_IN = frozenset({"deposit", "withdrawal", "statement", "recordings"})
WORKING = (DeviceStatus.ONLINE, DeviceStatus.BUSY)


@dataclass(frozen=True)
class Live:
    """What the derivation reads: device status by name, service state, link, tube, rates."""

    service_state: ServiceState
    devices: Mapping[str, DeviceStatus]
    connected: bool
    tube_busy: bool
    rates_known: bool


@dataclass(frozen=True)
class ServiceRule:
    id: str
    needs: tuple[str, ...]
    needs_bank: bool
    extra: Callable[[Live], bool] = lambda live: True


@dataclass(frozen=True)
class Offer:
    id: str
    available: bool
    notice: str = ""  # catalogue key, e.g. a statement that cannot be printed

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "available": self.available, "notice": self.notice}


CARD = ("card_reader", "pin_pad")
RULES = (
    ServiceRule("deposit", (*CARD, "tube_station"), True, lambda live: not live.tube_busy),
    ServiceRule("withdrawal", (*CARD, "tube_station"), True, lambda live: not live.tube_busy),
    ServiceRule("statement", CARD, True),
    ServiceRule("rates", (), False, lambda live: live.rates_known),
    ServiceRule("video", (), True),
    # Cheque books (flows/cheque.py): the printer with its feeder OCR, the live-face camera
    # and the ID reader; the card + PIN method signs in on the way.
    ServiceRule("cheque", ("cheque_printer", "face_camera", "id_reader"), True),
    # The electronic teller answers from the server's knowledge base.
    ServiceRule("assistant", (), True),
    # "My recordings": watch a transaction's recordings (flows/recordings.py).
    ServiceRule("recordings", CARD, True),
)


def in_service(live: Live) -> bool:
    return live.service_state is ServiceState.IN_SERVICE


def offers(live: Live) -> list[Offer]:
    """Every service with whether it can be used now (and why not, as a notice)."""
    out = []
    serving = in_service(live)
    for rule in RULES:
        ok = (
            serving
            and all(live.devices.get(name) in WORKING for name in rule.needs)
            and (live.connected or not rule.needs_bank)
            and rule.extra(live)
        )
        notice = ""
        if ok and rule.id == "statement" and not can_print(live):
            notice = "notice.printer_unavailable"
        out.append(Offer(rule.id, ok, notice))
    return out


def can_print(live: Live) -> bool:
    return live.devices.get("printer") in WORKING


def notices(live: Live) -> list[str]:
    found = []
    if not live.connected:
        found.append("notice.bank_unreachable")
    if "printer" in live.devices and not can_print(live):
        found.append("notice.printer_unavailable")
    if "tube_station" in live.devices and live.devices["tube_station"] not in WORKING:
        found.append("notice.tube_unavailable")
    elif live.tube_busy:
        found.append("notice.tube_busy")
    return found


def out_of_service_reason(live: Live) -> str:
    """``""`` when in service; else ``maintenance`` or ``out_of_service``."""
    state = live.service_state
    if state is ServiceState.IN_SERVICE:
        return ""
    if state in (ServiceState.MAINTENANCE, ServiceState.MAINTENANCE_PENDING):
        return "maintenance"
    return "out_of_service"


def live_from_agent(agent: Agent) -> Live:
    return Live(
        service_state=agent.service.state,
        devices={s.name: s.status for s in agent.device_snapshots()},
        connected=agent.uplink.connected,
        tube_busy=agent.tube.busy() is not None,
        rates_known=agent.rates.current is not None,
    )
