"""``[kiosk]``: where the agent serves the customer's page, its language and time limits.

Read strictly like the rest of the agent config; the page is served on loopback only (the
customer's browser runs on the terminal itself), so any other address is refused.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from branchline.common.config_reader import SectionReader
from branchline.common.ice import IceServers, parse_ice_servers

LANGUAGES = ("zh-CN", "en")
# WCAG 2.2.1: the customer gets at least 20 s to ask for more time.
MIN_WARNING_SECONDS = 20.0


@dataclass(frozen=True)
class KioskSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    # 0: any free port (tests); the bound address is written to ``kiosk.url`` in the state dir.
    port: int = 8780
    language: str = "zh-CN"
    # Seconds without an action on a waiting screen before the warning shows.
    inactivity_timeout: float = 60.0
    # Seconds the warning gives the customer to ask for more time.
    warning_seconds: float = 30.0
    # Seconds the customer has to insert the card after choosing a service.
    card_seconds: float = 60.0
    # Seconds the PIN pad waits for each key.
    pin_seconds: float = 30.0
    # STUN/TURN servers for the video-teller call's WebRTC (common/ice.py; empty: host
    # candidates only, enough on a flat LAN).
    ice: IceServers = IceServers()

    @property
    def listen(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen(text: str) -> tuple[str, int]:
    """(host, port) from ``host:port``; ValueError naming what is wrong."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected host:port such as 127.0.0.1:8780, got {text!r}")
    host = host.strip("[]")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535, got {port_text!r}")
    if host != "localhost":
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IP address or localhost") from None
        if not address.is_loopback:
            raise ValueError(
                f"{host} is not a loopback address: the kiosk page is served to this "
                "terminal's own screen only (use 127.0.0.1 or ::1)"
            )
    return host, int(port_text)


def read_kiosk(reader: SectionReader) -> KioskSettings:
    defaults = KioskSettings()
    listen = reader.get_str("listen", defaults.listen)
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise reader.error("listen", str(exc)) from None
    warning = reader.get_float("warning_seconds", defaults.warning_seconds, maxval=600.0)
    if warning < MIN_WARNING_SECONDS:
        raise reader.error(
            "warning_seconds",
            f"must be at least {MIN_WARNING_SECONDS:.0f} (WCAG 2.2.1 gives the customer 20 s "
            f"to ask for more time), got {warning}",
        )
    settings = KioskSettings(
        enabled=reader.get_bool("enabled", defaults.enabled),
        host=host,
        port=port,
        language=reader.get_choice("language", list(LANGUAGES), defaults.language),
        inactivity_timeout=reader.get_float(
            "inactivity_timeout", defaults.inactivity_timeout, above=4.0, maxval=3600.0
        ),
        warning_seconds=warning,
        card_seconds=reader.get_float(
            "card_seconds", defaults.card_seconds, above=4.0, maxval=600.0
        ),
        pin_seconds=reader.get_float("pin_seconds", defaults.pin_seconds, above=4.0, maxval=255.0),
        ice=_read_ice(reader),
    )
    reader.finish()
    return settings


def _read_ice(reader: SectionReader) -> IceServers:
    # A list, or one comma-separated string (the reader has no list getter).
    urls = reader._get("ice_servers", [], (list, str), "a list of STUN/TURN URLs")  # noqa: SLF001
    if isinstance(urls, list) and not all(isinstance(u, str) for u in urls):
        raise reader.error("ice_servers", "expected a list of strings")
    username = reader.get_str("ice_username", "", allow_empty=True)
    credential = reader.get_str("ice_credential", "", allow_empty=True)
    try:
        return parse_ice_servers(urls, username, credential)
    except ValueError as exc:
        raise reader.error("ice_servers", str(exc)) from None
