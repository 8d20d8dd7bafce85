"""The Modbus RTU link to the station controller, through pymodbus's synchronous serial client.

Only this module knows pymodbus. It turns pymodbus's outcomes into the driver contract:

- the port cannot be opened, or a write/read fails on a dead line -> ``DeviceGone``;
- no valid reply after the retries -> ``NoResponse`` (also ``DeviceGone`` when the port's
  path has vanished or now names another device: the USB-RS485 adapter was pulled);
- a Modbus exception reply -> ``DeviceError`` naming function, address and exception code.

Every frame on the wire goes to the driver's tap for ``branchline-diag spy``: outgoing
frames through pymodbus's ``trace_packet`` hook, incoming bytes from ``recv`` (pymodbus
hands ``trace_packet`` the whole receive buffer again each time a frame arrives in pieces,
so tapping there would show bytes twice).
"""

from __future__ import annotations

import logging
import os
import termios
from collections.abc import Callable, Sequence
from typing import Any

import serial
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from branchline.drivers.base import Completion, DeviceError, DeviceGone

Tap = Callable[[str, bytes], None]

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
}

# pymodbus logs every unanswered request at ERROR; the driver reports it once, its own way.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


class NoResponse(DeviceError):
    def __init__(self, message: str) -> None:
        super().__init__(Completion.DEVICE_NOT_READY, "no_response", message)


class _TappedSerialClient(ModbusSerialClient):
    """pymodbus's serial client with the bytes it reads shown to the tap, and the reason an
    open failed kept (pymodbus only logs it)."""

    rx_tap: Tap | None = None
    open_error = ""

    def connect(self) -> bool:
        if self.socket is not None:
            return True
        params = self.comm_params
        try:
            self.socket = serial.serial_for_url(
                params.host,
                timeout=params.timeout_connect,
                write_timeout=params.timeout_connect,
                bytesize=params.bytesize,
                stopbits=params.stopbits,
                baudrate=params.baudrate,
                parity=params.parity,
                exclusive=True,  # one owner per device
            )
            self.socket.inter_byte_timeout = self.inter_byte_timeout
        except (serial.SerialException, OSError, ValueError, termios.error) as exc:
            # termios.error is not an OSError: e.g. a line that refuses the parity asked for.
            self.open_error = str(exc)
            self.socket = None
        return self.socket is not None

    def recv(self, size: int | None) -> bytes:
        data = super().recv(size)
        if data and self.rx_tap is not None:
            self.rx_tap("rx", bytes(data))
        return data


class ModbusLink:
    def __init__(
        self,
        port: str,
        *,
        baudrate: int,
        parity: str,
        stopbits: int,
        unit_id: int,
        timeout: float,
        retries: int,
        tap: Tap | None,
    ) -> None:
        self.port = port
        self.unit_id = unit_id
        self._tap = tap
        self._client = _TappedSerialClient(
            port,
            baudrate=baudrate,
            parity=parity,
            stopbits=stopbits,
            bytesize=8,
            timeout=timeout,
            retries=retries,
            trace_packet=self._trace,
        )
        self._client.rx_tap = tap
        self._rdev: int | None = None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending and data and self._tap is not None:
            self._tap("tx", bytes(data))
        return data  # pymodbus sends (and parses) what the trace returns

    def _device_id(self) -> int | None:
        if "://" in self.port:
            return None
        try:
            return os.stat(self.port).st_rdev
        except OSError:
            return None

    def open(self) -> None:
        if "://" not in self.port and not os.path.exists(self.port):
            raise DeviceGone(f"serial port {self.port} does not exist")
        if not self._client.connect():
            raise DeviceGone(f"cannot open serial port {self.port}: {self._client.open_error}")
        self._rdev = self._device_id()
        # Whatever an earlier session left on the line is not an answer to us.
        if self._client.socket is not None:
            try:
                self._client.socket.reset_input_buffer()
            except (OSError, ValueError) as exc:
                self.close()
                raise DeviceGone(f"{self.port}: {exc}") from None

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing a dead port must never raise
            pass

    def _port_replaced(self) -> bool:
        if "://" in self.port:
            return False
        return not os.path.exists(self.port) or self._device_id() != self._rdev

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        if not self._client.connected:
            raise DeviceGone(f"serial port {self.port} is closed")
        try:
            reply = fn()
        except ConnectionException:
            self.close()
            raise DeviceGone(f"{self.port}: the line failed during {what}") from None
        except ModbusIOException:
            if self._port_replaced():
                self.close()
                raise DeviceGone(f"serial port {self.port} has gone") from None
            raise NoResponse(
                f"station controller (unit {self.unit_id}) did not answer {what}"
            ) from None
        except ModbusException as exc:
            raise DeviceError(
                Completion.HARDWARE_ERROR, "modbus_failed", f"{what} failed: {exc}"
            ) from None
        except OSError as exc:  # pyserial errors pymodbus does not wrap
            self.close()
            raise DeviceGone(f"{self.port}: {exc}") from None
        if reply.isError():
            code = getattr(reply, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            raise DeviceError(
                Completion.HARDWARE_ERROR,
                "modbus_exception",
                f"station controller refused {what}: {name} (exception {code:02x})",
            )
        return reply

    def read_input_registers(self, address: int, count: int) -> list[int]:
        reply = self._call(
            f"read input registers {address}..{address + count - 1}",
            lambda: self._client.read_input_registers(address, count=count, device_id=self.unit_id),
        )
        return list(reply.registers)

    def read_holding_registers(self, address: int, count: int) -> list[int]:
        reply = self._call(
            f"read holding registers {address}..{address + count - 1}",
            lambda: self._client.read_holding_registers(
                address, count=count, device_id=self.unit_id
            ),
        )
        return list(reply.registers)

    def read_discrete_inputs(self, address: int, count: int) -> list[bool]:
        reply = self._call(
            f"read discrete inputs {address}..{address + count - 1}",
            lambda: self._client.read_discrete_inputs(address, count=count, device_id=self.unit_id),
        )
        return [bool(b) for b in reply.bits[:count]]  # bits come padded to whole bytes

    def write_registers(self, address: int, values: Sequence[int]) -> None:
        self._call(
            f"write holding registers {address}..{address + len(values) - 1}",
            lambda: self._client.write_registers(address, list(values), device_id=self.unit_id),
        )
