"""``branchline-server health``: ask a running server for its gRPC health, per service."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

EXIT_NOT_SERVING = 1


def channel_for(target: str, tls_dir: Path | None, operator: str) -> grpc.Channel:
    if tls_dir is None:
        return grpc.insecure_channel(target)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(tls_dir / "ca.pem").read_bytes(),
        private_key=(tls_dir / "operators" / f"{operator}.key").read_bytes(),
        certificate_chain=(tls_dir / "operators" / f"{operator}.pem").read_bytes(),
    )
    return grpc.secure_channel(target, credentials)


# Served by every server but not capabilities of their own.
NOT_CHECKED = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"})


def served_services(channel: grpc.Channel, timeout: float) -> list[str]:
    """The services the server says it serves (its reflection list): whatever capabilities
    it runs, without this command knowing them."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    for reply in stub.ServerReflectionInfo(iter([request]), timeout=timeout):
        names = (s.name for s in reply.list_services_response.service)
        return sorted(n for n in names if n not in NOT_CHECKED)
    return []


def run(args: argparse.Namespace) -> int:
    try:
        channel = channel_for(args.target, args.tls_dir, args.operator)
    except OSError as exc:
        print(f"branchline-server health: --tls-dir: {exc}", file=sys.stderr)
        return 2
    stub = health_pb2_grpc.HealthStub(channel)
    results: dict[str, str] = {}
    try:
        services = ["", *served_services(channel, args.timeout)]
    except grpc.RpcError as exc:
        results["(server)"] = f"UNREACHABLE ({exc.code().name})"  # type: ignore[attr-defined]
        services = []
    for service in services:
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=args.timeout)
            results[service or "(server)"] = health_pb2.HealthCheckResponse.ServingStatus.Name(
                reply.status
            )
        except grpc.RpcError as exc:
            results[service or "(server)"] = f"UNREACHABLE ({exc.code().name})"  # type: ignore[attr-defined]
    if args.json:
        print(json.dumps({"target": args.target, "services": results}, indent=2))
    else:
        for name, status in results.items():
            print(f"{name:32} {status}")
    return 0 if all(s == "SERVING" for s in results.values()) else EXIT_NOT_SERVING


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    health = sub.add_parser("health", help="check a running server's gRPC health")
    health.add_argument("--target", default="127.0.0.1:50051")
    health.add_argument("--tls-dir", type=Path, help="PKI folder (ca.pem, operators/NAME.pem/.key)")
    health.add_argument("--operator", default="ops", help="operator certificate to use")
    health.add_argument("--timeout", type=float, default=5.0)
    health.add_argument("--json", action="store_true")
