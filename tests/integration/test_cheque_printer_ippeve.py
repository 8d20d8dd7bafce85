"""The cheque printer driver against an outside IPP implementation: CUPS's own
``ippeveprinter`` (Debian ``cups-ipp-utils``). Attributes read, status mapped, a leaf PDF
validated, printed and followed to completion, Get-Jobs and Cancel-Job answered."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchline.drivers.base import CancelToken, DeviceStatus, DriverContext
from branchline.drivers.cheque_printer.client import IppRefused
from branchline.drivers.cheque_printer.driver import IppChequePrinterDriver
from branchline.drivers.cheque_printer.leaf import Leaf, render_leaf
from branchline.drivers.cheque_printer.options import ChequePrinterOptions

IPPEVEPRINTER = shutil.which("ippeveprinter") or (
    "/usr/sbin/ippeveprinter" if Path("/usr/sbin/ippeveprinter").exists() else None
)
pytestmark = pytest.mark.skipif(
    IPPEVEPRINTER is None,
    reason="ippeveprinter not installed (Debian package cups-ipp-utils; .ci/run installs it)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ippeveprinter exited {proc.returncode}: {log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"ippeveprinter not listening on {port}: {log.read_text()}")


@pytest.fixture
def ippeve(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    # ippeveprinter talks to Avahi over the system D-Bus even with -r off: give it a private
    # bus so it neither needs nor touches the machine's.
    bus = subprocess.run(
        ["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"],
        capture_output=True,
        text=True,
        check=True,
    )
    address, pid = bus.stdout.split()[:2]
    spool = tmp_path / "spool"
    spool.mkdir()
    port = free_port()
    log = tmp_path / "ippeveprinter.log"
    assert IPPEVEPRINTER is not None
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            # No -n: ippeveprinter then listens on IPv4 and IPv6 wildcards (with -n 127.0.0.1
            # it cannot make its IPv6 listener and exits).
            [IPPEVEPRINTER, "-r", "off", "-p", str(port), "-f", "application/pdf", "-k"]
            + ["-d", str(spool), "-m", "Cheque Test", "BranchlineCheque"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin:/usr/sbin", "DBUS_SYSTEM_BUS_ADDRESS": address},
        )
    try:
        wait_listening(port, proc, log)
        yield f"ipp://127.0.0.1:{port}/ipp/print", spool
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        subprocess.run(["kill", pid], check=False)


def test_driver_against_ippeveprinter(ippeve: tuple[str, Path]) -> None:
    uri, spool = ippeve
    options = ChequePrinterOptions(uri, None, 10.0, 30.0, 1.0, 0.05, "branchline-test")
    driver = IppChequePrinterDriver(DriverContext("T-0001", "BR-001", "cheque_printer"), options)
    driver.open()
    try:
        attrs = driver.client.printer_attributes()
        assert attrs["printer-state"] in (3, 4)
        assert "application/pdf" in attrs["document-format-supported"]
        assert 0x0002 in attrs["operations-supported"]  # Print-Job
        report = driver.poll()
        assert report.status is DeviceStatus.ONLINE, report
        capabilities = driver.capabilities()
        assert capabilities["pdf"] == "true"
        assert (capabilities["feeder_ocr"], capabilities["presenter"]) == ("false", "false")
        assert driver.self_test(CancelToken()).ok

        pdf = render_leaf(
            Leaf("Hengda Trading", "6222020200112233", "CCB", "105100000017", "10", 10000001)
        )
        job_id = driver.print_pdf(pdf, "cheque-1010000001", CancelToken())
        completed = driver.client.jobs("completed")
        assert job_id in [job["job-id"] for job in completed]
        kept = [p for p in spool.rglob("*") if p.is_file() and p.read_bytes() == pdf]
        assert kept, f"the PDF is not in ippeveprinter's spool: {list(spool.rglob('*'))}"
        with pytest.raises(IppRefused) as caught:
            driver.client.cancel_job(job_id)  # already completed: not possible
        assert caught.value.status >= 0x0400
        with pytest.raises(IppRefused):
            driver.client.job_attributes(424242)
    finally:
        driver.close()
