"""Identifiers in words (server/console/labels.py) and in the back office's and the fleet
board's state: tube events, states and actors, device names and statuses, in both languages,
an unknown id humanised, the raw ids kept beside them."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from branchline.server.console import labels
from branchline.server.console.backoffice import event_view, incident_view, txn_view
from branchline.server.console.fleet import change_view, terminal_view
from branchline.v1 import common_pb2 as cpb
from branchline.v1 import fleet_pb2 as fpb
from branchline.v1 import tube_pb2 as tpb


def test_actors_keep_their_ids_in_words_of_the_language() -> None:
    assert labels.actor_name("en", "terminal:T-0001") == "Terminal T-0001"
    assert labels.actor_name("zh-CN", "terminal:T-0001") == "终端 T-0001"
    assert labels.actor_name("en", "teller:BO-1") == "Teller BO-1"
    assert labels.actor_name("zh-CN", "teller:BO-1") == "柜员 BO-1"
    assert labels.actor_name("zh-CN", "server") == "服务器"
    # A role the catalogue does not know yet: humanised, the id kept.
    assert labels.actor_name("en", "night_clerk:N-7") == "Night clerk N-7"


def test_unknown_ids_read_humanised_never_blank() -> None:
    assert labels.tube_event_name("zh-CN", "carrier_sent") == "传输瓶已发出"
    assert labels.tube_event_name("en", "carrier_jammed") == "Carrier jammed"
    assert labels.device_name("zh-CN", "pin_pad") == "密码键盘"
    assert labels.device_name("en", "card_dispenser") == "Card dispenser"
    assert labels.device_status_name("zh-CN", "no_device") == "无设备"
    assert labels.incident_name("en", "customer_left") == "Customer left"


def test_back_office_state_names_events_actors_and_states() -> None:
    at = Timestamp(seconds=1_800_000_000)
    record = tpb.TubeEventRecord(
        event_id=7,
        txn_id="D1",
        terminal_id="T-0001",
        event="carrier_sent",
        state=tpb.TUBE_STATE_IN_TRANSIT,
        actor="terminal:T-0001",
        at=at,
    )
    shown = event_view("zh-CN", record)
    assert (shown["event"], shown["event_name"]) == ("carrier_sent", "传输瓶已发出")
    assert (shown["actor"], shown["actor_name"]) == ("terminal:T-0001", "终端 T-0001")
    assert (shown["state"], shown["state_name"]) == ("in_transit", "传输中")
    txn = tpb.TubeTransaction(
        txn_id="D1",
        terminal_id="T-0001",
        kind=tpb.TUBE_KIND_DEPOSIT,
        state=tpb.TUBE_STATE_RECEIVED,
        requested=tpb.TubeAsset(kind=tpb.ASSET_KIND_CASH, currency="CNY", amount="100"),
    )
    view = txn_view("zh-CN", txn)
    assert (view["state"], view["state_name"]) == ("received", "已接收")
    assert (view["kind_name"], view["asset_name"]) == ("存入", "现金")
    incident = incident_view("en", tpb.Incident(incident_id=3, kind="wrong_carrier"))
    assert (incident["kind"], incident["kind_name"]) == ("wrong_carrier", "Wrong carrier")


def test_fleet_state_names_devices_and_statuses() -> None:
    terminal = fpb.Terminal(
        terminal_id="T-0001",
        branch="B1",
        service_state=cpb.SERVICE_STATE_OUT_OF_SERVICE,
        devices=[
            cpb.Device(name="card_reader", status=cpb.DEVICE_STATUS_ONLINE),
            cpb.Device(name="printer", status=cpb.DEVICE_STATUS_NO_DEVICE, detail="serial port"),
        ],
    )
    view = terminal_view("zh-CN", terminal)
    assert view["service_name"] == "暂停服务"
    assert [(d["name"], d["label"], d["status"], d["status_name"]) for d in view["devices"]] == [
        ("card_reader", "读卡器", "online", "在线"),
        ("printer", "打印机", "no_device", "无设备"),
    ]
    assert view["devices"][1]["detail"] == "serial port"  # free text as the device said it
    change = change_view(
        "en", fpb.DeviceStatusChange(device="pin_pad", status=cpb.DEVICE_STATUS_BUSY)
    )
    assert (change["device"], change["device_name"]) == ("pin_pad", "PIN pad")
    assert (change["status"], change["status_name"]) == ("busy", "busy")
