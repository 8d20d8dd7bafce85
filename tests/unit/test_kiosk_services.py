"""Which services the attract screen offers, from device status and service state."""

from __future__ import annotations

from branchline.agent.kiosk.services import Live, notices, offers, out_of_service_reason
from branchline.agent.service_state import ServiceState
from branchline.drivers.base import DeviceStatus

ALL = ("card_reader", "pin_pad", "printer", "tube_station")


def live(
    devices: dict[str, DeviceStatus] | None = None,
    service_state: ServiceState = ServiceState.IN_SERVICE,
    connected: bool = True,
    tube_busy: bool = False,
    rates_known: bool = True,
) -> Live:
    statuses = {name: DeviceStatus.ONLINE for name in ALL}
    statuses.update(devices or {})
    return Live(service_state, statuses, connected, tube_busy, rates_known)


def available(state: Live) -> set[str]:
    return {o.id for o in offers(state) if o.available}


def test_everything_working_offers_every_service() -> None:
    assert available(live()) == {
        "deposit",
        "withdrawal",
        "statement",
        "rates",
        "video",
        "assistant",
        "recordings",
    }
    assert notices(live()) == []


def test_a_jammed_tube_takes_tube_services_away() -> None:
    jammed = live(devices={"tube_station": DeviceStatus.HARDWARE_ERROR})
    assert available(jammed) == {"statement", "rates", "video", "assistant", "recordings"}
    assert notices(jammed) == ["notice.tube_unavailable"]


def test_a_busy_tube_device_still_counts_as_working_but_a_transaction_holds_it() -> None:
    assert "deposit" in available(live(devices={"tube_station": DeviceStatus.BUSY}))
    held = live(tube_busy=True)
    assert "deposit" not in available(held) and "withdrawal" not in available(held)
    assert notices(held) == ["notice.tube_busy"]


def test_printer_out_of_paper_keeps_statements_with_a_notice() -> None:
    state = live(devices={"printer": DeviceStatus.USER_ERROR})
    statement = next(o for o in offers(state) if o.id == "statement")
    assert statement.available and statement.notice == "notice.printer_unavailable"
    assert "notice.printer_unavailable" in notices(state)


def test_no_card_reader_or_pin_pad_means_no_signed_in_service() -> None:
    state = live(devices={"pin_pad": DeviceStatus.OFFLINE})
    assert available(state) == {"rates", "video", "assistant"}
    missing = live(devices={"card_reader": DeviceStatus.NO_DEVICE})
    assert available(missing) == {"rates", "video", "assistant"}


def test_without_the_bank_only_the_rates_board_remains() -> None:
    state = live(connected=False)
    assert available(state) == {"rates"}
    assert notices(state) == ["notice.bank_unreachable"]
    assert available(live(connected=False, rates_known=False)) == set()


def test_out_of_service_and_maintenance() -> None:
    assert out_of_service_reason(live()) == ""
    for state, reason in [
        (ServiceState.OUT_OF_SERVICE, "out_of_service"),
        (ServiceState.MAINTENANCE, "maintenance"),
        (ServiceState.MAINTENANCE_PENDING, "maintenance"),
        (ServiceState.SHUTTING_DOWN, "out_of_service"),
    ]:
        down = live(service_state=state)
        assert out_of_service_reason(down) == reason
        assert available(down) == set()
