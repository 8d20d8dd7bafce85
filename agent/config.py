"""The agent's TOML configuration: ``[terminal]`` and one ``[device.NAME]`` table per device.

Strict: an unknown section or option, a wrong type, a missing file or an unknown driver is a
``ConfigError`` naming file, section and option; the agent exits with code 2 on it.
Driver options are read by the driver itself (``DriverClass.read_options``), so each driver
documents and validates its own.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchline.agent.kiosk.settings import KioskSettings, read_kiosk
from branchline.agent.metrics import MetricsSettings, read_metrics
from branchline.common.config_reader import ConfigError, SectionReader
from branchline.drivers.registry import DriverNotFound, load_driver_class

DEVICE_NAMES = (
    "card_reader",
    "pin_pad",
    "id_reader",
    "printer",
    "tube_station",
    "face_camera",
    "cheque_printer",
)
TERMINAL_KINDS = ("self_service", "mobile_counter", "back_office")
# At least a day for support and for answering a replay of a recent acknowledgement; at most
# ten years.
MIN_RETENTION_DAYS = 1.0
MAX_RETENTION_DAYS = 3650.0


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class TerminalConfig:
    terminal_id: str
    branch: str
    kind: str
    server: str
    state_dir: Path
    heartbeat_interval: float
    # None: plaintext, allowed only to a loopback server address.
    tls: TlsFiles | None
    # Devices whose absence takes the terminal out of service.
    required_devices: tuple[str, ...]
    # Days a finished transaction's journal and acknowledged outbox messages (the ID card
    # read and face of a cheque purchase among them) stay in journal.db (journal/retention.py).
    journal_retention_days: float = 7.0


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    driver_name: str
    driver_class: type
    options: Any
    poll_interval: float
    command_timeout: float


@dataclass(frozen=True)
class TransactionSettings:
    """``[transactions]``: how long the tube transaction engine waits for each party.

    Every customer limit counts from the journaled step, so after an agent restart a
    transaction whose customer has long gone ends the way a walk-away does."""

    # The customer: press Send, confirm or dispute a count, confirm a withdrawal received.
    customer_timeout: float = 120.0
    # The back office: count a deposit after its carrier left.
    count_timeout: float = 900.0
    # The back office: send a withdrawal's (or a disputed deposit's) carrier.
    delivery_timeout: float = 600.0
    # A carrier the back office sent: arrive at the terminal.
    transit_timeout: float = 180.0
    # The customer: take the carrier out once the door opens.
    take_timeout: float = 60.0
    # How often the engine asks the server for a record it waits on (pushes can be lost).
    poll_seconds: float = 2.0
    # The tube station's send command, which follows the carrier to the back office.
    send_command_timeout: float = 240.0


@dataclass(frozen=True)
class AgentConfig:
    file: Path
    terminal: TerminalConfig
    devices: tuple[DeviceConfig, ...]
    transactions: TransactionSettings = TransactionSettings()
    kiosk: KioskSettings = KioskSettings()
    metrics: MetricsSettings = MetricsSettings()


def _read_terminal(reader: SectionReader) -> TerminalConfig:
    terminal_id = reader.get_str("id")
    if not all(c.isalnum() or c in "-_." for c in terminal_id):
        raise reader.error(
            "id", f"may hold only letters, digits, '-', '_' and '.'; got {terminal_id!r}"
        )
    insecure = reader.get_bool("insecure", False)
    tls: TlsFiles | None = None
    if insecure:
        for option in ("ca_file", "cert_file", "key_file"):
            if reader.has(option):
                raise reader.error(option, "TLS files given together with insecure = true")
    else:
        tls = TlsFiles(
            ca_file=reader.get_path("ca_file", must_exist=True),
            cert_file=reader.get_path("cert_file", must_exist=True),
            key_file=reader.get_path("key_file", must_exist=True),
        )
    server = reader.get_str("server", "127.0.0.1:50051")
    if insecure and not _is_loopback_address(server):
        raise reader.error(
            "insecure", f"plaintext is allowed only to a loopback server, not {server}"
        )
    required = reader._get("required_devices", [], (list,), "a list of device names")
    for name in required:
        if name not in DEVICE_NAMES:
            raise reader.error("required_devices", f"unknown device {name!r}")
    config = TerminalConfig(
        terminal_id=terminal_id,
        branch=reader.get_str("branch"),
        kind=reader.get_choice("kind", list(TERMINAL_KINDS), "self_service"),
        server=server,
        state_dir=reader.get_path("state_dir"),
        heartbeat_interval=reader.get_float("heartbeat_interval", 5.0, above=0.0, maxval=300.0),
        tls=tls,
        required_devices=tuple(required),
        journal_retention_days=_retention_days(reader),
    )
    reader.finish()
    return config


def _retention_days(reader: SectionReader) -> float:
    option = "journal_retention_days"
    days = reader.get_float(option, 7.0, maxval=MAX_RETENTION_DAYS)
    if not days >= MIN_RETENTION_DAYS:  # NaN too
        raise reader.error(
            option,
            f"must be at least {MIN_RETENTION_DAYS:g} day (support and replays of recent "
            f"acknowledgements need it), got {days:g}",
        )
    return days


def _is_loopback_address(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def _read_device(file: Path, name: str, table: Any) -> DeviceConfig:
    section = f"device.{name}"
    if not isinstance(table, dict):
        raise ConfigError(file, section, None, "must be a table")
    if name not in DEVICE_NAMES:
        raise ConfigError(file, section, None, f"unknown device; known: {', '.join(DEVICE_NAMES)}")
    reader = SectionReader(file, section, table)
    driver_name = reader.get_str("driver")
    try:
        driver_class = load_driver_class(driver_name)
    except DriverNotFound as exc:
        raise reader.error("driver", str(exc)) from None
    if driver_class.device_class != name:
        raise reader.error(
            "driver", f"driver {driver_name!r} serves {driver_class.device_class}, not {name}"
        )
    poll_interval = reader.get_float("poll_interval", 1.0, above=0.0, maxval=60.0)
    command_timeout = reader.get_float("command_timeout", 30.0, above=0.0, maxval=600.0)
    options = driver_class.read_options(reader)
    reader.finish()
    return DeviceConfig(name, driver_name, driver_class, options, poll_interval, command_timeout)


def _read_transactions(reader: SectionReader) -> TransactionSettings:
    defaults = TransactionSettings()

    def seconds(option: str, maxval: float = 86_400.0) -> float:
        return reader.get_float(option, getattr(defaults, option), above=0.0, maxval=maxval)

    settings = TransactionSettings(
        customer_timeout=seconds("customer_timeout"),
        count_timeout=seconds("count_timeout"),
        delivery_timeout=seconds("delivery_timeout"),
        transit_timeout=seconds("transit_timeout"),
        take_timeout=seconds("take_timeout"),
        poll_seconds=seconds("poll_seconds", 60.0),
        send_command_timeout=seconds("send_command_timeout", 3600.0),
    )
    reader.finish()
    return settings


def load_config(path: Path) -> AgentConfig:
    path = Path(path).absolute()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, "-", None, f"cannot read config file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "-", None, f"not valid TOML: {exc}") from None
    for key in data:
        if key not in ("terminal", "device", "transactions", "kiosk", "metrics"):
            raise ConfigError(path, key, None, "unknown section")
    if "terminal" not in data or not isinstance(data["terminal"], dict):
        raise ConfigError(path, "terminal", None, "required section is missing")
    terminal = _read_terminal(SectionReader(path, "terminal", data["terminal"]))
    devices_table = data.get("device", {})
    if not isinstance(devices_table, dict):
        raise ConfigError(path, "device", None, "must hold [device.NAME] tables")
    devices = tuple(_read_device(path, n, t) for n, t in devices_table.items())
    for name in terminal.required_devices:
        if name not in devices_table:
            raise ConfigError(path, "terminal", "required_devices", f"no [device.{name}] section")
    transactions_table = data.get("transactions", {})
    if not isinstance(transactions_table, dict):
        raise ConfigError(path, "transactions", None, "must be a table")
    transactions = _read_transactions(SectionReader(path, "transactions", transactions_table))
    # No [kiosk] section: the page on its defaults (docs/kiosk.md "Configuration").
    kiosk = KioskSettings()
    if "kiosk" in data:
        if not isinstance(data["kiosk"], dict):
            raise ConfigError(path, "kiosk", None, "must be a table")
        kiosk = read_kiosk(SectionReader(path, "kiosk", data["kiosk"]))
    metrics = MetricsSettings()
    if "metrics" in data:
        if not isinstance(data["metrics"], dict):
            raise ConfigError(path, "metrics", None, "must be a table")
        metrics = read_metrics(SectionReader(path, "metrics", data["metrics"]))
    return AgentConfig(
        file=path,
        terminal=terminal,
        devices=devices,
        transactions=transactions,
        kiosk=kiosk,
        metrics=metrics,
    )
