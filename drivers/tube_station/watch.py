"""What the driver concludes from what it reads: the carrier's life cycle, overdue carriers,
sensor disagreement, and the one status the station reports. No I/O, no clock of its own.

The controller is the source of truth for the station's state; the driver adds what a
controller cannot know by itself: how long is too long (jam, lost carrier) for this branch's
tubes, and whether its own GPIO sensors agree with the controller's discrete inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from branchline.drivers.base import Completion, DeviceError, DeviceStatus
from branchline.drivers.tube_station import lifecycle
from branchline.drivers.tube_station.gpio import GpioReading
from branchline.drivers.tube_station.lifecycle import Carrier, CarrierState, Limits
from branchline.drivers.tube_station.registers import (
    Fault,
    LineStatus,
    StationSnapshot,
    StationState,
)

IN_FLIGHT = (StationState.SENDING, StationState.IN_TRANSIT)


def state_name(state: StationState) -> str:
    return state.name.lower()


def fault_name(fault: Fault) -> str:
    return fault.name.lower()


@dataclass(frozen=True)
class Observation:
    """One consistent look at the station: controller registers, line block and GPIO."""

    snapshot: StationSnapshot
    line: LineStatus
    gpio: GpioReading
    at: float  # monotonic seconds

    @property
    def door_closed(self) -> bool:
        # A door is closed only when both sensors say so.
        return self.snapshot.door_closed and self.gpio.door_closed

    @property
    def incoming(self) -> bool:
        """A carrier is on its way to this station."""
        return self.snapshot.state is StationState.READY_TO_RECEIVE and (
            self.line.remote_state in IN_FLIGHT or self.snapshot.in_flight_seconds > 0
        )


@dataclass(frozen=True)
class Assessment:
    status: DeviceStatus
    detail: str
    code: str = ""  # stable reason for a failing command, empty when the station is fine

    def error(self) -> DeviceError | None:
        """The error a command should end with when the station is in this condition."""
        if self.status is DeviceStatus.HARDWARE_ERROR:
            return DeviceError(Completion.HARDWARE_ERROR, self.code, f"tube station: {self.detail}")
        if self.status is DeviceStatus.USER_ERROR:
            return DeviceError(Completion.USER_ERROR, self.code, f"tube station: {self.detail}")
        return None


class StationWatch:
    def __init__(self, limits: Limits, sensor_grace: float) -> None:
        self.limits = limits
        self.sensor_grace = sensor_grace
        self.carrier: Carrier | None = None
        self._disagree_since: float | None = None
        self._disagreement = ""

    def reset(self) -> None:
        """Forget timers (after reset_fault): the next observation starts them afresh."""
        self.carrier = None
        self._disagree_since = None
        self._disagreement = ""

    # -- tracking ---------------------------------------------------------------------------

    def observe(self, seen: Observation) -> None:
        self._track_carrier(seen)
        self._track_sensors(seen)

    def _track_carrier(self, seen: Observation) -> None:
        snapshot = seen.snapshot
        target = lifecycle.FROM_STATION[snapshot.state]
        if target is None:
            return
        since = seen.at
        if target is CarrierState.IN_TRANSIT:
            # The controller's flight clock survives an agent restart; ours would not.
            since = seen.at - snapshot.in_flight_seconds
        current = self.carrier
        if current is None or current.state is not target:
            # Polls can miss short states, so the controller is the truth rather than the
            # table; a legal move only tells us the carrier is still the same one.
            carrier_id = snapshot.present_carrier_id
            if not carrier_id and current is not None and lifecycle.can_move(current.state, target):
                carrier_id = current.carrier_id
            self.carrier = Carrier(carrier_id, target, since)
        elif target is CarrierState.IN_TRANSIT:
            self.carrier = Carrier(current.carrier_id, target, since)

    def _track_sensors(self, seen: Observation) -> None:
        problems = []
        if seen.gpio.door_closed != seen.snapshot.door_closed:
            problems.append(
                f"door GPIO says {'closed' if seen.gpio.door_closed else 'open'}, "
                f"controller says {'closed' if seen.snapshot.door_closed else 'open'}"
            )
        if seen.gpio.carrier_present != seen.snapshot.carrier_present:
            problems.append(
                f"carrier GPIO says {'present' if seen.gpio.carrier_present else 'absent'}, "
                f"controller says {'present' if seen.snapshot.carrier_present else 'absent'}"
            )
        if not problems:
            self._disagree_since = None
            self._disagreement = ""
            return
        if self._disagree_since is None:
            self._disagree_since = seen.at
        self._disagreement = "; ".join(problems)

    def sensor_disagreement(self, now: float) -> str:
        """The disagreement, once it has lasted longer than a sensor change can explain."""
        if self._disagree_since is None or now - self._disagree_since < self.sensor_grace:
            return ""
        return self._disagreement

    # -- verdict ----------------------------------------------------------------------------

    def assess(self, seen: Observation) -> Assessment:
        snapshot = seen.snapshot
        hardware = DeviceStatus.HARDWARE_ERROR
        if snapshot.fault is Fault.JAM or snapshot.state is StationState.JAMMED:
            return Assessment(hardware, "carrier jammed in the tube", "jam")
        if snapshot.fault is Fault.TRANSIT_TIMEOUT:
            return Assessment(
                hardware, "carrier lost: the controller timed out the transit", "carrier_lost"
            )
        overdue = (
            lifecycle.check_timeout(self.carrier, seen.at, self.limits) if self.carrier else None
        )
        # Details name the limit, not the elapsed time: a detail that changed every second
        # would send a status update every poll.
        if overdue is not None and overdue.suggested is CarrierState.LOST:
            detail = f"carrier lost: did not arrive within {overdue.limit:.0f} s"
            return Assessment(hardware, detail, "carrier_lost")
        if seen.incoming and snapshot.in_flight_seconds > self.limits.in_transit:
            detail = f"carrier lost: incoming carrier did not arrive within {self.limits.in_transit:.0f} s"
            return Assessment(hardware, detail, "carrier_lost")
        if overdue is not None and overdue.suggested is CarrierState.JAMMED:
            detail = f"carrier jammed: did not leave within {overdue.limit:.0f} s"
            return Assessment(hardware, detail, "jam")
        if snapshot.fault not in (Fault.NONE, Fault.DOOR_OPENED_IN_USE):
            what = fault_name(snapshot.fault).replace("_", " ")
            return Assessment(hardware, f"station fault: {what}", fault_name(snapshot.fault))
        disagreement = self.sensor_disagreement(seen.at)
        if disagreement:
            return Assessment(
                hardware, f"sensor disagreement: {disagreement}", "sensor_disagreement"
            )
        if snapshot.state is StationState.DOOR_FAULT:
            return Assessment(DeviceStatus.USER_ERROR, "door open while in use", "door_open")
        if snapshot.fault is Fault.DOOR_OPENED_IN_USE:
            return Assessment(
                DeviceStatus.USER_ERROR,
                "door was opened while in use; reset_fault clears it",
                "door_open",
            )
        if snapshot.state in IN_FLIGHT:
            return Assessment(DeviceStatus.BUSY, f"carrier {state_name(snapshot.state)}")
        if seen.incoming:
            return Assessment(DeviceStatus.BUSY, "carrier incoming")
        detail = state_name(snapshot.state)
        if overdue is not None:  # loaded or arrived for long: worth a look, not an error
            detail += f" for over {overdue.limit:.0f} s"
        return Assessment(DeviceStatus.ONLINE, detail)


def facts(seen: Observation) -> dict[str, str]:
    """Flat facts for operations; nothing that changes every second (it would flood the uplink)."""
    snapshot = seen.snapshot
    return {
        "state": state_name(snapshot.state),
        "fault": fault_name(snapshot.fault),
        "carrier_id": str(snapshot.present_carrier_id),
        "door": "closed" if seen.door_closed else "open",
        "carrier_present": str(snapshot.carrier_present).lower(),
        "sent_count": str(snapshot.sent_count),
        "received_count": str(snapshot.received_count),
        "far_station": state_name(seen.line.remote_state),
    }
