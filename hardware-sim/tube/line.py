"""The tube line between a terminal station and the back-office station.

One carrier can be in the tube at a time. A send blows the carrier out of its station
(``sending`` for a moment), then it travels (``in_transit``) for ``travel_time`` seconds and
arrives at the other station. Faults change the flight: ``jam`` stops it halfway and both
stations report the jam; ``lost`` makes it never arrive (nothing on the line notices: the
host's transit timeout must); a door forced open aborts a send that has not left yet.

Time comes from the caller: ``call_later(delay, fn)`` and ``clock()`` are the asyncio loop's
in the simulator and a fake clock in the tests, so nothing here ever blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from branchline.drivers.tube_station.registers import MAX_U32, CommandResult, Fault, StationState

TERMINAL = "terminal"
BACKOFFICE = "backoffice"
TEST_DWELL = 0.3  # seconds a test carrier rests at the back office before it is sent back


class LineError(Exception):
    """A person's action the line cannot carry out; the message says why."""


class Timer(Protocol):
    def cancel(self) -> None: ...


CallLater = Callable[[float, Callable[[], None]], Timer]


@dataclass
class Station:
    name: str
    state: StationState = StationState.EMPTY  # what the controller believes, door aside
    carrier_id: int = 0
    door_closed: bool = True  # as commanded or left by a person
    door_forced: bool = False  # the door_open fault: the sensor reads open whatever we did
    fault: Fault = Fault.NONE
    sent: int = 0
    received: int = 0
    blower: bool = False  # switched on by a technician

    @property
    def reported_state(self) -> StationState:
        return StationState.DOOR_FAULT if self.door_forced else self.state

    @property
    def door_sensor_closed(self) -> bool:
        return self.door_closed and not self.door_forced

    @property
    def present(self) -> bool:
        return self.carrier_id != 0


@dataclass
class Flight:
    carrier_id: int
    source: Station
    dest: Station
    auto_return: bool
    phase: str = "sending"  # sending, in_transit, jammed, lost
    departed: float | None = None
    timers: list[Timer] = field(default_factory=list)

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


class TubeLine:
    def __init__(
        self,
        call_later: CallLater,
        clock: Callable[[], float],
        travel_time: float = 1.0,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._call_later = call_later
        self._clock = clock
        self.travel_time = travel_time
        self.on_change = on_change
        self.terminal = Station(TERMINAL)
        self.backoffice = Station(BACKOFFICE)
        self.flight: Flight | None = None
        self.jam_active = False
        self.lost_active = False

    # -- helpers -----------------------------------------------------------------------------

    def other(self, station: Station) -> Station:
        return self.backoffice if station is self.terminal else self.terminal

    @property
    def launch_time(self) -> float:
        return min(0.25, self.travel_time / 4)

    def _changed(self) -> None:
        self.on_change()

    def _later(self, flight: Flight, delay: float, fn: Callable[[], None]) -> None:
        def run() -> None:
            if self.flight is flight:  # a reset or an abort may have ended the flight
                fn()
                self._changed()

        flight.timers.append(self._call_later(delay, run))

    def incoming(self, station: Station) -> bool:
        return self.flight is not None and self.flight.dest is station

    def in_flight_seconds(self, station: Station) -> int:
        flight = self.flight
        if flight is None or flight.departed is None or station not in (flight.source, flight.dest):
            return 0
        return min(0xFFFF, int(self._clock() - flight.departed))

    def blower_running(self, station: Station) -> bool:
        flight = self.flight
        moving = flight is not None and flight.phase in ("sending", "in_transit")
        return station.blower or (moving and flight is not None and flight.source is station)

    def can_receive(self, station: Station) -> str:
        """Why ``station`` cannot take a carrier now; empty when it can."""
        if self.flight is not None:
            return "a carrier is already in the tube"
        if station.fault is not Fault.NONE:
            return f"the {station.name} station has a fault ({station.fault.name.lower()})"
        if station.present or station.state not in (
            StationState.EMPTY,
            StationState.READY_TO_RECEIVE,
        ):
            return f"the {station.name} station is {station.reported_state.name.lower()}"
        if not station.door_sensor_closed:
            return f"the {station.name} station's door is open"
        return ""

    # -- controller commands (answer with a COMMAND_RESULT) ----------------------------------------

    def send(self, station: Station, carrier_id: int, auto_return: bool = False) -> CommandResult:
        if station.fault is not Fault.NONE:
            return CommandResult.FAULT_ACTIVE
        if not station.door_sensor_closed:
            return CommandResult.DOOR_OPEN
        if station.state is not StationState.LOADED:
            return CommandResult.WRONG_STATE
        if carrier_id and carrier_id != station.carrier_id:
            return CommandResult.WRONG_CARRIER
        dest = self.other(station)
        if self.can_receive(dest):
            return CommandResult.REMOTE_NOT_READY
        flight = Flight(station.carrier_id, station, dest, auto_return)
        self.flight = flight
        station.state = StationState.SENDING
        dest.state = StationState.READY_TO_RECEIVE
        self._later(flight, self.launch_time, self._depart)
        self._changed()
        return CommandResult.DONE

    def _depart(self) -> None:
        flight = self.flight
        assert flight is not None
        flight.phase = "in_transit"
        flight.departed = self._clock()
        flight.source.carrier_id = 0
        flight.source.state = StationState.IN_TRANSIT
        flight.source.sent = (flight.source.sent + 1) & MAX_U32
        if self.lost_active:
            flight.phase = "lost"  # it will never arrive; only the host's timeout can tell
            return
        self._later(flight, self.travel_time / 2, self._halfway)
        self._later(flight, self.travel_time, self._arrive)

    def _halfway(self) -> None:
        if self.jam_active:  # switched on while the carrier was being blown out
            self._jam()

    def _jam(self) -> None:
        flight = self.flight
        assert flight is not None
        flight.cancel_timers()
        flight.phase = "jammed"
        flight.source.state = StationState.JAMMED
        flight.source.fault = Fault.JAM
        flight.dest.fault = Fault.JAM

    def _lose(self) -> None:
        flight = self.flight
        assert flight is not None
        flight.cancel_timers()
        flight.phase = "lost"

    def _arrive(self) -> None:
        flight = self.flight
        assert flight is not None
        self.flight = None
        flight.source.state = StationState.EMPTY
        flight.dest.state = StationState.ARRIVED
        flight.dest.carrier_id = flight.carrier_id
        flight.dest.received = (flight.dest.received + 1) & MAX_U32
        if flight.auto_return and flight.dest is self.backoffice:
            self._call_later(TEST_DWELL, self._return_test_carrier)

    def _return_test_carrier(self) -> None:
        station = self.backoffice
        if station.state is StationState.ARRIVED and station.present:
            station.state = StationState.LOADED
            if self.send(station, station.carrier_id) is not CommandResult.DONE:
                station.state = StationState.ARRIVED  # the terminal cannot take it: it waits here
        self._changed()

    def prepare_receive(self, station: Station) -> CommandResult:
        if station.fault is not Fault.NONE:
            return CommandResult.FAULT_ACTIVE
        if not station.door_sensor_closed:
            return CommandResult.DOOR_OPEN
        if station.state is StationState.EMPTY and not station.present:
            station.state = StationState.READY_TO_RECEIVE
        elif station.state is not StationState.READY_TO_RECEIVE:
            return CommandResult.WRONG_STATE
        self._changed()
        return CommandResult.DONE

    def open_door(self, station: Station) -> CommandResult:
        if self.flight is not None and station in (self.flight.source, self.flight.dest):
            return CommandResult.WRONG_STATE  # never open onto a moving carrier
        if station.state is StationState.READY_TO_RECEIVE:
            station.state = StationState.EMPTY
        elif station.state not in (
            StationState.EMPTY,
            StationState.LOADED,
            StationState.ARRIVED,
            StationState.REMOVED,
        ):
            return CommandResult.WRONG_STATE
        station.door_closed = False
        self._changed()
        return CommandResult.DONE

    def close_door(self, station: Station) -> CommandResult:
        if station.door_forced:
            return CommandResult.DOOR_OPEN  # something holds it open
        station.door_closed = True
        if station.state is StationState.REMOVED:
            station.state = StationState.EMPTY
        self._changed()
        return CommandResult.DONE

    def set_blower(self, station: Station, on: bool) -> CommandResult:
        if self.flight is not None:
            return CommandResult.WRONG_STATE
        station.blower = on
        self._changed()
        return CommandResult.DONE

    def reset_fault(self, station: Station) -> CommandResult:
        if station.door_forced:
            return CommandResult.DOOR_OPEN
        flight = self.flight
        if flight is not None and flight.phase == "jammed" and self.jam_active:
            return CommandResult.FAULT_ACTIVE  # the carrier is still stuck
        if flight is not None and flight.phase in ("jammed", "lost"):
            flight.cancel_timers()
            self.flight = None
            if flight.phase == "jammed":
                # Cleared by a technician: the carrier goes back into the station it left.
                flight.source.state = StationState.LOADED
                flight.source.carrier_id = flight.carrier_id
                flight.source.door_closed = True
            else:
                flight.source.state = StationState.EMPTY  # written off
            if flight.dest.state is StationState.READY_TO_RECEIVE:
                flight.dest.state = StationState.EMPTY
        for each in (self.terminal, self.backoffice):
            each.fault = Fault.NONE
        self._changed()
        return CommandResult.DONE

    # -- faults ------------------------------------------------------------------------------------

    def set_jam(self, on: bool) -> None:
        self.jam_active = on
        if on and self.flight is not None and self.flight.phase == "in_transit":
            self._jam()
        self._changed()

    def set_lost(self, on: bool) -> None:
        self.lost_active = on
        if on and self.flight is not None and self.flight.phase == "in_transit":
            self._lose()
        self._changed()

    def set_door_forced(self, on: bool) -> None:
        station = self.terminal
        station.door_forced = on
        if on:
            station.fault = Fault.DOOR_OPENED_IN_USE
            flight = self.flight
            if flight is not None and flight.source is station and flight.phase == "sending":
                # The carrier has not left: the controller stops the blower and keeps it.
                flight.cancel_timers()
                self.flight = None
                station.state = StationState.LOADED
                if flight.dest.state is StationState.READY_TO_RECEIVE:
                    flight.dest.state = StationState.EMPTY
        self._changed()

    # -- people ------------------------------------------------------------------------------------

    def load(self, carrier_id: int) -> None:
        """The customer puts a carrier into the terminal station and closes the door."""
        station = self.terminal
        if station.door_forced:
            raise LineError("the terminal door is jammed open (door_open fault)")
        if (
            self.incoming(station)
            or station.present
            or station.state
            not in (
                StationState.EMPTY,
                StationState.READY_TO_RECEIVE,
            )
        ):
            raise LineError(
                f"the terminal station cannot take a carrier: it is "
                f"{station.reported_state.name.lower()}"
                + (" with a carrier inside" if station.present else "")
            )
        station.carrier_id = carrier_id
        station.state = StationState.LOADED
        station.door_closed = True
        self._changed()

    def remove(self) -> None:
        """The customer takes the carrier out of the terminal station."""
        station = self.terminal
        if station.state not in (StationState.ARRIVED, StationState.LOADED) or not station.present:
            raise LineError(
                f"no carrier to take: the terminal station is {station.reported_state.name.lower()}"
            )
        if station.door_sensor_closed:
            raise LineError("the terminal door is closed: the customer cannot reach the carrier")
        station.state = (
            StationState.REMOVED if station.state is StationState.ARRIVED else StationState.EMPTY
        )
        station.carrier_id = 0
        self._changed()

    def backoffice_send(self, carrier_id: int) -> None:
        station = self.backoffice
        if station.present or station.state is not StationState.EMPTY:
            raise LineError(
                f"the back-office station is {station.state.name.lower()}: "
                "remove or return its carrier first"
            )
        self._send_from_backoffice(carrier_id)

    def backoffice_return(self) -> None:
        station = self.backoffice
        if station.state is not StationState.ARRIVED or not station.present:
            raise LineError(
                f"no carrier to return: the back-office station is {station.state.name.lower()}"
            )
        self._send_from_backoffice(station.carrier_id)

    def _send_from_backoffice(self, carrier_id: int) -> None:
        station = self.backoffice
        if station.fault is not Fault.NONE:
            raise LineError(f"the back-office station has a fault ({station.fault.name.lower()})")
        why = self.can_receive(self.terminal)
        if why:
            raise LineError(f"cannot send to the terminal: {why}")
        previous = (station.state, station.carrier_id)
        station.state, station.carrier_id = StationState.LOADED, carrier_id
        result = self.send(station, carrier_id)
        if result is not CommandResult.DONE:
            station.state, station.carrier_id = previous
            raise LineError(f"the back-office station refused: {result.name.lower()}")

    def backoffice_remove(self) -> None:
        station = self.backoffice
        if station.state is not StationState.ARRIVED or not station.present:
            raise LineError(
                f"no carrier to take: the back-office station is {station.state.name.lower()}"
            )
        station.state = StationState.EMPTY
        station.carrier_id = 0
        self._changed()

    def describe(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for station in (self.terminal, self.backoffice):
            prefix = station.name
            out[f"{prefix}_state"] = station.reported_state.name.lower()
            out[f"{prefix}_carrier_id"] = str(station.carrier_id)
            out[f"{prefix}_door"] = "closed" if station.door_sensor_closed else "open"
            out[f"{prefix}_fault"] = station.fault.name.lower()
            out[f"{prefix}_sent"] = str(station.sent)
            out[f"{prefix}_received"] = str(station.received)
        flight = self.flight
        out["flight"] = (
            "none"
            if flight is None
            else f"{flight.carrier_id} {flight.source.name}->{flight.dest.name} {flight.phase}"
        )
        out["travel_time"] = f"{self.travel_time:g}"
        return out
