"""The PIN pad commands' parameters, checked and turned into EPP requests.

Errors name the parameter (``read_pin.min_len: ...``) and never repeat a PAN, a key or a KSN.
"""

from __future__ import annotations

from typing import Any

from branchline.drivers import params as param
from branchline.drivers.pin_pad import ksn as ksn_counter
from branchline.drivers.pin_pad import protocol as p


def load_key_request(params: dict[str, Any], slot: int) -> p.LoadKey:
    """Validate ``load_key``'s parameters; errors never repeat the key or the KSN."""
    param.only(params, {"algorithm", "key_hex", "ksn_hex"}, command="load_key")
    algorithm_name = params.get("algorithm")
    if algorithm_name not in ("tdes", "aes"):
        raise param.bad_parameter("load_key.algorithm: must be tdes or aes")
    algorithm = p.Algorithm(algorithm_name)
    lengths = "/".join(str(2 * n) for n in algorithm.key_lengths)
    key = _hex(params.get("key_hex"), "load_key.key_hex", {2 * n for n in algorithm.key_lengths})
    if key is None:
        raise param.bad_parameter(
            f"load_key.key_hex: expected {lengths} hex digits for a {algorithm} key"
        )
    ksn = _hex(params.get("ksn_hex"), "load_key.ksn_hex", {2 * algorithm.ksn_length})
    if ksn is None:
        raise param.bad_parameter(
            f"load_key.ksn_hex: expected {2 * algorithm.ksn_length} hex digits "
            f"for a {algorithm} KSN"
        )
    if ksn_counter.ksn_counter(algorithm, ksn) != 0:
        raise param.bad_parameter(
            "load_key.ksn_hex: the initial KSN's transaction counter must be 0"
        )
    return p.LoadKey(slot, algorithm, key, ksn)


def _hex(value: Any, what: str, lengths: set[int]) -> bytes | None:
    """Bytes of a hex string of one of ``lengths`` digits; None when it is not one.

    The value itself never appears in an error: it may be key material."""
    if not isinstance(value, str):
        if value is None:
            raise param.bad_parameter(f"{what}: required")
        raise param.bad_parameter(f"{what}: expected a hex string, got {type(value).__name__}")
    if len(value) not in lengths:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise param.bad_parameter(f"{what}: not hexadecimal") from None


def pin_request(params: dict[str, Any], slot: int) -> p.StartPin:
    """Validate ``read_pin``'s parameters; errors never repeat the PAN."""
    param.only(params, {"pan", "min_len", "max_len", "timeout_s", "format"}, command="read_pin")
    pan = params.get("pan")
    if isinstance(pan, int) and not isinstance(pan, bool):
        pan = str(pan)  # branchline-diag turns digit strings into JSON numbers
    if not isinstance(pan, str) or not pan.isascii() or not pan.isdigit():
        raise param.bad_parameter(f"read_pin.pan: required, {p.PAN_MIN}-{p.PAN_MAX} digits")
    if not p.PAN_MIN <= len(pan) <= p.PAN_MAX:
        raise param.bad_parameter(
            f"read_pin.pan: must be {p.PAN_MIN}-{p.PAN_MAX} digits, got {len(pan)} digits"
        )
    min_len = param.whole_number(params, "min_len", 4, p.PIN_MIN, p.PIN_MAX, command="read_pin")
    max_len = param.whole_number(
        params, "max_len", p.PIN_MAX, min_len, p.PIN_MAX, command="read_pin"
    )
    timeout_s = param.whole_number(params, "timeout_s", 30, 1, 255, command="read_pin")
    fmt = params.get("format")
    if fmt is not None and (isinstance(fmt, bool) or fmt not in (0, 4)):
        raise param.bad_parameter("read_pin.format: must be 0 (TDES) or 4 (AES)")
    return p.StartPin(slot, min_len, max_len, timeout_s, fmt, pan)
