"""Identifiers the server sends, in words of the console's language.

Tube event kinds, tube states, who made a change (``terminal:T-0001`` -> "Terminal T-0001" /
"终端 T-0001", the id kept), incident kinds, device names and statuses, terminals' service
states. Each from the catalogue; an id it does not know yet reads humanised
(``card_dispenser`` -> "Card dispenser"), never blank and never the raw id. The state keeps the
raw ids beside these (the page puts them in data-* attributes).
"""

from __future__ import annotations

from branchline.server.console.i18n import catalogue, humanised, named, text


def tube_event_name(lang: str, event: str) -> str:
    return named(lang, "tube.event", event)


def tube_state_name(lang: str, state: str) -> str:
    return named(lang, "state", state)


def tube_kind_name(lang: str, kind: str) -> str:
    return named(lang, "kind", kind)


def asset_name(lang: str, asset: str) -> str:
    return named(lang, "asset", asset) if asset else ""


def incident_name(lang: str, kind: str) -> str:
    return named(lang, "incident", kind)


def actor_name(lang: str, actor: str) -> str:
    """``teller:BO-1`` -> "Teller BO-1" / "柜员 BO-1"; ``server`` -> "Server"."""
    role, _, ident = actor.partition(":")
    key = f"actor.{role.lower()}"
    if key in catalogue(lang):
        return text(lang, key, id=ident).strip()
    return f"{humanised(role)} {ident}".strip() if role else ident


def device_name(lang: str, device: str) -> str:
    return named(lang, "device.name", device)


def device_status_name(lang: str, status: str) -> str:
    return named(lang, "device", status)


def service_name(lang: str, state: str) -> str:
    return named(lang, "service", state)
