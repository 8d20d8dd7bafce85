"""The payshield backend against the payShield simulator running as its own process.

Every answer must equal the soft backend's on the same keystore; malformed frames get
payShield error responses and the simulator keeps serving.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from branchline.common.hsm.errors import HsmError
from branchline.common.hsm.payshield.wire import frame
from branchline.server.hsm import (
    Algorithm,
    Ibm3624Record,
    KeyType,
    PayShieldHsm,
    PvvRecord,
    SoftHsm,
)
from tests.hsm_support import enroll_pin_for_testing
from tests.unit.hsm_fixtures import (
    A4_PAN,
    A4_PIN,
    A4_PIN_BLOCK,
    AES_KSN,
    MASTER,
    MASTER_HEX,
    TDES_KSN,
    aes_block,
    build_keystore,
    tdes_block,
    tpk_block,
)


@dataclass
class Simulator:
    proc: subprocess.Popen[str]
    port: int
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    path = tmp_path / "keystore.json"
    build_keystore(path)
    return path


@pytest.fixture
def simulator(tmp_path: Path, keystore: Path) -> Iterator[Simulator]:
    log = tmp_path / "sim-hsm.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "branchline.sim.hsm",
            "--listen",
            "127.0.0.1:0",
            "--keystore",
            str(keystore),
        ],
        stdout=subprocess.PIPE,
        stderr=open(log, "wb"),  # noqa: SIM115 - the child keeps writing to it
        text=True,
        env={**os.environ, "BRANCHLINE_HSM_MASTER_KEY": MASTER_HEX},
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("branchline-sim-hsm listening on"), (
            f"simulator did not start: {line!r}\n{log.read_text()}"
        )
        yield Simulator(proc, int(line.rsplit(":", 1)[1]), log)
    finally:
        proc.terminate()
        try:
            assert proc.wait(10) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.fixture
def backends(simulator: Simulator, keystore: Path) -> Iterator[tuple[SoftHsm, PayShieldHsm]]:
    soft = SoftHsm.open(keystore, MASTER)
    remote = PayShieldHsm("127.0.0.1", simulator.port, timeout=5)
    yield soft, remote
    remote.close()


def same(soft: SoftHsm, remote: PayShieldHsm, call: Callable[[Any], Any]) -> Any:
    """Run ``call`` on both backends; results (or error codes) must be identical."""
    outcomes = []
    for hsm in (soft, remote):
        try:
            outcomes.append(("ok", call(hsm)))
        except HsmError as exc:
            outcomes.append(("error", exc.code))
    assert outcomes[0] == outcomes[1], outcomes
    return outcomes[0][1]


# long: one end-to-end scenario, step by step, over one stack of processes
def test_translation_verification_and_diagnostics_match_soft(
    backends: tuple[SoftHsm, PayShieldHsm],
) -> None:
    soft, remote = backends
    # G0, TDES DUKPT with the published X9.24-1 A.4 block; and AES DUKPT (format 4).
    out = same(
        soft,
        remote,
        lambda h: h.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk"),
    )
    assert len(out) == 8
    aes = aes_block(A4_PIN, A4_PAN)
    assert (
        same(
            soft,
            remote,
            lambda h: h.translate_pin_dukpt_to_zpk("bdk-aes", AES_KSN, aes, A4_PAN, "zpk"),
        )
        == out
    )
    # CA: the same PIN from a fixed-key PIN pad gives the same zone block.
    assert (
        same(
            soft,
            remote,
            lambda h: h.translate_pin_tpk_to_zpk("tpk", tpk_block(A4_PIN, A4_PAN), A4_PAN, "zpk"),
        )
        == out
    )
    # NC: the simulator reports the LMK (master key) check value the soft backend has.
    assert remote.diagnostics()["lmk_check_value"] == soft.diagnostics()["lmk_check_value"]

    # Verification: right PIN true, wrong PIN false, for both methods and both DUKPTs.
    pvv, ibm = enroll_pin_for_testing(soft, "pvk", A4_PAN, A4_PIN)
    wrong_tdes = tdes_block("4321", A4_PAN)
    wrong_aes = aes_block("4321", A4_PAN)
    cases = [
        ("bdk", TDES_KSN, A4_PIN_BLOCK, True),
        ("bdk", TDES_KSN, wrong_tdes, False),
        ("bdk-aes", AES_KSN, aes, True),
        ("bdk-aes", AES_KSN, wrong_aes, False),
    ]
    for record in (pvv, ibm):
        for bdk, ksn, block, expected in cases:

            def verify(h: Any, b: str = bdk, k: bytes = ksn, p: bytes = block) -> Any:
                return h.verify_pin_dukpt(b, k, p, A4_PAN, "pvk", record)  # noqa: B023

            assert same(soft, remote, verify) is expected
    # [PSEC] published values through the wire: PVV 8523, offset 7710.
    psec_pan = "1122334455667788"
    assert same(
        soft,
        remote,
        lambda h: h.verify_pin_dukpt(
            "bdk", TDES_KSN, tdes_block("4524", psec_pan), psec_pan, "pvk", PvvRecord(1, "8523")
        ),
    )
    assert same(
        soft,
        remote,
        lambda h: h.verify_pin_dukpt(
            "bdk",
            TDES_KSN,
            tdes_block("1234", psec_pan),
            psec_pan,
            "pvk",
            Ibm3624Record("7710", psec_pan, "1234567890123456"),
        ),
    )

    # Enrolment (FW / BK) gives the stored records the verification above accepts.
    block = tpk_block(A4_PIN, A4_PAN)
    assert same(soft, remote, lambda h: h.generate_pvv("tpk", block, A4_PAN, "pvk", 1)) == pvv
    assert (
        same(
            soft,
            remote,
            lambda h: h.generate_ibm3624_offset("tpk", block, A4_PAN, "pvk", ibm.validation_data),
        )
        == ibm
    )


def test_errors_match_soft(backends: tuple[SoftHsm, PayShieldHsm]) -> None:
    soft, remote = backends
    cases: list[Callable[[Any], Any]] = [
        lambda h: h.translate_pin_dukpt_to_zpk("nope", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk"),
        lambda h: h.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "nope"),
        lambda h: h.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "tpk"),
        lambda h: h.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, bytes(8), A4_PAN, "zpk"),
        lambda h: h.translate_pin_dukpt_to_zpk("bdk", AES_KSN, bytes(16), A4_PAN, "zpk"),
        lambda h: h.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, "12", "zpk"),
        lambda h: h.translate_pin_tpk_to_zpk("tpk", tpk_block("1234", A4_PAN), A4_PAN, "zpk", 1),
        lambda h: h.verify_pin_dukpt(
            "bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk", PvvRecord(1, "1234")
        ),
        lambda h: h.generate_pvv("zpk", tpk_block("1234", A4_PAN), A4_PAN, "pvk", 1),
        # Several faults at once: the same one wins on both backends.
        lambda h: h.translate_pin_dukpt_to_zpk("nope", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "bdk"),
        lambda h: h.translate_pin_dukpt_to_zpk("nope", TDES_KSN, A4_PIN_BLOCK, "1", "zpk"),
        lambda h: h.translate_pin_dukpt_to_zpk("pvk", TDES_KSN, bytes(8), A4_PAN, "nope"),
    ]
    codes = [same(soft, remote, case) for case in cases]
    assert codes == [
        "key_not_found",
        "key_not_found",
        "wrong_key_type",
        "pin_block_invalid",
        "wrong_key_type",
        "invalid_account",
        "pin_block_invalid",
        "wrong_key_type",
        "wrong_key_type",
        "key_not_found",
        "invalid_account",
        "wrong_key_type",
    ]


def test_keys_added_later_are_served(backends: tuple[SoftHsm, PayShieldHsm]) -> None:
    soft, remote = backends
    soft.create_key("zpk-new", KeyType.ZPK, Algorithm.TDES)
    assert same(
        soft,
        remote,
        lambda h: h.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk-new"),
    )


def _exchange(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(frame(payload))
    head = sock.recv(2, socket.MSG_WAITALL)
    return sock.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)


def test_malformed_frames_get_errors_and_the_simulator_survives(
    simulator: Simulator, backends: tuple[SoftHsm, PayShieldHsm]
) -> None:
    _, remote = backends
    with socket.create_connection(("127.0.0.1", simulator.port), timeout=5) as sock:
        assert _exchange(sock, b"") == b"ZZ15"
        assert _exchange(sock, b"0001\xff\xfe") == b"0001ZZ15"
        assert _exchange(sock, b"0002QQ") == b"0002QR68"
        assert _exchange(sock, b"0003G0#03bdk") == b"0003G115"
        assert _exchange(sock, b"0004CA" + b"U" + b"0" * 32) == b"0004CB26"
        assert _exchange(sock, b"0005NC").startswith(b"0005ND00")
    with socket.create_connection(("127.0.0.1", simulator.port), timeout=5) as sock:
        sock.sendall(b"\x00\x40" + b"0006G0")  # a frame cut short, then hang up
    with socket.create_connection(("127.0.0.1", simulator.port), timeout=5) as sock:
        sock.sendall(os.urandom(300))  # noise: whatever it frames, the peer hangs up after
    assert simulator.alive()
    assert remote.diagnostics()["status"] == "ok"
    log = simulator.log.read_text()
    assert "Traceback" not in log
    assert A4_PAN not in log and A4_PIN_BLOCK.hex().upper() not in log
