"""The nginx template in ops/nginx renders for any number of replicas and nginx accepts it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import balancer


def test_the_template_lists_every_replica_and_passes_tls_through(tmp_path: Path) -> None:
    config = balancer.render(tmp_path, 50051, [50061, 50062, 50063]).read_text()
    directives = [line for line in config.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in directives if "$" in line]  # every placeholder filled in
    for port in (50061, 50062, 50063):
        assert f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" in config
    assert "listen 127.0.0.1:50051 reuseport;" in config
    # Passthrough: a stream proxy, never TLS termination (client certificates are identity).
    assert "stream {" in config and "proxy_pass branchline_replicas;" in config
    assert "ssl_certificate" not in config and "grpc_pass" not in config


@pytest.mark.skipif(balancer.missing() is not None, reason=str(balancer.missing()))
def test_nginx_accepts_the_rendered_config(tmp_path: Path) -> None:
    config = balancer.render(tmp_path, balancer.free_port(), [50061, 50062])
    binary = balancer.nginx_binary()
    assert binary is not None
    result = subprocess.run(
        [binary, "-t", "-q", "-c", str(config), "-p", str(tmp_path), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
