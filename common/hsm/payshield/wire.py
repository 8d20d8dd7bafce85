"""Thales payShield host-command framing (payShield 9000 / 10K, TCP).

Every message is a 2-byte big-endian length, then the payload: a message header of a
fixed, configured length (echoed back unchanged), a 2-character command code, the
command's fields, and optionally an end-message delimiter X'19' followed by a trailer
(echoed back). A response carries the command code with its second character plus one
(CA -> CB, G0 -> G1, NC -> ND) and a 2-digit error code before its fields.

Branchline simplification: real payShields take keys as cryptograms under the LMK
(``U`` + 32 hex digits, ``T`` + 48, or ``K`` + a user-storage index). Our simulator keeps
keys in its own keystore and takes a *key reference*: ``#``, two decimal digits giving
the name's length, then the key name, e.g. ``#07zpk-001``. The client sends a configured
cryptogram instead when one is given for that name, so the same client can talk to a
real payShield for the commands whose fields are unchanged.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from ..validate import KEY_NAME

MAX_PAYLOAD = 0xFFFF
END_DELIMITER = "\x19"
KEY_REF_PREFIX = "#"
_HEX = frozenset(string.hexdigits)
_CODE = re.compile(r"[A-Z0-9]{2}")


class FieldError(Exception):
    """A field of a message is malformed; ``error_code`` is the payShield code to answer."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def response_code(command: str) -> str:
    """CA -> CB, G0 -> G1, NC -> ND: the second character plus one."""
    if not _CODE.fullmatch(command) or command[1] in "9Z":
        return "ZZ"
    return command[0] + chr(ord(command[1]) + 1)


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payShield message of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return len(payload).to_bytes(2, "big") + payload


@dataclass(frozen=True)
class Message:
    header: bytes
    code: str
    body: str
    trailer: str | None = None

    def encode(self) -> bytes:
        tail = "" if self.trailer is None else END_DELIMITER + self.trailer
        return self.header + (self.code + self.body + tail).encode("ascii")


def parse_message(payload: bytes, header_length: int) -> Message:
    """Split a payload into header, code, body and trailer; FieldError when it cannot."""
    header = payload[:header_length]
    if len(payload) < header_length + 2:
        raise FieldError("15", f"message of {len(payload)} bytes has no room for a command code")
    try:
        rest = payload[header_length:].decode("ascii")
    except UnicodeDecodeError as exc:
        raise FieldError(
            "15", f"byte {header_length + exc.start} is not ASCII (fields are ASCII text)"
        ) from None
    code, body = rest[:2], rest[2:]
    trailer: str | None = None
    if END_DELIMITER in body:
        body, trailer = body.split(END_DELIMITER, 1)
    return Message(header, code, body, trailer)


def key_field(name: str) -> str:
    """A key name as a simulator key reference: ``#`` + 2-digit length + name."""
    if not KEY_NAME.fullmatch(name):
        raise ValueError("key names are 1-56 characters of letters, digits, '.', '_', '-'")
    return f"{KEY_REF_PREFIX}{len(name):02d}{name}"


class Fields:
    """Sequential reader over a command's or response's fields."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def take(self, count: int, what: str) -> str:
        end = self.pos + count
        if end > len(self.text):
            raise FieldError(
                "15", f"{what}: message ends after {len(self.text)} characters, expected more"
            )
        value = self.text[self.pos : end]
        self.pos = end
        return value

    def hex(self, count: int, what: str, error_code: str = "15") -> str:
        value = self.take(count, what)
        if not set(value) <= _HEX:
            raise FieldError(error_code, f"{what} must be {count} hex characters")
        return value.upper()

    def num(self, count: int, what: str, error_code: str = "15") -> str:
        value = self.take(count, what)
        if not value.isdigit() or not value.isascii():
            raise FieldError(error_code, f"{what} must be {count} decimal digits")
        return value

    def key(self, what: str, error_code: str = "15") -> str:
        """A ``#NN<name>`` key reference; other key schemes are refused (code 26)."""
        scheme = self.take(1, what)
        if scheme != KEY_REF_PREFIX:
            raise FieldError(
                "26",
                f"{what}: key scheme {scheme!r} is not supported here; "
                f"use {KEY_REF_PREFIX}NN<key name>",
            )
        length = int(self.num(2, f"{what} length", error_code))
        name = self.take(length, what)
        if not KEY_NAME.fullmatch(name):
            raise FieldError(error_code, f"{what} is not a valid key name")
        return name

    def end(self) -> None:
        if self.pos != len(self.text):
            raise FieldError(
                "15", f"{len(self.text) - self.pos} unexpected characters after the last field"
            )
