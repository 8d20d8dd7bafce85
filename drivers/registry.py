"""Find driver classes by name through the ``branchline.drivers`` entry-point group.

A vendor's package declares ``[project.entry-points."branchline.drivers"] acme_epp = "..."``
and the agent's config can then say ``driver = "acme_epp"`` without touching the agent.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from branchline.drivers.base import Driver

GROUP = "branchline.drivers"


class DriverNotFound(LookupError):
    pass


def available_drivers() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load_driver_class(name: str) -> type[Driver]:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(available_drivers()) or "none installed"
        raise DriverNotFound(f"unknown driver {name!r}; installed drivers: {known}")
    try:
        cls = matches[0].load()
    except Exception as exc:  # a broken vendor package must not take the agent down silently
        raise DriverNotFound(f"driver {name!r} failed to load: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise DriverNotFound(f"driver {name!r} ({matches[0].value}) is not a Driver subclass")
    return cls
