"""The EPP driver against the simulated PIN pad, in one process.

The simulator's device model runs on an asyncio loop in a background thread (as in
branchline-sim); the driver talks to it through an in-memory transport, so every exchange is
the real command set. PIN blocks are checked on the host side with the BDK, the way the HSM
would.
"""
# long-module: the scenarios of one service, sharing its fixtures; split by topic would repeat them

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest

from branchline.common import paycrypto
from branchline.common.paycrypto import aes_dukpt, tdes_dukpt
from branchline.drivers.base import (
    CancelToken,
    CommandCanceled,
    Completion,
    DeviceError,
    DeviceGone,
    DeviceStatus,
    DriverContext,
)
from branchline.drivers.pin_pad import protocol as p
from branchline.drivers.pin_pad.driver import EppDriver, pin_request
from branchline.drivers.pin_pad.options import EppOptions
from branchline.drivers.transport import Transport
from branchline.sim.devices.base import SimError
from branchline.sim.devices.pin_pad import SimulatedPinPad

TDES_BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TDES_KSN = bytes.fromhex("FFFF9876543210E00000")
AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
AES_KSN = bytes.fromhex("123456789012345600000000")
PAN = "4111111111111111"
T = TypeVar("T")


class Loop:
    """An asyncio loop in a thread, like the simulator's."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class SimLink(Transport):
    """An in-memory serial line to the simulated pad; ``unplug`` makes it fail like a pty."""

    def __init__(self, loop: Loop, device: SimulatedPinPad) -> None:
        super().__init__()
        self._loop = loop
        self._device = device
        self._buf = bytearray()
        self._cond = threading.Condition()
        self.plugged = True
        self.deaf = False  # the pad hears nothing (a dead pad)
        device.send = self._from_device

    def _from_device(self, data: bytes) -> None:
        with self._cond:
            self._buf += data
            self._cond.notify_all()

    def write(self, data: bytes) -> None:
        if not self.plugged:
            raise DeviceGone("write failed: unplugged")
        self._tapped("tx", data)
        if not self.deaf:
            self._loop.loop.call_soon_threadsafe(self._device.on_bytes, data)

    def _read_some(self, size: int, timeout: float) -> bytes:
        with self._cond:
            self._cond.wait_for(lambda: self._buf or not self.plugged, timeout)
            if not self.plugged:
                raise DeviceGone("read failed: unplugged")
            data = bytes(self._buf[:size])
            del self._buf[:size]
        self._tapped("rx", data)
        return data

    def discard_input(self) -> None:
        with self._cond:
            self._buf.clear()

    def close(self) -> None:
        pass

    def unplug(self) -> None:
        with self._cond:
            self.plugged = False
            self._cond.notify_all()


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.loop = Loop()
        self.device = SimulatedPinPad(tmp)
        self.link = SimLink(self.loop, self.device)
        options = EppOptions(port="sim", baudrate=9600, reply_timeout=0.3, key_slot=0)
        self.driver = EppDriver(DriverContext("T-1", "BR-1", "pin_pad"), options)
        self.spy: list[tuple[str, bytes]] = []
        self.driver.tap = lambda direction, data: self.spy.append((direction, data))
        self.driver._open_transport = lambda: self.link  # type: ignore[method-assign]
        self.driver.open()
        self._pool = ThreadPoolExecutor(1)

    def run(self, command: str, **params: Any) -> dict[str, Any]:
        return self.driver.commands()[command](params, CancelToken())

    def start_pin(self, cancel: CancelToken | None = None, **params: Any) -> Future[dict[str, Any]]:
        """read_pin in a thread (it blocks until the entry ends); returns once the pad waits."""
        params.setdefault("pan", PAN)
        token = cancel or CancelToken()
        future = self._pool.submit(self.driver.read_pin, params, token)
        deadline = time.monotonic() + 3
        while self.loop.call(lambda: self.device.entry is None):
            if future.done():
                future.result()  # raises the driver's error
                raise AssertionError("read_pin returned before the entry started")
            assert time.monotonic() < deadline, "PIN entry did not start"
            time.sleep(0.01)
        return future

    def press(self, keys: str) -> dict[str, str]:
        return self.loop.call(lambda: self.device.act("press", {"keys": keys}))

    def fault(self, name: str, active: bool = True) -> None:
        self.loop.call(lambda: self.device.set_fault(name, active))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.link.unplug()
        self.loop.stop()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    try:
        yield r
    finally:
        r.close()


def load_tdes(rig: Rig) -> dict[str, Any]:
    ipek = tdes_dukpt.derive_ipek(TDES_BDK, TDES_KSN)
    return rig.run("load_key", algorithm="tdes", key_hex=ipek.hex(), ksn_hex=TDES_KSN.hex())


def load_aes(rig: Rig) -> dict[str, Any]:
    key = aes_dukpt.derive_initial_key(AES_BDK, AES_KSN[:8])
    return rig.run("load_key", algorithm="aes", key_hex=key.hex(), ksn_hex=AES_KSN.hex())


def tdes_pin(result: dict[str, Any], pan: str = PAN) -> str:
    key = tdes_dukpt.derive_working_key(TDES_BDK, bytes.fromhex(result["ksn"]))
    clear = paycrypto.decrypt_pin_block_tdes(key, bytes.fromhex(result["pin_block"]))
    return paycrypto.decode_format0(clear, pan)


def aes_pin(result: dict[str, Any], pan: str = PAN) -> str:
    key = aes_dukpt.derive_working_key(AES_BDK, bytes.fromhex(result["ksn"]))
    return paycrypto.decrypt_format4(key, bytes.fromhex(result["pin_block"]), pan)


def error_of(fn: Callable[[], Any]) -> DeviceError:
    with pytest.raises(DeviceError) as info:
        fn()
    return info.value


# --- status, info, keys --------------------------------------------------------------------


def test_fresh_pad_is_online_without_a_key(rig: Rig) -> None:
    report = rig.driver.poll()
    assert report.status is DeviceStatus.ONLINE and report.detail == "no key loaded"
    assert report.facts == {
        "encryption_state": "not_initialized",
        "key_algorithm": "none",
        "entry": "idle",
    }
    caps = rig.driver.capabilities()
    assert caps["serial_number"] == "SIM-EPP-0001" and caps["pin_block_formats"] == "0,4"
    assert rig.run("info")["firmware"] == "1.0.0-sim"
    assert rig.run("status")["key_algorithm"] == "none"
    error = error_of(lambda: rig.run("kcv"))
    assert (error.completion, error.code) == (Completion.DEVICE_NOT_READY, "no_key")
    assert rig.driver.self_test(CancelToken()).ok


def test_tdes_key_load_reports_the_ipek_kcv(rig: Rig) -> None:
    result = load_tdes(rig)
    expected = paycrypto.tdes_kcv(tdes_dukpt.derive_ipek(TDES_BDK, TDES_KSN)).hex().upper()
    assert result == {
        "slot": 0,
        "algorithm": "tdes",
        "kcv": expected,
        "ksn": TDES_KSN.hex().upper(),
    }
    assert len(expected) == 6
    assert rig.run("kcv") == {"slot": 0, "algorithm": "tdes", "kcv": expected}
    assert rig.run("ksn") == {
        "slot": 0,
        "algorithm": "tdes",
        "ksn": "FFFF9876543210E00001",
        "counter": 1,
        "remaining": 1048575,
        "exhausted": False,
    }
    report = rig.driver.poll()
    assert report.status is DeviceStatus.ONLINE and report.facts["encryption_state"] == "ready"


def test_aes_key_load_reports_a_five_byte_cmac_kcv(rig: Rig) -> None:
    result = load_aes(rig)
    key = aes_dukpt.derive_initial_key(AES_BDK, AES_KSN[:8])
    assert result["kcv"] == paycrypto.aes_kcv(key).hex().upper() and len(result["kcv"]) == 10
    ksn = rig.run("ksn")
    assert ksn["ksn"] == "123456789012345600000001" and ksn["algorithm"] == "aes"
    assert rig.loop.call(lambda: rig.device.act("kcv", {}))["kcv"] == result["kcv"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"algorithm": "des", "key_hex": "00", "ksn_hex": "00"}, "load_key.algorithm"),
        ({"algorithm": "tdes", "key_hex": "00" * 15, "ksn_hex": TDES_KSN.hex()}, "32 hex digits"),
        ({"algorithm": "tdes", "key_hex": "zz" * 16, "ksn_hex": TDES_KSN.hex()}, "not hexadecimal"),
        ({"algorithm": "tdes", "key_hex": 5, "ksn_hex": TDES_KSN.hex()}, "got int"),
        ({"algorithm": "aes", "key_hex": "00" * 16, "ksn_hex": TDES_KSN.hex()}, "24 hex digits"),
        ({"algorithm": "tdes", "key_hex": "00" * 16, "ksn_hex": "FFFF9876543210E00001"}, "counter"),
        (
            {"algorithm": "tdes", "key_hex": "00" * 16, "ksn_hex": TDES_KSN.hex(), "x": 1},
            "load_key.x",
        ),
    ],
)
def test_bad_key_loads_name_the_field_never_the_key(
    rig: Rig, params: dict[str, Any], message: str
) -> None:
    error = error_of(lambda: rig.driver.cmd_load_key(params, CancelToken()))
    assert error.completion is Completion.INVALID_DATA and message in error.message
    assert str(params.get("key_hex")) not in error.message


def test_spy_sees_the_exchange_but_not_the_secrets(rig: Rig) -> None:
    ipek = tdes_dukpt.derive_ipek(TDES_BDK, TDES_KSN)
    load_tdes(rig)
    future = rig.start_pin(min_len=4)
    rig.press("1234E")
    result = future.result(5)
    sent = b"".join(d for direction, d in rig.spy if direction == "tx")
    received = b"".join(d for direction, d in rig.spy if direction == "rx")
    assert TDES_KSN in sent and ipek not in sent
    assert PAN.encode() not in sent and b"411111******1111" in sent
    assert bytes.fromhex(result["pin_block"]) not in received
    assert bytes.fromhex(result["ksn"]) in received


# --- PIN entry -----------------------------------------------------------------------------


def test_tdes_pin_entry_gives_a_format0_block_that_the_host_decrypts(rig: Rig) -> None:
    load_tdes(rig)
    future = rig.start_pin()
    assert rig.press("1234E") == {"keys": "5", "entry": "active"}
    result = future.result(5)
    assert result["format"] == 0 and result["digits"] == 4 and len(result["pin_block"]) == 16
    assert result["ksn"] == "FFFF9876543210E00001"
    assert tdes_pin(result) == "1234"
    assert rig.run("ksn")["counter"] == 2
    # The next PIN block comes under the next KSN and another key.
    future = rig.start_pin()
    rig.press("1234E")
    second = future.result(5)
    assert second["ksn"] == "FFFF9876543210E00002" and second["pin_block"] != result["pin_block"]
    assert tdes_pin(second) == "1234"


def test_aes_pin_entry_gives_a_format4_block_that_the_host_decrypts(rig: Rig) -> None:
    load_aes(rig)
    future = rig.start_pin(format=4)
    rig.press("987654E")
    result = future.result(5)
    assert result["format"] == 4 and result["digits"] == 6 and len(result["pin_block"]) == 32
    assert result["ksn"] == "123456789012345600000001"
    assert aes_pin(result) == "987654"


def test_format_must_match_the_key(rig: Rig) -> None:
    load_tdes(rig)
    error = error_of(lambda: rig.run("read_pin", pan=PAN, format=4))
    assert (error.completion, error.code) == (Completion.INVALID_DATA, "format_mismatch")


def test_clear_then_retype(rig: Rig) -> None:
    load_tdes(rig)
    future = rig.start_pin()
    rig.press("99C5678E")
    assert tdes_pin(future.result(5)) == "5678"


def test_min_and_max_length_are_enforced_by_the_pad(rig: Rig) -> None:
    load_tdes(rig)
    future = rig.start_pin(min_len=5, max_len=6)
    rig.press("1234E")  # enter refused: too short
    time.sleep(0.2)
    assert not future.done()
    rig.press("56789E")  # 7, 8, 9 ignored: full at 6
    result = future.result(5)
    assert result["digits"] == 6 and tdes_pin(result) == "123456"


def test_customer_cancel(rig: Rig) -> None:
    load_tdes(rig)
    future = rig.start_pin()
    rig.press("12X")
    error = error_of(lambda: future.result(5))
    assert (error.completion, error.code) == (Completion.CANCELED, "customer_canceled")
    assert "2 digit(s) entered" in error.message


def test_pad_timeout(rig: Rig) -> None:
    load_tdes(rig)
    future = rig.start_pin(timeout_s=1)
    rig.press("1")
    started = time.monotonic()
    error = error_of(lambda: future.result(5))
    assert (error.completion, error.code) == (Completion.TIMEOUT, "entry_timeout")
    assert 0.8 < time.monotonic() - started < 2.5


def test_cancel_token_stops_the_entry_on_the_pad(rig: Rig) -> None:
    load_tdes(rig)
    token = CancelToken()
    future = rig.start_pin(cancel=token)
    rig.press("12")
    time.sleep(0.1)  # both keys land before the cancel
    token.cancel("caller went away")
    with pytest.raises(CommandCanceled):
        future.result(5)
    assert rig.loop.call(lambda: rig.device.entry) is None
    # The pad is free for the next entry.
    future = rig.start_pin()
    rig.press("4321E")
    assert tdes_pin(future.result(5)) == "4321"


def test_sim_refuses_a_second_entry_and_key_loads_while_one_runs(tmp_path: Path) -> None:
    loop = Loop()
    device = SimulatedPinPad(tmp_path)
    out: list[bytes] = []
    device.send = out.append
    try:
        loop.call(
            lambda: device.act(
                "load_dev_key",
                {"algorithm": "tdes", "bdk_hex": TDES_BDK.hex(), "ksn_hex": TDES_KSN.hex()},
            )
        )
        start = p.StartPin(0, 4, 12, 30, None, PAN)
        ipek = tdes_dukpt.derive_ipek(TDES_BDK, TDES_KSN)
        exchange: list[tuple[int, p.Request]] = [
            (1, start),
            (2, start),
            (3, p.LoadKey(0, p.Algorithm.TDES, ipek, TDES_KSN)),
            (4, p.CancelEntry()),
            (5, p.CancelEntry()),
            (6, p.ClearEntry()),
        ]
        for seq, request in exchange:
            loop.call(partial(device.on_bytes, p.encode_request(seq, request)))
        decoder = p.FrameDecoder()
        frames = decoder.feed(b"".join(out))
        messages = [p.decode_device_message(f) for f in frames if isinstance(f, p.Frame)]
        assert messages == [
            p.OkReply(1, p.Cmd.START_PIN),
            p.ErrorReply(2, p.Cmd.START_PIN, p.ResultCode.BUSY),
            p.ErrorReply(3, p.Cmd.LOAD_KEY, p.ResultCode.BUSY),
            p.OkReply(4, p.Cmd.CANCEL_ENTRY),
            p.PinResult(1, p.ResultCode.HOST_CANCELED, 0, 0),
            p.ErrorReply(5, p.Cmd.CANCEL_ENTRY, p.ResultCode.NOT_IN_ENTRY),
            p.ErrorReply(6, p.Cmd.CLEAR_ENTRY, p.ResultCode.NOT_IN_ENTRY),
        ]
    finally:
        loop.stop()


def test_no_key_refuses_pin_entry(rig: Rig) -> None:
    error = error_of(lambda: rig.run("read_pin", pan=PAN))
    assert (error.completion, error.code) == (Completion.DEVICE_NOT_READY, "no_key")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "read_pin.pan: required"),
        ({"pan": "41111111111111111111"}, "got 20 digits"),
        ({"pan": "4111-1111"}, "read_pin.pan"),
        ({"pan": PAN, "min_len": 3}, "read_pin.min_len: expected a whole number 4..12, got 3"),
        (
            {"pan": PAN, "min_len": 6, "max_len": 5},
            "read_pin.max_len: expected a whole number 6..12, got 5",
        ),
        ({"pan": PAN, "timeout_s": 0}, "read_pin.timeout_s"),
        (
            {"pan": PAN, "timeout_s": "30"},
            "read_pin.timeout_s: expected a whole number 1..255, got str",
        ),
        ({"pan": PAN, "format": 1}, "read_pin.format"),
        ({"pan": PAN, "pin": "1234"}, "read_pin.pin: unknown parameter"),
    ],
)
def test_bad_read_pin_params(params: dict[str, Any], message: str) -> None:
    with pytest.raises(DeviceError) as info:
        pin_request(params, 0)
    assert info.value.completion is Completion.INVALID_DATA and message in info.value.message
    assert PAN not in info.value.message


def test_diag_style_numeric_pan_is_accepted() -> None:
    assert pin_request({"pan": int(PAN)}, 0).pan == PAN


# --- faults --------------------------------------------------------------------------------


def test_exhausted_ksn_refuses_pin_entry_until_a_new_key(rig: Rig) -> None:
    load_tdes(rig)
    rig.fault("exhaust_ksn")
    error = error_of(lambda: rig.run("read_pin", pan=PAN))
    assert (error.completion, error.code) == (Completion.HARDWARE_ERROR, "ksn_exhausted")
    ksn = rig.run("ksn")
    assert ksn["exhausted"] and ksn["remaining"] == 0 and ksn["counter"] == 0x1FF800
    report = rig.driver.poll()
    assert report.status is DeviceStatus.HARDWARE_ERROR and "exhausted" in report.detail
    load_tdes(rig)
    assert rig.driver.poll().status is DeviceStatus.ONLINE


def test_real_counter_exhaustion_from_the_last_register(tmp_path: Path) -> None:
    """The pad's own DUKPT object runs out: the PIN entry ends with ksn_exhausted."""
    rig = Rig(tmp_path)
    try:
        load_aes(rig)
        last = 0xFFFF0000
        initial = aes_dukpt.derive_initial_key(AES_BDK, AES_KSN[:8])

        def resume_at_last() -> None:
            slot = rig.device.slots[0]
            assert slot is not None
            slot.dukpt = paycrypto.AesDukptDevice.resume(
                initial, aes_dukpt.make_ksn(AES_KSN[:8], last)
            )

        rig.loop.call(resume_at_last)
        assert rig.run("ksn")["remaining"] == 1
        future = rig.start_pin()
        rig.press("2468E")
        result = future.result(5)
        assert result["ksn"] == "1234567890123456FFFF0000" and aes_pin(result) == "2468"
        ksn = rig.run("ksn")
        assert ksn["exhausted"] and ksn["ksn"] == "1234567890123456FFFF0000"
        error = error_of(lambda: rig.run("read_pin", pan=PAN))
        assert error.code == "ksn_exhausted"
    finally:
        rig.close()


def test_tamper_erases_keys_and_ends_the_entry(rig: Rig) -> None:
    load_tdes(rig)
    future = rig.start_pin()
    rig.press("12")
    time.sleep(0.1)
    rig.fault("tamper")
    error = error_of(lambda: future.result(5))
    assert (error.completion, error.code) == (Completion.HARDWARE_ERROR, "tamper")
    report = rig.driver.poll()
    assert report.status is DeviceStatus.HARDWARE_ERROR and "tamper" in report.detail
    assert report.facts["encryption_state"] == "tampered"
    assert error_of(lambda: load_tdes(rig)).code == "tamper"
    assert not rig.driver.self_test(CancelToken()).ok
    rig.fault("tamper", False)
    report = rig.driver.poll()
    assert report.status is DeviceStatus.ONLINE and report.detail == "no key loaded"


def test_stuck_key_repeats_and_is_reported(rig: Rig) -> None:
    load_tdes(rig)
    rig.fault("key_stuck")
    assert rig.driver.poll().detail == "a key is stuck"
    future = rig.start_pin()
    rig.press("1234E")
    result = future.result(5)
    assert result["digits"] == 8 and tdes_pin(result) == "11111234"
    rig.fault("key_stuck", False)
    assert rig.driver.poll().status is DeviceStatus.ONLINE


def test_garbage_on_the_line_is_survived(rig: Rig) -> None:
    load_tdes(rig)
    junk = bytes([0x02, 0x00, 0x30, 0x99]) + bytes(range(256))
    rig.loop.call(lambda: rig.device.send(junk))
    assert rig.driver.poll().status is DeviceStatus.ONLINE
    assert rig.driver.malformed >= 1
    future = rig.start_pin()
    rig.loop.call(lambda: rig.device.send(b"\x02\x00\x05junk"))
    rig.press("1357E")
    assert tdes_pin(future.result(5)) == "1357"


def test_silent_pad_is_offline_and_commands_fail(rig: Rig) -> None:
    rig.link.deaf = True
    report = rig.driver.poll()
    assert report.status is DeviceStatus.OFFLINE and "no valid reply to STATUS" in report.detail
    error = error_of(lambda: rig.run("kcv"))
    assert (error.completion, error.code) == (Completion.DEVICE_NOT_READY, "no_reply")


def test_unplug_during_entry_raises_device_gone(rig: Rig) -> None:
    load_tdes(rig)
    future = rig.start_pin()
    rig.link.unplug()
    with pytest.raises(DeviceGone):
        future.result(5)


# --- the simulator's own surface -----------------------------------------------------------


def test_sim_answers_bad_and_unknown_requests(rig: Rig) -> None:
    replies: list[bytes] = []
    rig.device.send = replies.append
    rig.loop.call(lambda: rig.device.on_bytes(p.encode_frame(9, 0x55)))
    rig.loop.call(lambda: rig.device.on_bytes(p.encode_frame(10, p.Cmd.GET_KCV, b"\x09")))
    rig.loop.call(lambda: rig.device.on_bytes(b"\x02\x00\x02\x01\x10\x03\x00"))  # bad LRC
    assert replies == [
        p.encode_error(9, 0x55, p.ResultCode.UNKNOWN_COMMAND),
        p.encode_error(10, p.Cmd.GET_KCV, p.ResultCode.BAD_PARAMETER),
    ]
    assert rig.device.facts()["malformed_frames"] == "1"


def test_sim_actions_validate_and_never_reveal_digits(rig: Rig) -> None:
    with pytest.raises(SimError, match="press.keys"):
        rig.press("12A")
    with pytest.raises(SimError, match="no action"):
        rig.loop.call(lambda: rig.device.act("peek", {}))
    with pytest.raises(SimError, match="slot 0 holds no key"):
        rig.loop.call(lambda: rig.device.act("kcv", {}))
    kcv = rig.loop.call(
        lambda: rig.device.act(
            "load_dev_key",
            {"algorithm": "tdes", "bdk_hex": TDES_BDK.hex(), "ksn_hex": TDES_KSN.hex()},
        )
    )
    assert kcv["kcv"] == load_tdes(rig)["kcv"]
    future = rig.start_pin()
    rig.press("8642")
    time.sleep(0.2)
    facts = rig.loop.call(rig.device.facts)
    assert facts["digits_entered"] == "4" and "8642" not in repr(facts)
    assert "8642" not in repr(rig.loop.call(lambda: rig.device.entry))
    rig.press("E")
    assert tdes_pin(future.result(5)) == "8642"
    assert rig.press("1") == {"keys": "1", "entry": "idle"}


# --- signature capture (video-teller calls) ------------------------------------------------


def start_signature(rig: Rig, **params: Any) -> Future[dict[str, Any]]:
    future = rig._pool.submit(rig.driver.read_signature, params, CancelToken())
    deadline = time.monotonic() + 3

    def waiting() -> bool:
        signing = rig.device.signing
        return signing is None or signing.state is not p.SignState.SIGNING

    while rig.loop.call(waiting):
        if future.done():
            future.result()
            raise AssertionError("read_signature returned before the pad asked for it")
        assert time.monotonic() < deadline, "signature capture did not start"
        time.sleep(0.01)
    return future


def test_signature_is_a_png_drawn_by_the_simulated_customer(rig: Rig) -> None:
    import base64
    import hashlib
    import io

    from PIL import Image

    future = start_signature(rig, timeout_s=5)
    time.sleep(0.3)
    assert not future.done()  # the pad waits for the customer
    signed = rig.loop.call(lambda: rig.device.act("sign", {"name": "Li Lei"}))
    result = future.result(10)
    png = base64.b64decode(result["png_base64"])
    assert result["sha256"] == hashlib.sha256(png).hexdigest() == signed["sha256"]
    assert result["bytes"] == len(png) > 200  # read over several SIGN_READ chunks
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (480, 160)
    assert image.convert("L").getextrema() == (0, 255)  # ink on paper
    # The same person signs the same way; another person does not.
    second = start_signature(rig, timeout_s=5)
    rig.loop.call(lambda: rig.device.act("sign", {"name": "Li Lei"}))
    assert second.result(10)["sha256"] == result["sha256"]
    third = start_signature(rig, timeout_s=5)
    rig.loop.call(lambda: rig.device.act("sign", {"name": "Han Meimei"}))
    assert third.result(10)["sha256"] != result["sha256"]


def test_signature_cancel_timeout_and_refusals(rig: Rig) -> None:
    future = start_signature(rig, timeout_s=5)
    rig.loop.call(lambda: rig.device.act("sign", {"name": "X", "cancel": "yes"}))
    error = error_of(lambda: future.result(10))
    assert (error.completion, error.code) == (Completion.CANCELED, "customer_canceled")
    future = start_signature(rig, timeout_s=1)
    error = error_of(lambda: future.result(10))
    assert (error.completion, error.code) == (Completion.TIMEOUT, "entry_timeout")
    with pytest.raises(SimError, match="not asking for a signature"):
        rig.loop.call(lambda: rig.device.act("sign", {"name": "X"}))
    error = error_of(lambda: rig.run("read_signature", timeout_s=0))
    assert error.completion is Completion.INVALID_DATA and "timeout_s" in error.message
    load_tdes(rig)
    pin = rig.start_pin()
    # One thing at a time on the pad's screen. (The owner never runs two commands on one
    # driver at once, so ask the pad itself rather than race two driver calls.)
    assert rig.loop.call(lambda: rig.device._refusal(p.SignStart(5))) is p.ResultCode.BUSY
    rig.press("1234E")
    pin.result(5)
