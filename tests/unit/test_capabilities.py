"""The capability contract: the server sets up every capability of its list in order, starts
their background tasks once it listens, and on shutdown undoes them in reverse."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from branchline.server.app import DispatchServer, StartupError
from branchline.server.capabilities import CAPABILITIES
from branchline.server.capability import Capability, Hub
from branchline.server.fleet.servicer import FleetServicer
from branchline.v1 import fleet_pb2, fleet_pb2_grpc
from tests.unit.server_support import run_until_ready, settings

pytestmark = pytest.mark.timeout(60)

FLEET_SERVICE = fleet_pb2.DESCRIPTOR.services_by_name["Fleet"].full_name


class Recorder:
    """A fake capability: records its set-up, its task's start and end, and its stop."""

    def __init__(self, name: str, journal: list[str], *, fail: bool = False) -> None:
        self.name = name
        self.journal = journal
        self.fail = fail

    def setup(self, hub: Hub) -> None:
        if self.fail:
            raise StartupError(f"--{self.name}: cannot start")
        self.journal.append(f"setup {self.name}")
        hub.background("task", self._task)
        hub.on_stop(lambda: self.journal.append(f"stop {self.name}"))

    async def _task(self) -> None:
        self.journal.append(f"task {self.name}")
        try:
            await asyncio.Event().wait()
        finally:
            self.journal.append(f"cancel {self.name}")


class Serving:
    """A fake capability with a real servicer, so health has something to report."""

    name = "serving"

    def setup(self, hub: Hub) -> None:
        hub.add_servicer(
            fleet_pb2_grpc.add_FleetServicer_to_server,
            FleetServicer(hub.engine, hub.auth),
            FLEET_SERVICE,
        )


async def health_of(port: int, names: list[str]) -> dict[str, int]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return {
            name: (await stub.Check(health_pb2.HealthCheckRequest(service=name))).status
            for name in names
        }


def test_the_hub_sets_up_in_order_and_stops_in_reverse(tmp_path: Path) -> None:
    journal: list[str] = []

    async def scenario() -> None:
        hub = Hub(server=None, engine=None, auth=None, link=None, settings=None)  # type: ignore[arg-type]
        hub.setup_all([Recorder(n, journal) for n in ("a", "b", "c")])
        assert hub.capabilities == ["a", "b", "c"]
        hub.start_background()
        await asyncio.sleep(0.05)
        await hub.stop_all()

    asyncio.run(scenario())
    assert journal == [
        "setup a",
        "setup b",
        "setup c",
        "task a",
        "task b",
        "task c",
        "cancel c",
        "cancel b",
        "cancel a",
        "stop c",
        "stop b",
        "stop a",
    ]


def test_require_names_the_missing_object_and_the_capability() -> None:
    class Needy:
        name = "needy"

        def setup(self, hub: Hub) -> None:
            hub.require("ledger")

    hub = Hub(server=None, engine=None, auth=None, link=None, settings=None)  # type: ignore[arg-type]
    with pytest.raises(LookupError, match="'needy' needs 'ledger'"):
        hub.setup_all([Needy()])


def test_the_app_starts_every_capability_of_its_list_and_stops_them_in_reverse(
    tmp_path: Path,
) -> None:
    journal: list[str] = []
    capabilities: list[Capability] = [
        Recorder("first", journal),
        Serving(),
        Recorder("second", journal),
    ]

    async def scenario() -> None:
        server = DispatchServer(settings(tmp_path), capabilities)
        running = await run_until_ready(server)
        assert server.hub is not None
        assert server.hub.capabilities == ["first", "serving", "second"]
        for _ in range(100):  # the tasks start once the server listens
            if len(journal) == 4:
                break
            await asyncio.sleep(0.01)
        assert journal == ["setup first", "setup second", "task first", "task second"]
        names = ["", "branchline.v1.TerminalLink", FLEET_SERVICE]
        assert set(server.hub.service_names) == set(names[1:])
        serving = health_pb2.HealthCheckResponse.SERVING
        assert await health_of(server.port, names) == dict.fromkeys(names, serving)
        server.request_stop()
        assert await running == 0

    asyncio.run(scenario())
    assert journal[4:] == ["cancel second", "cancel first", "stop second", "stop first"]


def test_a_capability_that_cannot_start_undoes_the_ones_before_it(tmp_path: Path) -> None:
    journal: list[str] = []
    capabilities = [Recorder("first", journal), Recorder("broken", journal, fail=True)]

    async def scenario() -> None:
        await DispatchServer(settings(tmp_path), capabilities).run()

    with pytest.raises(StartupError, match="--broken: cannot start"):
        asyncio.run(scenario())
    # Set up, never started (the server did not listen), stopped.
    assert journal == ["setup first", "stop first"]


def test_the_real_list_starts_and_serves_every_service_it_registers(tmp_path: Path) -> None:
    names = [c.name for c in CAPABILITIES]
    assert len(set(names)) == len(names), names

    async def scenario() -> None:
        server = DispatchServer(settings(tmp_path))
        running = await run_until_ready(server)
        hub = server.hub
        assert hub is not None and hub.capabilities == names
        for expected in (
            "branchline.v1.TerminalLink",
            "branchline.v1.Fleet",
            "branchline.v1.Receipts",
            "branchline.v1.TubeDesk",
            "branchline.v1.Dispatch",
            "branchline.v1.Tasks",
            "branchline.v1.DispatchAdmin",
            "branchline.v1.Calls",
            "branchline.v1.Recordings",
        ):
            assert expected in hub.service_names
        serving = health_pb2.HealthCheckResponse.SERVING
        health = await health_of(server.port, ["", *hub.service_names])
        assert set(health.values()) == {serving}
        # Without --hsm the PIN capability provides None and pin_verify is still answered.
        assert hub.optional("pin_verifier") is None
        assert hub.optional("pin_translator") is None
        server.request_stop()
        assert await running == 0
        assert not hub._running

    asyncio.run(scenario())
