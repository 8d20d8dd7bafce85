"""A simulated cable: a pseudo-terminal whose slave side is published at a stable symlink.

Drivers open ``<run-dir>/dev/<device>`` exactly as they would open ``/dev/ttyUSB0``.
Unplugging closes the master side (the driver's reads and writes then fail, as on a pulled
USB-serial adapter) and removes the symlink; replugging makes a fresh pty and points the
symlink at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("branchline.sim.line")

READ_CHUNK = 4096
BITS_PER_BYTE = 10  # start + 8 data + stop
PACE_CHUNK = 32  # bytes per paced write: 2.8 ms at 115200
MAX_BAUD = 4_000_000


class PtyLine:
    def __init__(self, link_path: Path, on_bytes: Callable[[bytes], None]) -> None:
        self.link_path = link_path
        self._on_bytes = on_bytes
        self._master: int | None = None
        self._slave: int | None = None
        self.slave_name = ""
        # A pty moves bytes as fast as the kernel copies them. With ``baud`` set, the line
        # behaves like a real one: a reply starts only after the request has fully arrived
        # at that rate and leaves at that rate, so benchmarks can compare with wire time.
        self.baud = 0
        self._rx_done_at = 0.0
        self._tx_free_at = 0.0
        self._scheduled: list[asyncio.TimerHandle] = []
        # Bytes the kernel's pty buffer had no room for yet (a face camera's JPEG is larger
        # than that buffer): sent as the driver reads, like a device waiting on flow control.
        self._pending = bytearray()

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def plug(self) -> None:
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.slave_name = os.ttyname(slave)
        # Publish atomically: a driver never sees a half-made link.
        self.link_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link_path.with_name(f".{self.link_path.name}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self.slave_name)
        tmp.replace(self.link_path)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def unplug(self) -> None:
        if self._master is None:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        for handle in self._scheduled:  # bytes "on the wire" are lost with the cable
            handle.cancel()
        self._scheduled.clear()
        self._rx_done_at = self._tx_free_at = 0.0
        if self._pending:
            asyncio.get_running_loop().remove_writer(self._master)
            self._pending.clear()
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def _readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("read from %s failed: %s", self.link_path, exc)
            return
        if data and self.baud:
            now = asyncio.get_running_loop().time()
            self._rx_done_at = max(now, self._rx_done_at) + len(data) * BITS_PER_BYTE / self.baud
        if data:
            try:
                self._on_bytes(data)
            except Exception:  # a simulator bug must not kill the line
                log.exception("device model failed on input from %s", self.link_path)

    def set_baud(self, baud: int) -> None:
        """Pace the line at ``baud`` (0: as fast as the pty goes)."""
        if not 0 <= baud <= MAX_BAUD:
            raise ValueError(f"baud: must be 0 (off) to {MAX_BAUD}, got {baud}")
        self.baud = baud

    def write(self, data: bytes) -> None:
        """Send bytes to the driver as the device would. Dropped when unplugged."""
        if not self.baud:
            self._write_now(data)
            return
        loop = asyncio.get_running_loop()
        byte_time = BITS_PER_BYTE / self.baud
        now = loop.time()
        start = max(now, self._rx_done_at, self._tx_free_at)
        self._scheduled = [h for h in self._scheduled if h.when() > now]
        for at in range(0, len(data), PACE_CHUNK):
            chunk = data[at : at + PACE_CHUNK]
            self._scheduled.append(
                loop.call_at(start + (at + len(chunk)) * byte_time, self._write_now, chunk)
            )
        self._tx_free_at = start + len(data) * byte_time

    def _write_now(self, data: bytes) -> None:
        if self._master is None:
            return
        if self._pending:  # keep the order: behind what is already waiting
            self._pending += data
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        """Write what the pty takes now; wait for room (add_writer) for the rest."""
        master = self._master
        if master is None:
            return
        loop = asyncio.get_running_loop()
        while self._pending:
            try:
                n = os.write(master, self._pending)
            except BlockingIOError:
                loop.add_writer(master, self._flush)
                return
            except OSError as exc:
                log.warning(
                    "line %s: dropped %d bytes: %s", self.link_path, len(self._pending), exc
                )
                self._pending.clear()
                break
            del self._pending[:n]
        loop.remove_writer(master)
