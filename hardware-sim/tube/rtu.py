"""Modbus RTU on the slave side, written from the Modbus over Serial Line spec (V1.02).

``RtuSlaveFramer`` cuts the byte stream into request frames. A known function code tells the
length, so a complete request is answered at once; anything else (an unknown function, a
bad CRC, noise) is only judged when the line falls silent, as RTU's 3.5-character gap
delimits frames: a CRC-valid leftover is a request (an unknown function gets exception 01),
an invalid one is dropped and counted. The owner calls ``silence()`` from a timer.

``serve`` turns one request into the reply PDU against a ``RegisterBank``; ``adu`` wraps
it with address and CRC. No I/O, no clock.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

MAX_ADU = 256

READ_DISCRETE_INPUTS = 0x02
READ_HOLDING_REGISTERS = 0x03
READ_INPUT_REGISTERS = 0x04
WRITE_SINGLE_REGISTER = 0x06
WRITE_MULTIPLE_REGISTERS = 0x10

ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03
SERVER_DEVICE_FAILURE = 0x04

BROADCAST = 0


def crc16_modbus(data: bytes) -> bytes:
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), low byte first as sent on the wire."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


def adu(address: int, pdu: bytes) -> bytes:
    frame = bytes([address]) + pdu
    return frame + crc16_modbus(frame)


@dataclass(frozen=True)
class Request:
    address: int
    function: int
    data: bytes  # the PDU after the function code

    @property
    def pdu(self) -> bytes:
        return bytes([self.function]) + self.data


def _request_length(buf: bytes | bytearray) -> int | None:
    """Whole ADU length of the request starting ``buf``, None when not yet known."""
    if len(buf) < 2:
        return None
    function = buf[1]
    if function in (
        READ_DISCRETE_INPUTS,
        READ_HOLDING_REGISTERS,
        READ_INPUT_REGISTERS,
        WRITE_SINGLE_REGISTER,
    ):
        return 8  # address, function, 2 x 16-bit fields, CRC
    if function == WRITE_MULTIPLE_REGISTERS:
        if len(buf) < 7:
            return None
        return 9 + buf[6]  # address, function, start, quantity, byte count, values, CRC
    return None


class RtuSlaveFramer:
    def __init__(self) -> None:
        self._buf = bytearray()
        self.garbage_bytes = 0
        self.frames = 0

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Request]:
        """Complete requests of known length found so far; the rest waits for silence."""
        self._buf += data
        out: list[Request] = []
        while True:
            length = _request_length(self._buf)
            if length is None or len(self._buf) < length:
                break
            frame = bytes(self._buf[:length])
            if crc16_modbus(frame[:-2]) != frame[-2:]:
                break  # judged at the silence: maybe noise ran into a frame
            del self._buf[:length]
            self.frames += 1
            out.append(Request(frame[0], frame[1], frame[2:-2]))
        if len(self._buf) > MAX_ADU:
            self.garbage_bytes += len(self._buf)
            self._buf.clear()
        return out

    def silence(self) -> list[Request]:
        """The line went quiet: what is left is one frame, valid or not."""
        frame, self._buf = bytes(self._buf), bytearray()
        if len(frame) >= 4 and crc16_modbus(frame[:-2]) == frame[-2:]:
            self.frames += 1
            return [Request(frame[0], frame[1], frame[2:-2])]
        self.garbage_bytes += len(frame)
        return []


class ModbusRefusal(Exception):
    """Answer with this Modbus exception code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class RegisterBank(ABC):
    """The data model a slave serves. Raise ModbusRefusal for what it cannot do."""

    @abstractmethod
    def read_discrete_inputs(self, address: int, count: int) -> list[bool]: ...

    @abstractmethod
    def read_holding_registers(self, address: int, count: int) -> list[int]: ...

    @abstractmethod
    def read_input_registers(self, address: int, count: int) -> list[int]: ...

    @abstractmethod
    def write_registers(self, address: int, values: Sequence[int]) -> None: ...


def exception_pdu(function: int, code: int) -> bytes:
    return bytes([function | 0x80, code])


def _pack_bits(bits: Sequence[bool]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def serve(request: Request, bank: RegisterBank) -> bytes:
    """The reply PDU (function code first) to one request."""
    function, data = request.function, request.data
    try:
        if function in (READ_DISCRETE_INPUTS, READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS):
            if len(data) != 4:
                raise ModbusRefusal(ILLEGAL_DATA_VALUE)
            address, count = struct.unpack(">HH", data)
            if function == READ_DISCRETE_INPUTS:
                if not 1 <= count <= 2000:
                    raise ModbusRefusal(ILLEGAL_DATA_VALUE)
                packed = _pack_bits(bank.read_discrete_inputs(address, count))
                return bytes([function, len(packed)]) + packed
            if not 1 <= count <= 125:
                raise ModbusRefusal(ILLEGAL_DATA_VALUE)
            if function == READ_HOLDING_REGISTERS:
                values = bank.read_holding_registers(address, count)
            else:
                values = bank.read_input_registers(address, count)
            return bytes([function, 2 * count]) + struct.pack(f">{count}H", *values)
        if function == WRITE_SINGLE_REGISTER:
            if len(data) != 4:
                raise ModbusRefusal(ILLEGAL_DATA_VALUE)
            address, value = struct.unpack(">HH", data)
            bank.write_registers(address, [value])
            return request.pdu  # the reply echoes the request
        if function == WRITE_MULTIPLE_REGISTERS:
            if len(data) < 5:
                raise ModbusRefusal(ILLEGAL_DATA_VALUE)
            address, count, byte_count = struct.unpack(">HHB", data[:5])
            values_raw = data[5:]
            if not 1 <= count <= 123 or byte_count != 2 * count or len(values_raw) != byte_count:
                raise ModbusRefusal(ILLEGAL_DATA_VALUE)
            bank.write_registers(address, list(struct.unpack(f">{count}H", values_raw)))
            return bytes([function]) + struct.pack(">HH", address, count)
        raise ModbusRefusal(ILLEGAL_FUNCTION)
    except ModbusRefusal as refusal:
        return exception_pdu(function, refusal.code)


def answer(request: Request, bank: RegisterBank, own_address: int) -> bytes | None:
    """The whole reply ADU, or None: requests for other slaves and broadcasts get no reply."""
    if request.address not in (own_address, BROADCAST) or request.function & 0x80:
        return None
    if request.address == BROADCAST:
        # Broadcasts are writes only: carried out, never answered.
        if request.function in (WRITE_SINGLE_REGISTER, WRITE_MULTIPLE_REGISTERS):
            serve(request, bank)
        return None
    return adu(own_address, serve(request, bank))
