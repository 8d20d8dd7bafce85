"""nginx in front of server replicas, for the replica benchmark and tests: the config is
``ops/nginx/branchline-replicas.conf.template`` filled in, nginx runs in the foreground
on a free loopback port with its files in one folder.

Not a benchmark itself (no ``run``); ``bench.run`` skips helper modules listed in
``bench.run.HELPERS``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "ops" / "nginx" / "branchline-replicas.conf.template"
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None
    )


def missing() -> str | None:
    """Why nginx with the stream module cannot run here, or None."""
    if nginx_binary() is None:
        return "nginx is not installed (apt-get install nginx-light libnginx-mod-stream)"
    if not STREAM_MODULE.exists():
        return f"nginx's stream module is missing ({STREAM_MODULE}; apt-get install libnginx-mod-stream)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render(folder: Path, listen_port: int, replica_ports: list[int]) -> Path:
    """Write ``folder/nginx.conf`` for these replicas; returns its path."""
    upstreams = "\n        ".join(
        f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in replica_ports
    )
    text = Template(TEMPLATE.read_text()).substitute(
        module=str(STREAM_MODULE),
        pid=str(folder / "nginx.pid"),
        error_log=str(folder / "nginx-error.log"),
        listen=f"127.0.0.1:{listen_port}",
        upstreams=upstreams,
    )
    # One worker is plenty for a test; the benchmark keeps ``auto``.
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


def start(
    folder: Path, replica_ports: list[int], workers: str = "auto"
) -> tuple[subprocess.Popen[bytes], int]:
    """nginx in the foreground balancing over ``replica_ports``: (process, its port)."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError(missing())
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = render(folder, port, replica_ports)
    if workers != "auto":
        config.write_text(
            config.read_text().replace("worker_processes auto;", f"worker_processes {workers};")
        )
    args = [binary, "-c", str(config), "-p", str(folder), "-e", str(folder / "nginx-error.log")]
    check = subprocess.run([*args, "-t", "-q"], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t: {check.stderr.strip()}")
    log = open(folder / "nginx.out", "wb")  # noqa: SIM115 - the child writes to it
    proc = subprocess.Popen([*args, "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"nginx exited {proc.returncode}: {(folder / 'nginx.out').read_text()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not listen within 10 s")
