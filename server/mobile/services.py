"""The services a paired phone may pick, from the terminal's live record in the fleet registry.

A declarative table: each service names the devices it needs working. A service whose
device is faulted (tube jammed, receipt printer out of paper, cheque printer empty) leaves
the list; a terminal that is offline or not in service offers nothing. Authentication at
the terminal (card + PIN on its own devices) is offered only while the card reader and the
PIN pad both work.
"""

from __future__ import annotations

from dataclasses import dataclass

from branchline.server.fleet_registry import TerminalRecord

# Device statuses (the agent's DeviceStatus values) in which a device can do its job.
WORKING = frozenset({"online", "busy"})
IN_SERVICE = "in_service"
AUTH_AT_TERMINAL = "terminal"

CARD_DEVICES = ("card_reader", "pin_pad")


@dataclass(frozen=True)
class ServiceRule:
    id: str
    # Devices that must be present and working.
    needs: tuple[str, ...]


RULES = (
    ServiceRule("tube_deposit", ("tube_station",)),
    ServiceRule("tube_withdrawal", ("tube_station",)),
    ServiceRule("statement_view", ()),
    ServiceRule("statement_print", ("printer",)),
    ServiceRule("cheque_book", ("cheque_printer",)),
    ServiceRule("video_teller", ()),
)
SERVICE_IDS = tuple(rule.id for rule in RULES)


@dataclass(frozen=True)
class ServiceList:
    terminal_id: str
    # "" when the terminal can serve; else offline, out_of_service, maintenance.
    unavailable_reason: str
    services: tuple[str, ...]
    # How the customer may authenticate for a service: "terminal" (card + PIN there).
    auth_methods: tuple[str, ...]


def service_list(terminal: TerminalRecord, withheld: frozenset[str] = frozenset()) -> ServiceList:
    """``withheld``: services this server cannot carry out at all (``cheque_book`` without
    the cheque capability), never listed."""
    reason = _unavailable_reason(terminal)
    if reason:
        return ServiceList(terminal.terminal_id, reason, (), ())
    status = {device.name: device.status for device in terminal.devices}
    services = tuple(
        rule.id
        for rule in RULES
        if rule.id not in withheld and all(status.get(name) in WORKING for name in rule.needs)
    )
    card_works = all(status.get(name) in WORKING for name in CARD_DEVICES)
    auth = (AUTH_AT_TERMINAL,) if card_works else ()
    return ServiceList(terminal.terminal_id, "", services, auth)


def _unavailable_reason(terminal: TerminalRecord) -> str:
    if not terminal.online:
        return "offline"
    if terminal.service_state == IN_SERVICE:
        return ""
    if terminal.service_state in ("maintenance", "maintenance_pending"):
        return "maintenance"
    return "out_of_service"
