"""``make demo``'s phone: the gateway's command line, and customer C-1 enrolled for mobile
banking with ``branchline-server mobile enrol`` (the phone's sign-in at the bank)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

# Customer C-1's mobile-banking password, a demo's only.
DEMO_MOBILE_PASSWORD = "branchline-demo"
GATEWAY = "gw1"


def gateway_args(pki: Path, listen: str, server: str) -> list[str]:
    return [
        "branchline.server.mobile_gateway.main", "--tls-dir", str(pki), "--name", GATEWAY,
        "--listen", listen, "--server", server,
    ]  # fmt: skip


def _enrol(server: Callable[..., str], uri_file: Path) -> None:
    """Once per var/ folder: the provisioning URI, shown once by the bank, kept in
    ``uri_file`` for the simulated authenticator app (a demo's secret, 0600), its QR beside
    it for a real app."""
    if uri_file.exists():
        return
    qr = uri_file.with_suffix(".png")
    qr.unlink(missing_ok=True)
    password = DEMO_MOBILE_PASSWORD + "\n"
    mobile = ("mobile", "--actor", "demo")
    try:
        shown = server(*mobile, "enrol", "--customer", "C-1", "--qr", str(qr), "--json",
                       stdin=password)  # fmt: skip
    except SystemExit as exc:  # enrolled in an earlier run whose URI file was removed
        if "already_enrolled" not in str(exc):
            raise
        shown = server(*mobile, "reset", "--customer", "C-1", "--password", "--totp",
                       "--qr", str(qr), "--json", stdin=password)  # fmt: skip
    # Whole or not at all: the banner's authenticator command may read it any moment.
    partial = uri_file.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.loads(shown)["otpauth_uri"] + "\n")
    partial.replace(uri_file)


def set_up_mobile(server: Callable[..., str], uri_file: Path) -> None:
    """``_enrol`` in a background thread of the demo: says when it is done, or why not."""
    try:
        _enrol(server, uri_file)
    except (OSError, subprocess.SubprocessError, SystemExit) as exc:
        print(f"mobile banking not set up: {exc}", flush=True)
        return
    print("mobile banking C-1 enrolled (the phone's sign-in at the bank)", flush=True)
