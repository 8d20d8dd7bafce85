"""The tube-station driver's options, read strictly from its ``[device.tube_station]`` table.

=======================  ====================================================================
``port``                 RS-485 adapter path or pyserial URL
``baudrate``             2400…115200 (default 19200)
``parity``               ``E`` (default, as Modbus over Serial Line asks), ``O`` or ``N``
                         (no parity means two stop bits)
``unit_id``              the controller's Modbus address, 1…247 (default 1)
``response_timeout``     seconds to wait for each reply (default 0.5)
``retries``              extra attempts of an unanswered request (default 2)
``send_timeout``         seconds a carrier may take to leave before it counts as jammed
                         (default 15)
``transit_timeout``      seconds a carrier may travel before it counts as lost (default 180)
``sensor_grace``         seconds GPIO and controller sensors may disagree (default 2)
``gpio``                 ``periphery`` (default) or ``sim``
``gpio_chip``            periphery: GPIO character device (default ``/dev/gpiochip0``)
``carrier_present_line`` periphery: line of the carrier-present sensor (required)
``door_closed_line``     periphery: line of the door-closed sensor (required)
``gpio_active_low``      periphery: both sensors read low when set (default false)
``gpio_sim_path``        sim: the state file the simulator writes (required)
=======================  ====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchline.common.config_reader import SectionReader

BAUD_RATES = (2400, 4800, 9600, 19200, 38400, 57600, 115200)
PARITIES = ["E", "O", "N"]
GPIO_BACKENDS = ["periphery", "sim"]
PERIPHERY_OPTIONS = ("gpio_chip", "carrier_present_line", "door_closed_line", "gpio_active_low")
SIM_OPTIONS = ("gpio_sim_path",)


@dataclass(frozen=True)
class TubeStationOptions:
    port: str
    baudrate: int
    parity: str
    unit_id: int
    response_timeout: float
    retries: int
    send_timeout: float  # blower on but the carrier has not left: jam
    transit_timeout: float  # left but not arrived: lost
    sensor_grace: float  # GPIO and controller may disagree this long during a change
    gpio: str
    gpio_chip: str = "/dev/gpiochip0"
    carrier_present_line: int = 0
    door_closed_line: int = 0
    gpio_active_low: bool = False
    gpio_sim_path: Path | None = None

    @property
    def stopbits(self) -> int:
        # Modbus over Serial Line: without parity, two stop bits keep the 11-bit character.
        return 2 if self.parity == "N" else 1


def read_tube_station_options(reader: SectionReader) -> TubeStationOptions:
    port = reader.get_str("port")
    if "://" not in port:
        port = str(reader.get_path("port"))  # relative to the config file, like every path
    baudrate = reader.get_int("baudrate", 19200)
    if baudrate not in BAUD_RATES:
        raise reader.error(
            "baudrate", f"must be one of {', '.join(map(str, BAUD_RATES))}; got {baudrate}"
        )
    gpio = reader.get_choice("gpio", GPIO_BACKENDS, "periphery")
    # Options of the other backend are mistakes, not silently ignored settings.
    unused = SIM_OPTIONS if gpio == "periphery" else PERIPHERY_OPTIONS
    for option in unused:
        if reader.has(option):
            other = "sim" if gpio == "periphery" else "periphery"
            raise reader.error(option, f'only used with gpio = "{other}"; gpio is "{gpio}"')
    common: dict[str, Any] = {
        "port": port,
        "baudrate": baudrate,
        "parity": reader.get_choice("parity", PARITIES, "E"),
        "unit_id": reader.get_int("unit_id", 1, minval=1, maxval=247),
        "response_timeout": reader.get_float("response_timeout", 0.5, above=0.0, maxval=10.0),
        "retries": reader.get_int("retries", 2, minval=0, maxval=10),
        "send_timeout": reader.get_float("send_timeout", 15.0, above=0.0, maxval=600.0),
        "transit_timeout": reader.get_float("transit_timeout", 180.0, above=0.0, maxval=3600.0),
        "sensor_grace": reader.get_float("sensor_grace", 2.0, above=0.0, maxval=60.0),
        "gpio": gpio,
    }
    if gpio == "sim":
        return TubeStationOptions(**common, gpio_sim_path=reader.get_path("gpio_sim_path"))
    present = reader.get_int("carrier_present_line", minval=0, maxval=1023)
    door = reader.get_int("door_closed_line", minval=0, maxval=1023)
    if present == door:
        raise reader.error("door_closed_line", f"must differ from carrier_present_line ({present})")
    return TubeStationOptions(
        **common,
        gpio_chip=str(reader.get_path("gpio_chip", "/dev/gpiochip0")),
        carrier_present_line=present,
        door_closed_line=door,
        gpio_active_low=reader.get_bool("gpio_active_low", False),
    )
