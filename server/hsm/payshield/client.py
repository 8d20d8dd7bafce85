"""``payshield`` backend: a client of the Thales payShield host command protocol over TCP.

Synchronous and thread-safe: a small pool of connections, one command in flight per
connection, each request with its own message header so a response can be matched to it.
Commands are idempotent, so a command that fails on a pooled connection the HSM had
already closed is sent once more on a new connection.

Inputs are validated here with the same rules as the soft backend before anything is
sent, so both backends reject bad input with the same error codes.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from branchline.common.hsm import validate
from branchline.common.hsm.errors import (
    HsmProtocolError,
    HsmUnavailableError,
    InvalidInputError,
    UnsupportedOperationError,
)
from branchline.common.hsm.interface import (
    DEFAULT_DECIMALIZATION_TABLE,
    Hsm,
    Ibm3624Record,
    KeyInfo,
    KeyType,
    PvvRecord,
    Verification,
)
from branchline.common.hsm.payshield import messages as m
from branchline.common.hsm.payshield.errorcodes import error_for
from branchline.common.hsm.payshield.wire import (
    FieldError,
    Fields,
    Message,
    frame,
    key_field,
    parse_message,
    response_code,
)
from branchline.common.hsm.pinverify import PIN_LENGTHS


class _Closed(Exception):
    """The HSM closed the connection before a whole response arrived."""


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    chunks: list[bytes] = []
    while count:
        chunk = sock.recv(count)
        if not chunk:
            raise _Closed
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


class PayShieldHsm(Hsm):
    backend = "payshield"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        header_length: int = 4,
        timeout: float = 5.0,
        pool_size: int = 4,
        key_refs: Mapping[str, str] | None = None,
    ) -> None:
        """``key_refs`` maps key names to what goes in the key field instead of the
        simulator reference (``#NN<name>``): the key's cryptogram under the LMK on a real
        payShield."""
        if not 0 <= header_length <= 32:
            raise InvalidInputError(f"header length must be 0-32, got {header_length}")
        self.host = host
        self.port = port
        self.header_length = header_length
        self.timeout = timeout
        self._key_refs = dict(key_refs or {})
        self._idle: list[socket.socket] = []
        self._idle_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._counter = itertools.count(1)
        self._counter_lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # --- transport --------------------------------------------------------------------

    def _header(self) -> bytes:
        with self._counter_lock:
            number = next(self._counter)
        if not self.header_length:
            return b""
        return str(number % 10**self.header_length).zfill(self.header_length).encode()

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise HsmUnavailableError(
                f"payShield at {self.address} is unreachable: {exc.strerror or exc}"
            ) from None
        sock.settimeout(self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _checkout(self) -> tuple[socket.socket, bool]:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop(), True
        return self._connect(), False

    def _checkin(self, sock: socket.socket) -> None:
        with self._idle_lock:
            self._idle.append(sock)

    def _roundtrip(self, sock: socket.socket, payload: bytes) -> bytes:
        sock.sendall(frame(payload))
        length = int.from_bytes(_recv_exact(sock, 2), "big")
        return _recv_exact(sock, length)

    def _exchange(self, payload: bytes, command: str) -> bytes:
        with self._slots:
            for attempt in (1, 2):
                sock, reused = self._checkout()
                try:
                    reply = self._roundtrip(sock, payload)
                except (_Closed, OSError) as exc:
                    sock.close()
                    if reused and attempt == 1 and isinstance(exc, _Closed | ConnectionError):
                        continue  # a pooled connection the HSM had dropped: once more
                    reason = (
                        "timed out"
                        if isinstance(exc, TimeoutError)
                        else "closed the connection"
                        if isinstance(exc, _Closed)
                        else (getattr(exc, "strerror", None) or str(exc))
                    )
                    raise HsmUnavailableError(
                        f"payShield at {self.address}: {command} failed: {reason}"
                    ) from None
                self._checkin(sock)
                return reply
        raise AssertionError("unreachable")

    def _call(
        self, request: m.Request, key_roles: tuple[str, str] = ("", "")
    ) -> tuple[str, Fields]:
        """Send ``request``; return its error code and a reader over the response fields."""
        header = self._header()
        code = request.CODE
        payload = Message(header, code, request.encode()).encode()
        reply = self._exchange(payload, code)
        try:
            message = parse_message(reply, self.header_length)
        except FieldError as exc:
            raise HsmProtocolError(f"payShield response to {code}: {exc.message}") from None
        if message.header != header:
            raise HsmProtocolError(f"payShield response to {code} carries another message header")
        expected = response_code(code)
        error_code = message.body[:2]
        if message.code != expected:
            if message.code == "ZZ" and len(error_code) == 2:
                raise error_for(error_code, code, key_roles)
            raise HsmProtocolError(
                f"payShield answered {code} with response code {message.code!r}, "
                f"expected {expected}"
            )
        if len(error_code) != 2 or not error_code.isalnum():
            raise HsmProtocolError(f"payShield response to {code} has no error code")
        return error_code, Fields(message.body[2:])

    def _ok(self, request: m.Request, key_roles: tuple[str, str]) -> Fields:
        error_code, fields = self._call(request, key_roles)
        if error_code != "00":
            raise error_for(error_code, request.CODE, key_roles)
        return fields

    def _verified(self, request: m.Request, key_roles: tuple[str, str]) -> bool:
        error_code, fields = self._call(request, key_roles)
        if error_code in ("00", "01"):
            return error_code == "00"
        raise error_for(error_code, request.CODE, key_roles)

    @staticmethod
    def _decode(what: str, decode: Any, fields: Fields) -> Any:
        try:
            return decode(fields)
        except FieldError as exc:
            raise HsmProtocolError(f"payShield response to {what}: {exc.message}") from None

    def _ref(self, name: str, role: str) -> str:
        validate.key_name(name, f"{role} name")
        return self._key_refs.get(name) or key_field(name)

    # --- operations -------------------------------------------------------------------

    def translate_pin_dukpt_to_zpk(
        self,
        bdk_name: str,
        ksn: bytes,
        pin_block: bytes,
        pan: str,
        zpk_name: str,
        out_format: int = 0,
    ) -> bytes:
        ksn = validate.ksn(ksn)
        block = validate.block(pin_block, m.block_length(ksn))
        pan = validate.pan(pan)
        validate.pin_format(out_format, (0, 1, 3), "destination PIN block format")
        request = m.TranslateDukptToZpk(
            self._ref(bdk_name, "BDK"),
            self._ref(zpk_name, "destination ZPK"),
            ksn,
            block,
            out_format,
            pan,
        )
        fields = self._ok(request, ("BDK", "destination ZPK"))
        result: m.TranslatedPin = self._decode("G0", m.TranslatedPin.decode, fields)
        return result.pin_block

    def translate_pin_tpk_to_zpk(
        self,
        tpk_name: str,
        pin_block: bytes,
        pan: str,
        zpk_name: str,
        in_format: int = 0,
        out_format: int = 0,
    ) -> bytes:
        block, pan = validate.fixed_key_inputs(pin_block, pan, in_format)
        validate.pin_format(out_format, (0, 1, 3), "destination PIN block format")
        request = m.TranslateTpkToZpk(
            self._ref(tpk_name, "source TPK"),
            self._ref(zpk_name, "destination ZPK"),
            block,
            in_format,
            out_format,
            pan,
        )
        fields = self._ok(request, ("source TPK", "destination ZPK"))
        result: m.TranslatedPin = self._decode("CA", m.TranslatedPin.decode, fields)
        return result.pin_block

    def verify_pin_dukpt(
        self,
        bdk_name: str,
        ksn: bytes,
        pin_block: bytes,
        pan: str,
        pvv_key_name: str,
        verification: Verification,
    ) -> bool:
        ksn = validate.ksn(ksn)
        block = validate.block(pin_block, m.block_length(ksn))
        pan = validate.pan(pan)
        request: m.Request
        if isinstance(verification, PvvRecord):
            validate.pvki(verification.pvki)
            validate.digits(verification.pvv, "PVV", range(4, 5))
            bdk, pvk = self._ref(bdk_name, "BDK"), self._ref(pvv_key_name, "PVK")
            request = m.VerifyPvvDukpt(
                bdk, pvk, ksn, block, pan, verification.pvki, verification.pvv
            )
        elif isinstance(verification, Ibm3624Record):
            validate.digits(verification.offset, "IBM 3624 offset", PIN_LENGTHS)
            table = validate.decimalization_table(verification.decimalization_table)
            data = validate.validation_data(verification.validation_data, verification.pad)
            bdk, pvk = self._ref(bdk_name, "BDK"), self._ref(pvv_key_name, "PVK")
            request = m.VerifyIbmDukpt(bdk, pvk, ksn, block, pan, table, data, verification.offset)
        else:
            raise InvalidInputError(
                "verification must be a PvvRecord or an Ibm3624Record, "
                f"got {type(verification).__name__}"
            )
        return self._verified(request, ("BDK", "PVK"))

    @staticmethod
    def _key_type_code(pin_key_type: KeyType) -> str:
        if pin_key_type is KeyType.TPK:
            return m.KEY_TYPE_TPK
        if pin_key_type is KeyType.ZPK:
            return m.KEY_TYPE_ZPK
        raise InvalidInputError(f"PIN key type must be TPK or ZPK, got {pin_key_type}")

    def generate_pvv(
        self,
        pin_key_name: str,
        pin_block: bytes,
        pan: str,
        pvk_name: str,
        pvki: int,
        in_format: int = 0,
        pin_key_type: KeyType = KeyType.TPK,
    ) -> PvvRecord:
        block, pan = validate.fixed_key_inputs(pin_block, pan, in_format)
        validate.pvki(pvki)
        request = m.GeneratePvv(
            self._key_type_code(pin_key_type),
            self._ref(pin_key_name, "PIN key"),
            self._ref(pvk_name, "PVK"),
            block,
            in_format,
            pan,
            pvki,
        )
        fields = self._ok(request, ("PIN key", "PVK"))
        result: m.PvvResult = self._decode("FW", m.PvvResult.decode, fields)
        return PvvRecord(pvki, result.pvv)

    def generate_ibm3624_offset(
        self,
        pin_key_name: str,
        pin_block: bytes,
        pan: str,
        pvk_name: str,
        validation_data: str,
        decimalization_table: str = DEFAULT_DECIMALIZATION_TABLE,
        pad: str = "F",
        in_format: int = 0,
        pin_key_type: KeyType = KeyType.TPK,
    ) -> Ibm3624Record:
        block, pan = validate.fixed_key_inputs(pin_block, pan, in_format)
        validate.decimalization_table(decimalization_table)
        padded = validate.validation_data(validation_data, pad)
        request = m.GenerateIbmOffset(
            self._key_type_code(pin_key_type),
            self._ref(pin_key_name, "PIN key"),
            self._ref(pvk_name, "PVK"),
            block,
            in_format,
            4,  # check length: the minimum PIN length; the offset gets the PIN's length
            pan,
            decimalization_table,
            padded,
        )
        fields = self._ok(request, ("PIN key", "PVK"))
        result: m.OffsetResult = self._decode("BK", m.OffsetResult.decode, fields)
        return Ibm3624Record(
            result.offset, validation_data.upper(), decimalization_table, pad.upper()
        )

    def derive_initial_key(self, bdk_name: str, ksn: bytes) -> tuple[bytes, str]:
        raise UnsupportedOperationError(
            "the payshield backend does not export initial keys: on a payShield the IPEK "
            "is generated and exported under a TMK/ZMK by the key custodians (command A0)"
        )

    def diagnostics(self) -> dict[str, Any]:
        started = time.monotonic()
        fields = self._ok(m.Diagnostics(), ("", ""))
        result: m.DiagnosticsResult = self._decode("NC", m.DiagnosticsResult.decode, fields)
        return {
            "backend": self.backend,
            "status": "ok",
            "address": self.address,
            "lmk_check_value": result.lmk_check_value,
            "firmware": result.firmware,
            "round_trip_ms": round((time.monotonic() - started) * 1000, 3),
        }

    def list_keys(self) -> list[KeyInfo]:
        raise UnsupportedOperationError(
            "a payShield does not list keys: the host keeps them as cryptograms under the "
            "LMK; use branchline-hsm list on the key custodians' keystore"
        )

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()
