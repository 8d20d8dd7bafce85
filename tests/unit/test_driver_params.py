"""The one parameter check every driver uses (drivers/params.py): names, types, bounds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from branchline.drivers import params as param
from branchline.drivers.base import Completion, DeviceError

ROOT = Path(__file__).resolve().parents[2]


def refusal(check: Callable[[], Any]) -> str:
    with pytest.raises(DeviceError) as caught:
        check()
    error = caught.value
    assert (error.completion, error.code) == (Completion.INVALID_DATA, param.BAD_PARAMETER)
    return error.message


def test_unknown_parameters_are_named_with_what_is_accepted() -> None:
    param.only({"timeout_s": 3}, {"timeout_s"})
    assert refusal(lambda: param.only({"colour": 1}, ())) == (
        "colour: unknown parameter (accepted: none)"
    )
    assert refusal(lambda: param.only({"pin": "1", "pan": "2"}, {"pan"}, command="read_pin")) == (
        "read_pin.pin: unknown parameter (accepted: pan)"
    )
    long_name = "x" * 500
    assert len(refusal(lambda: param.only({long_name: 1}, ()))) < 120


def test_seconds_are_bounded() -> None:
    assert param.seconds({}, "timeout_s", 30, maximum=600) == 30.0
    assert param.seconds({"timeout_s": 2}, "timeout_s", 30, maximum=600) == 2.0
    assert refusal(lambda: param.seconds({"timeout_s": "x"}, "timeout_s", 1, maximum=9)) == (
        "timeout_s: expected a number of seconds, got str"
    )
    assert refusal(lambda: param.seconds({"timeout_s": True}, "timeout_s", 1, maximum=9)) == (
        "timeout_s: expected a number of seconds, got bool"
    )
    assert refusal(lambda: param.seconds({"timeout_s": 0}, "timeout_s", 1, maximum=9)) == (
        "timeout_s: must be above 0 and at most 9, got 0"
    )
    assert "at most 9, got 9.5" in refusal(
        lambda: param.seconds({"timeout_s": 9.5}, "timeout_s", 1, maximum=9)
    )
    # Typed by a person: numeric text only where the caller says so.
    assert param.seconds({"t": "2.5"}, "t", 1, maximum=9, text_ok=True) == 2.5
    assert "got str" in refusal(lambda: param.seconds({"t": "2.5"}, "t", 1, maximum=9))


def test_whole_numbers_are_bounded_and_may_be_required() -> None:
    assert param.whole_number({}, "count", 0, 0, 999) == 0
    assert param.whole_number({"count": 999}, "count", 0, 0, 999) == 999
    assert refusal(lambda: param.whole_number({"count": 1000}, "count", 0, 0, 999)) == (
        "count: expected a whole number 0..999, got 1000"
    )
    assert refusal(lambda: param.whole_number({"n": 1.0}, "n", 0, 0, 9, command="c")) == (
        "c.n: expected a whole number 0..9, got float"
    )
    assert "got bool" in refusal(lambda: param.whole_number({"n": True}, "n", 0, 0, 9))
    assert refusal(lambda: param.whole_number({}, "carrier_id", None, 1, 5)) == (
        "carrier_id: required, a whole number 1..5"
    )
    assert param.whole_number({"id": "42"}, "id", None, 1, 99, digits_ok=True) == 42
    assert "got str" in refusal(lambda: param.whole_number({"id": "42"}, "id", None, 1, 99))
    assert "got str" in refusal(
        lambda: param.whole_number({"id": "4x"}, "id", None, 1, 99, digits_ok=True)
    )


def test_flags_and_choices() -> None:
    assert param.flag({}, "close", True) is True
    assert param.flag({"close": False}, "close", True) is False
    assert refusal(lambda: param.flag({"close": 1}, "close", True)) == (
        "close: expected true or false, got 1"
    )
    assert param.one_of({"card": "eject"}, "card", "keep", ("keep", "eject")) == "eject"
    assert refusal(lambda: param.one_of({"card": "x" * 300}, "card", "keep", ("keep",))) == (
        f"card: must be one of keep; got {'x' * 40!r}... (300 characters)"
    )


def test_no_driver_invents_its_own_bad_parameter_code() -> None:
    # One code for a bad parameter: drivers raise it through drivers/params.py only.
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "drivers").rglob("*.py"))
        if path.name != "params.py"
        and any(code in path.read_text() for code in ('"invalid_params"', '"invalid_parameter"'))
    ]
    assert offenders == []
