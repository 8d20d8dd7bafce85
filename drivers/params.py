"""The one check for a device command's parameters: names, types and bounds.

Every driver refuses a bad parameter the same way: ``DeviceError`` with completion
``invalid_data``, code ``invalid_parameter`` (``BAD_PARAMETER``) and a message that starts
with the parameter's name (``read_pin.min_len: ...`` when the command's name is given as a
prefix). Caller input is echoed short and truncated; parameters that may carry secrets (key
material, PANs) are checked by the driver without echoing them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from branchline.common.errors import ECHO_LIMIT, echo
from branchline.drivers.base import Completion, DeviceError

BAD_PARAMETER = "invalid_parameter"

Params = Mapping[str, Any]


def bad_parameter(message: str) -> DeviceError:
    """The error for a bad command parameter; ``message`` starts with the parameter's name."""
    return DeviceError(Completion.INVALID_DATA, BAD_PARAMETER, message)


def _name(key: object) -> str:
    text = str(key)
    return text if len(text) <= ECHO_LIMIT else f"{text[:ECHO_LIMIT]}..."


def _shown(value: object) -> str:
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return echo(value)


def only(params: Params, allowed: Iterable[str], *, command: str = "") -> None:
    """Refuse the first parameter (by name) that is not in ``allowed``."""
    accepted = sorted(set(allowed))
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        prefix = f"{command}." if command else ""
        raise bad_parameter(
            f"{prefix}{_name(unknown[0])}: unknown parameter "
            f"(accepted: {', '.join(accepted) or 'none'})"
        )


def seconds(
    params: Params,
    name: str,
    default: float,
    *,
    maximum: float,
    command: str = "",
    text_ok: bool = False,
) -> float:
    """A duration in seconds above 0 and at most ``maximum``; numeric text too when
    ``text_ok`` (values typed by a person)."""
    label = f"{command}.{name}" if command else name
    value = params.get(name, default)
    if text_ok and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_parameter(f"{label}: expected a number of seconds, got {type(value).__name__}")
    if not 0 < value <= maximum:
        raise bad_parameter(f"{label}: must be above 0 and at most {maximum:g}, got {value:g}")
    return float(value)


def whole_number(
    params: Params,
    name: str,
    default: int | None,
    low: int,
    high: int,
    *,
    command: str = "",
    digits_ok: bool = False,
) -> int:
    """A whole number in ``low..high``. ``default`` None makes the parameter required;
    ``digits_ok`` accepts a string of digits (an id typed by a person)."""
    label = f"{command}.{name}" if command else name
    value = params.get(name, default)
    if value is None:
        raise bad_parameter(f"{label}: required, a whole number {low}..{high}")
    if digits_ok and isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_parameter(
            f"{label}: expected a whole number {low}..{high}, got {type(value).__name__}"
        )
    if not low <= value <= high:
        raise bad_parameter(f"{label}: expected a whole number {low}..{high}, got {value}")
    return value


def flag(params: Params, name: str, default: bool, *, command: str = "") -> bool:
    """true or false, nothing else (not 0/1, not "yes")."""
    label = f"{command}.{name}" if command else name
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise bad_parameter(f"{label}: expected true or false, got {_shown(value)}")
    return value


def one_of(
    params: Params, name: str, default: str, choices: Collection[str], *, command: str = ""
) -> str:
    """One of ``choices`` (compared exactly)."""
    label = f"{command}.{name}" if command else name
    value = params.get(name, default)
    if not isinstance(value, str) or value not in choices:
        raise bad_parameter(f"{label}: must be one of {', '.join(choices)}; got {_shown(value)}")
    return value
