"""The face camera drivers' options, read strictly from their config table."""

from __future__ import annotations

from dataclasses import dataclass

from branchline.common.config_reader import SectionReader

BAUD_RATES = (115200, 230400, 460800, 921600)
DEFAULT_BAUDRATE = 921600  # a 40 KB JPEG in about 0.45 s


@dataclass(frozen=True)
class FaceModuleOptions:
    port: str
    baudrate: int
    # Seconds to wait for a STATUS / GET_INFO / SELF_TEST reply.
    status_timeout: float
    # Seconds the line may stay silent past the capture time the module was given (the image
    # itself takes time on the wire).
    transfer_timeout: float


def read_face_module_options(reader: SectionReader) -> FaceModuleOptions:
    port = str(reader.get_str("port"))
    if "://" not in port:
        port = str(reader.get_path("port"))  # relative to the config file, like every path
    baudrate = reader.get_int("baudrate", DEFAULT_BAUDRATE)
    if baudrate not in BAUD_RATES:
        raise reader.error(
            "baudrate", f"must be one of {', '.join(map(str, BAUD_RATES))}; got {baudrate}"
        )
    return FaceModuleOptions(
        port=port,
        baudrate=baudrate,
        status_timeout=reader.get_float("status_timeout", 1.0, above=0.0, maxval=10.0),
        transfer_timeout=reader.get_float("transfer_timeout", 3.0, above=0.0, maxval=30.0),
    )
