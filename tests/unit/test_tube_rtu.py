"""The simulator's Modbus RTU slave: CRC vectors, framing, replies and exceptions, checked
against published examples and against pymodbus's own client-side framer."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import ReadDiscreteInputsRequest
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
    WriteMultipleRegistersRequest,
    WriteSingleRegisterRequest,
)

from branchline.sim.tube import rtu
from branchline.sim.tube.rtu import ModbusRefusal, RegisterBank, Request, RtuSlaveFramer


@pytest.mark.parametrize(
    ("frame", "crc"),
    [
        # Read holding register 0, one register, slave 1: the example every reference gives.
        ("01 03 00 00 00 01", "84 0A"),
        # Modbus over Serial Line / Simply Modbus example: slave 0x11 reads 3 registers at 0x6B.
        ("11 03 00 6B 00 03", "76 87"),
        ("01 04 00 00 00 01", "31 CA"),
    ],
)
def test_crc_published_examples(frame: str, crc: str) -> None:
    assert rtu.crc16_modbus(bytes.fromhex(frame)) == bytes.fromhex(crc)


def test_crc_catalogue_check_value() -> None:
    # CRC-16/MODBUS check value over "123456789" is 0x4B37, sent low byte first.
    assert rtu.crc16_modbus(b"123456789") == bytes.fromhex("37 4B")


@given(st.binary(max_size=300))
def test_crc_matches_pymodbus(data: bytes) -> None:
    assert rtu.crc16_modbus(data) == FramerRTU.compute_CRC(data).to_bytes(2, "big")


class Bank(RegisterBank):
    def __init__(self) -> None:
        self.holding = [0, 0, 0]
        self.inputs = list(range(100, 109))
        self.bits = [True, False, True]

    def read_discrete_inputs(self, address: int, count: int) -> list[bool]:
        if address + count > len(self.bits):
            raise ModbusRefusal(rtu.ILLEGAL_DATA_ADDRESS)
        return self.bits[address : address + count]

    def read_holding_registers(self, address: int, count: int) -> list[int]:
        if address + count > len(self.holding):
            raise ModbusRefusal(rtu.ILLEGAL_DATA_ADDRESS)
        return self.holding[address : address + count]

    def read_input_registers(self, address: int, count: int) -> list[int]:
        if address + count > len(self.inputs):
            raise ModbusRefusal(rtu.ILLEGAL_DATA_ADDRESS)
        return self.inputs[address : address + count]

    def write_registers(self, address: int, values: Sequence[int]) -> None:
        if address + len(values) > len(self.holding):
            raise ModbusRefusal(rtu.ILLEGAL_DATA_ADDRESS)
        self.holding[address : address + len(values)] = list(values)


def exchange(request: ModbusPDU, bank: RegisterBank) -> ModbusPDU:
    """pymodbus builds the request, our slave answers, pymodbus parses the reply."""
    client = FramerRTU(DecodePDU(False))
    framer = RtuSlaveFramer()
    requests = framer.feed(client.buildFrame(request))
    assert len(requests) == 1 and not framer.pending
    reply = rtu.answer(requests[0], bank, own_address=1)
    assert reply is not None
    used, pdu = client.handleFrame(reply, 1, 0)
    assert used == len(reply) and pdu is not None
    return pdu


def test_reads_and_writes_round_trip_with_pymodbus() -> None:
    bank = Bank()
    inputs = exchange(ReadInputRegistersRequest(address=2, count=4, dev_id=1), bank)
    assert inputs.registers == [102, 103, 104, 105]
    bits = exchange(ReadDiscreteInputsRequest(address=0, count=3, dev_id=1), bank)
    assert bits.bits[:3] == [True, False, True]
    written = exchange(
        WriteMultipleRegistersRequest(address=0, registers=[1, 0x0001, 0x86A0], dev_id=1), bank
    )
    assert not written.isError() and bank.holding == [1, 0x0001, 0x86A0]
    single = exchange(WriteSingleRegisterRequest(address=2, registers=[7], dev_id=1), bank)
    assert not single.isError() and bank.holding == [1, 0x0001, 7]
    holding = exchange(ReadHoldingRegistersRequest(address=0, count=3, dev_id=1), bank)
    assert holding.registers == [1, 1, 7]


def test_read_holding_by_hand() -> None:
    bank = Bank()
    bank.holding = [0x1234, 0, 0]
    [request] = RtuSlaveFramer().feed(bytes.fromhex("01 03 00 00 00 01 84 0A"))
    reply = rtu.answer(request, bank, own_address=1)
    # 01 03, byte count 2, 12 34, CRC low byte first
    assert reply == bytes.fromhex("01 03 02 12 34") + rtu.crc16_modbus(bytes.fromhex("01030212 34"))


def test_bad_address_is_an_exception_reply() -> None:
    pdu = exchange(ReadInputRegistersRequest(address=8, count=2, dev_id=1), Bank())
    assert isinstance(pdu, ExceptionResponse)
    assert pdu.function_code == 0x84 and pdu.exception_code == rtu.ILLEGAL_DATA_ADDRESS


def test_bad_quantity_is_illegal_data_value() -> None:
    frame = bytes.fromhex("01 04 00 00 00 00")  # zero registers
    [request] = RtuSlaveFramer().feed(frame + rtu.crc16_modbus(frame))
    reply = rtu.answer(request, Bank(), 1)
    assert reply == rtu.adu(1, bytes([0x84, rtu.ILLEGAL_DATA_VALUE]))


def test_unknown_function_is_judged_at_silence_and_refused() -> None:
    frame = bytes.fromhex("01 2B 0E 01 00")  # read device identification: not offered
    framer = RtuSlaveFramer()
    assert framer.feed(frame + rtu.crc16_modbus(frame)) == []
    assert framer.pending
    [request] = framer.silence()
    reply = rtu.answer(request, Bank(), 1)
    assert reply == rtu.adu(1, bytes([0xAB, rtu.ILLEGAL_FUNCTION]))


def test_frames_split_across_reads_and_back_to_back() -> None:
    one = bytes.fromhex("01 03 00 00 00 01 84 0A")
    framer = RtuSlaveFramer()
    assert framer.feed(one[:3]) == []
    assert framer.feed(one[3:] + one[:5]) == [Request(1, 3, bytes.fromhex("00 00 00 01"))]
    assert framer.feed(one[5:]) == [Request(1, 3, bytes.fromhex("00 00 00 01"))]
    assert not framer.pending and framer.frames == 2


def test_bad_crc_is_dropped_at_silence_and_the_next_frame_served() -> None:
    framer = RtuSlaveFramer()
    assert framer.feed(bytes.fromhex("01 03 00 00 00 01 84 0B")) == []
    assert framer.silence() == []
    assert framer.garbage_bytes == 8
    assert len(framer.feed(bytes.fromhex("01 03 00 00 00 01 84 0A"))) == 1


def test_other_slaves_and_broadcast_reads_get_no_reply() -> None:
    bank = Bank()
    frame = bytes.fromhex("02 03 00 00 00 01")
    [request] = RtuSlaveFramer().feed(frame + rtu.crc16_modbus(frame))
    assert rtu.answer(request, bank, 1) is None
    frame = bytes.fromhex("00 06 00 01 00 05")  # broadcast write: done, not answered
    [request] = RtuSlaveFramer().feed(frame + rtu.crc16_modbus(frame))
    assert rtu.answer(request, bank, 1) is None and bank.holding[1] == 5


def test_write_multiple_with_inconsistent_byte_count() -> None:
    frame = bytes.fromhex("01 10 00 00 00 02 02 00 01")  # 2 registers but 2 bytes
    [request] = RtuSlaveFramer().feed(frame + rtu.crc16_modbus(frame))
    assert rtu.answer(request, Bank(), 1) == rtu.adu(1, bytes([0x90, rtu.ILLEGAL_DATA_VALUE]))


@given(st.lists(st.binary(max_size=40), max_size=20))
def test_garbage_never_raises_and_never_grows_without_bound(chunks: list[bytes]) -> None:
    framer = RtuSlaveFramer()
    bank = Bank()
    for chunk in chunks:
        for request in framer.feed(chunk):
            rtu.answer(request, bank, 1)
        assert len(framer._buf) <= rtu.MAX_ADU
    for request in framer.silence():
        rtu.answer(request, bank, 1)
    assert not framer.pending
