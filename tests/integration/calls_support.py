"""Extra agents for call tests: an agent of a branch started with the simulator's devices it
names, its local API (AgentLocal over its Unix socket), and a video-teller call requested
through it as the kiosk page would."""

from __future__ import annotations

import grpc

from branchline.v1 import agent_local_pb2, agent_local_pb2_grpc, calls_pb2
from tests.integration.stack import DEVICE_SECTIONS, Proc, Stack, wait_for

BRANCH = "B"


def start_agent(
    stack: Stack, terminal_id: str, devices: tuple[str, ...], branch: str = BRANCH
) -> Proc:
    """One more agent of ``branch``, with its own state directory and the simulator's devices
    it names."""
    state = stack.root / f"agent-{terminal_id}"
    sections = "".join(
        f"\n[device.{name}]\n" + DEVICE_SECTIONS[name].format(dev=stack.sim_dir / "dev" / name)
        for name in devices
    )
    required = "[" + ", ".join(f'"{n}"' for n in devices) + "]"
    config = stack.root / f"agent-{terminal_id}.toml"
    config.write_text(
        f"""
[terminal]
id = "{terminal_id}"
branch = "{branch}"
server = "127.0.0.1:{stack.server_port}"
state_dir = "{state}"
heartbeat_interval = 1.0
ca_file = "{stack.pki / "ca.pem"}"
cert_file = "{stack.pki / "terminals" / (terminal_id + ".pem")}"
key_file = "{stack.pki / "terminals" / (terminal_id + ".key")}"
required_devices = {required}
{sections}"""
    )
    proc = stack._spawn(f"agent-{terminal_id}", ["branchline.agent.main", "--config", str(config)])
    wait_for(lambda: (state / "agent.sock").exists() or proc.popen.poll() is not None, 30, "agent")
    assert proc.popen.poll() is None, proc.log()
    return proc


def local(stack: Stack, terminal_id: str) -> agent_local_pb2_grpc.AgentLocalStub:
    sock = stack.root / f"agent-{terminal_id}" / "agent.sock"
    return agent_local_pb2_grpc.AgentLocalStub(grpc.insecure_channel(f"unix:{sock}"))


def connected(stub: agent_local_pb2_grpc.AgentLocalStub) -> bool:
    return bool(stub.GetStatus(agent_local_pb2.GetStatusRequest(), timeout=5).server_connected)


def request(stack: Stack, terminal: str) -> calls_pb2.Call:
    return local(stack, terminal).RequestTeller(
        agent_local_pb2.RequestTellerRequest(
            business_type="loan", mode=calls_pb2.CALL_MODE_VIDEO_TELLER
        ),
        timeout=15,
    )
