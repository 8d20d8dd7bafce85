"""Encrypting PIN pad end to end: real agent and simulator processes, DUKPT checked host-side.

The test plays the HSM: it derives the PIN key from the BDK and the KSN the pad returned and
decrypts the PIN block. The clear PIN exists only inside the simulated pad and here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from branchline.common import paycrypto
from branchline.common.paycrypto import aes_dukpt, tdes_dukpt
from branchline.v1 import sim_control_pb2
from tests.integration.stack import Stack, device_stack, wait_for

# ANSI X9.24-1 test BDK and KSN; X9.24-3 AES-128 test BDK and a 12-byte initial KSN.
TDES_BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TDES_KSN = "FFFF9876543210E00000"
AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
AES_KSN = "123456789012345600000000"
PAN = "4111111111111111"
Result = tuple[str, str, dict[str, Any]]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # One stack for the module: each test loads the key it needs and clears its faults.
    with device_stack(tmp_path_factory.mktemp("pin_pad"), "pin_pad") as stack:
        yield stack


@pytest.fixture
def stack(shared: Stack) -> Stack:
    wait_for(lambda: agent_status(shared)[0] == "online", 15, "PIN pad online")
    return shared


def agent_status(stack: Stack) -> tuple[str, str, dict[str, str]]:
    device = stack.agent_device("pin_pad")
    return device["status"], device["detail"], device["facts"]


def diag_status(stack: Stack) -> tuple[str, str, dict[str, str]]:
    result = stack.diag("status", "--json")
    assert result.returncode == 0, result.stderr
    device = next(d for d in json.loads(result.stdout)["devices"] if d["name"] == "pin_pad")
    return device["status"], device["detail"], device["facts"]


def sim_facts(stack: Stack) -> dict[str, str]:
    devices = stack.sim().ListDevices(sim_control_pb2.ListSimDevicesRequest(), timeout=5).devices
    return dict(next(d for d in devices if d.name == "pin_pad").facts)


def command(stack: Stack, name: str, **params: Any) -> Result:
    return stack.device_command("pin_pad", name, timeout=60, **params)


def background(fn: Callable[[], Result]) -> tuple[threading.Thread, list[Result]]:
    box: list[Result] = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    thread.start()
    return thread, box


def read_pin(stack: Stack, keys: str, **params: Any) -> Result:
    """Run read_pin through the agent while the simulated customer types ``keys``."""
    params.setdefault("pan", PAN)
    thread, box = background(lambda: command(stack, "read_pin", **params))
    wait_for(lambda: sim_facts(stack)["entry"] == "active", 5, "PIN entry started")
    stack.sim_act("pin_pad", "press", keys=keys)
    thread.join(30)
    assert box, "read_pin did not return"
    return box[0]


def load_tdes(stack: Stack) -> Result:
    ipek = tdes_dukpt.derive_ipek(TDES_BDK, bytes.fromhex(TDES_KSN))
    return command(stack, "load_key", algorithm="tdes", key_hex=ipek.hex(), ksn_hex=TDES_KSN)


def tdes_pin(result: dict[str, Any]) -> str:
    key = tdes_dukpt.derive_working_key(TDES_BDK, bytes.fromhex(result["ksn"]))
    clear = paycrypto.decrypt_pin_block_tdes(key, bytes.fromhex(result["pin_block"]))
    return paycrypto.decode_format0(clear, PAN)


def aes_pin(result: dict[str, Any]) -> str:
    key = aes_dukpt.derive_working_key(AES_BDK, bytes.fromhex(result["ksn"]))
    return paycrypto.decrypt_format4(key, bytes.fromhex(result["pin_block"]), PAN)


def test_tdes_key_load_pin_entry_diag_and_nothing_secret_in_the_logs(stack: Stack) -> None:
    ipek = tdes_dukpt.derive_ipek(TDES_BDK, bytes.fromhex(TDES_KSN))
    # The module's first test: the pad on the fresh stack has no key yet.
    assert diag_status(stack)[:2] == ("online", "no key loaded")
    completion, detail, loaded = load_tdes(stack)
    assert completion == "success", detail
    assert loaded["kcv"] == paycrypto.tdes_kcv(ipek).hex().upper()
    wait_for(lambda: agent_status(stack)[2].get("encryption_state") == "ready", 5, "key ready")

    completion, detail, result = read_pin(stack, "1234E")
    assert completion == "success", detail
    assert result["format"] == 0 and result["digits"] == 4
    assert result["ksn"] == "FFFF9876543210E00001"
    assert tdes_pin(result) == "1234"

    kcv = stack.diag("pin_pad", "kcv", "--json")
    assert kcv.returncode == 0, kcv.stdout + kcv.stderr
    assert json.loads(kcv.stdout)["result"] == {
        "slot": 0,
        "algorithm": "tdes",
        "kcv": loaded["kcv"],
    }
    ksn = stack.diag("pin_pad", "ksn")
    assert ksn.returncode == 0, ksn.stdout + ksn.stderr
    assert "ksn: FFFF9876543210E00002" in ksn.stdout and "counter: 2" in ksn.stdout
    assert "remaining: 1048574" in ksn.stdout

    agent_log = stack.procs["agent"].log()
    sim_log = stack.procs["sim"].log()
    block = result["pin_block"]
    for secret in ("1234", block, block.lower(), ipek.hex(), ipek.hex().upper(), PAN):
        assert secret not in agent_log, secret
        assert secret not in sim_log, secret
    assert '"event": "epp_pin_entry"' in agent_log and '"digits": 4' in agent_log


def test_aes_dev_key_and_format4_pin_block(stack: Stack) -> None:
    loaded = stack.sim_act(
        "pin_pad", "load_dev_key", algorithm="aes", bdk_hex=AES_BDK.hex(), ksn_hex=AES_KSN
    )
    initial = aes_dukpt.derive_initial_key(AES_BDK, bytes.fromhex(AES_KSN)[:8])
    assert loaded["kcv"] == paycrypto.aes_kcv(initial).hex().upper()
    completion, _, kcv = command(stack, "kcv")
    assert completion == "success" and kcv == {"slot": 0, "algorithm": "aes", "kcv": loaded["kcv"]}

    completion, detail, result = read_pin(stack, "246810E", format=4)
    assert completion == "success", detail
    assert result["format"] == 4 and result["digits"] == 6 and len(result["pin_block"]) == 32
    assert result["ksn"] == "123456789012345600000001"
    assert aes_pin(result) == "246810"


def test_timeout_cancel_clear_and_lengths(stack: Stack) -> None:
    assert load_tdes(stack)[0] == "success"

    completion, detail, _ = read_pin(stack, "12", timeout_s=1)
    assert (completion, detail.split(":")[0]) == ("timeout", "entry_timeout"), detail

    completion, detail, _ = read_pin(stack, "12X")
    assert (completion, detail.split(":")[0]) == ("canceled", "customer_canceled"), detail

    completion, _, result = read_pin(stack, "99C5678E")
    assert completion == "success" and tdes_pin(result) == "5678"

    # Enter after 4 digits is refused (min 5); digits past 6 are ignored (max 6).
    completion, _, result = read_pin(stack, "1234E56789E", min_len=5, max_len=6)
    assert completion == "success" and result["digits"] == 6 and tdes_pin(result) == "123456"

    completion, detail, _ = command(stack, "read_pin", pan="123")
    assert completion == "invalid_data" and "read_pin.pan" in detail


def test_ksn_exhaustion_and_tamper(stack: Stack) -> None:
    assert load_tdes(stack)[0] == "success"
    stack.sim_fault("pin_pad", "exhaust_ksn", True)
    completion, detail, _ = command(stack, "read_pin", pan=PAN)
    assert (completion, detail.split(":")[0]) == ("hardware_error", "ksn_exhausted"), detail
    wait_for(lambda: agent_status(stack)[0] == "hardware_error", 5, "exhausted pad reported")
    assert "exhausted" in agent_status(stack)[1]
    completion, _, ksn = command(stack, "ksn")
    assert completion == "success" and ksn["exhausted"] and ksn["remaining"] == 0
    assert load_tdes(stack)[0] == "success"
    wait_for(lambda: agent_status(stack)[0] == "online", 5, "online with a new key")

    stack.sim_fault("pin_pad", "tamper", True)
    wait_for(lambda: agent_status(stack)[0] == "hardware_error", 5, "tamper reported")
    status, detail, facts = agent_status(stack)
    assert "tamper" in detail and facts["encryption_state"] == "tampered"
    completion, detail, _ = command(stack, "kcv")
    assert (completion, detail.split(":")[0]) == ("hardware_error", "tamper")
    stack.sim_fault("pin_pad", "tamper", False)
    wait_for(lambda: agent_status(stack)[1] == "no key loaded", 5, "keys gone after tamper")
    stack.sim_fault("pin_pad", "exhaust_ksn", False)  # one-shot; cleared for the next test


def test_unplug_replug_keeps_the_key(stack: Stack) -> None:
    completion, _, loaded = load_tdes(stack)
    assert completion == "success"
    sim = stack.sim()
    sim.Unplug(sim_control_pb2.SimDeviceRequest(device="pin_pad"), timeout=5)
    wait_for(lambda: agent_status(stack)[0] == "no_device", 5, "PIN pad gone")
    completion, _, _ = command(stack, "kcv")
    assert completion == "device_not_ready"
    sim.Replug(sim_control_pb2.SimDeviceRequest(device="pin_pad"), timeout=5)
    wait_for(lambda: agent_status(stack)[0] == "online", 10, "PIN pad back")
    assert command(stack, "kcv")[2]["kcv"] == loaded["kcv"]
    for junk in (b"\x02\x00\x30garbage", bytes(range(256)), b"\x02\x00\x02\x01\x90\x03\x00"):
        sim.InjectGarbage(
            sim_control_pb2.InjectGarbageRequest(device="pin_pad", data=junk), timeout=5
        )
    completion, _, result = read_pin(stack, "4321E")
    assert completion == "success" and tdes_pin(result) == "4321"
    assert stack.procs["agent"].popen.poll() is None
