"""The rate feed capability: new FX rate tables pushed to every connected terminal, and
the current one to each terminal as it registers."""

from __future__ import annotations

from branchline.server.capability import Hub
from branchline.server.rates.feed import RateFeed


class RatesCapability:
    name = "rates"

    def setup(self, hub: Hub) -> None:
        feed = RateFeed(
            hub.engine,
            hub.link.broadcast,
            hub.link.push,
            hub.settings.rate_poll_seconds,
            hub.optional("bus"),
        )
        hub.on_connect(feed.on_connect)
        hub.background("poll", feed.run)


RATES = RatesCapability()
