"""ICE servers (STUN/TURN) for the pages' WebRTC calls: parsed once from the agent's
``[kiosk]`` options or the console's options, handed to the page as the
``RTCPeerConnection`` ``iceServers`` list.

A branch network that blocks UDP needs a TURN server (``turn:host:3478?transport=tcp`` or
``turns:host:443``) with a username and credential; on a flat LAN (and on loopback) an empty
list is enough: the browsers use their host candidates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEMES = ("stun", "stuns", "turn", "turns")
# scheme:host[:port][?transport=udp|tcp], RFC 7064 / RFC 7065.
_URL = re.compile(
    r"^(?P<scheme>stuns?|turns?):(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)"
    r"(?::(?P<port>\d{1,5}))?(?:\?transport=(?P<transport>udp|tcp))?$"
)
MAX_SERVERS = 8
MAX_CREDENTIAL = 256


@dataclass(frozen=True)
class IceServers:
    urls: tuple[str, ...] = ()
    username: str = ""
    credential: str = ""

    def for_page(self) -> list[dict[str, object]]:
        """The ``iceServers`` list of an ``RTCConfiguration``: STUN URLs alone, TURN URLs
        with the username and credential."""
        stun = [u for u in self.urls if not u.startswith("turn")]
        turn = [u for u in self.urls if u.startswith("turn")]
        servers: list[dict[str, object]] = []
        if stun:
            servers.append({"urls": stun})
        if turn:
            servers.append({"urls": turn, "username": self.username, "credential": self.credential})
        return servers


def parse_ice_servers(
    urls: str | list[str], username: str = "", credential: str = ""
) -> IceServers:
    """The servers from a comma-separated string (or a list) of URLs; ValueError naming the
    URL that is wrong, or a TURN URL without username and credential."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    cleaned = tuple(item.strip() for item in items if item.strip())
    if len(cleaned) > MAX_SERVERS:
        raise ValueError(f"at most {MAX_SERVERS} ICE server URLs, got {len(cleaned)}")
    for url in cleaned:
        match = _URL.match(url)
        if match is None:
            raise ValueError(
                f"{url[:80]!r} is not a STUN/TURN URL (expected {'|'.join(SCHEMES)}:host[:port]"
                "[?transport=udp|tcp])"
            )
        if match["port"] and not 0 < int(match["port"]) <= 65535:
            raise ValueError(f"{url[:80]!r}: port must be 1-65535")
        if match["transport"] and match["scheme"].startswith("stun"):
            raise ValueError(f"{url[:80]!r}: ?transport= is for TURN URLs only")
    if len(username) > MAX_CREDENTIAL or len(credential) > MAX_CREDENTIAL:
        raise ValueError(f"ICE username and credential are at most {MAX_CREDENTIAL} characters")
    if any(u.startswith("turn") for u in cleaned) and not (username and credential):
        raise ValueError("a TURN server needs ice_username and ice_credential")
    return IceServers(cleaned, username, credential)
