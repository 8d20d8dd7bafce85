"""sd_notify against a real datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from branchline.agent.sd_notify import Notifier


def test_messages_reach_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
        assert notifier.enabled
        assert notifier.watchdog_interval == 1.0
        notifier.ready()
        notifier.watchdog()
        notifier.stopping()
        got = [sock.recv(256).decode() for _ in range(3)]
    assert got == ["READY=1", "WATCHDOG=1", "STOPPING=1"]


def test_watchdog_for_another_pid_is_ignored() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert notifier.watchdog_interval is None


def test_without_systemd_nothing_happens() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready()  # must not raise


def test_socket_gone_does_not_raise(tmp_path: Path) -> None:
    Notifier({"NOTIFY_SOCKET": str(tmp_path / "absent")}).stopping()
