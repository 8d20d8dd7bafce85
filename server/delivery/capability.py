"""The delivery capability: the bus that carries pushes and change signals between
replicas (``server/delivery/bus.py``). In-process on SQLite, PostgreSQL LISTEN/NOTIFY when
the database is PostgreSQL. Provides ``bus``; the TerminalLink servicer hands it every push
for a terminal whose stream is not on this replica."""

from __future__ import annotations

from branchline.server.capability import Hub
from branchline.server.delivery.bus import DEFAULT_BACKSTOP_SECONDS, LocalBus


def make_bus(hub: Hub) -> LocalBus:
    backstop = getattr(hub.settings, "bus_backstop_seconds", DEFAULT_BACKSTOP_SECONDS)
    if hub.engine.dialect.name == "postgresql":
        from branchline.server.delivery.pg import PgBus

        return PgBus(hub.engine, hub.settings.replica, backstop)
    return LocalBus(backstop)


class DeliveryCapability:
    name = "delivery"

    def setup(self, hub: Hub) -> None:
        bus = make_bus(hub)
        hub.link.attach_bus(bus)
        hub.provide("bus", bus)
        # First of the connect hooks: what waited for this terminal is queued before the
        # other capabilities push their current state.
        hub.on_connect(bus.catch_up)
        hub.background("bus", bus.run)
        hub.on_stop(bus.close)


DELIVERY = DeliveryCapability()
