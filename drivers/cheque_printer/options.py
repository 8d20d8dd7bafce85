"""The cheque printer driver's options, read strictly from its config table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from branchline.common.config_reader import SectionReader

URI_SCHEMES = ("ipp://", "ipps://")


@dataclass(frozen=True)
class ChequePrinterOptions:
    uri: str  # ipp:// URI, or "" when uri_file names where the URI is published
    uri_file: Path | None  # a file holding the URI (the simulator's dev/cheque_printer.uri)
    request_timeout: float
    job_timeout: float
    take_timeout: float
    job_poll_interval: float
    user_name: str


def read_cheque_printer_options(reader: SectionReader) -> ChequePrinterOptions:
    uri = str(reader.get_str("uri"))
    uri_file: Path | None = None
    if not uri.startswith(URI_SCHEMES):
        if "://" in uri:
            raise reader.error("uri", f"must be an ipp:// or ipps:// URI or a file; got {uri!r}")
        # A path: the URI is read from it at each open (a printer's address may move).
        uri_file = reader.get_path("uri")
        uri = ""
    return ChequePrinterOptions(
        uri=uri,
        uri_file=uri_file,
        request_timeout=reader.get_float("request_timeout", 10.0, above=0.0, maxval=120.0),
        job_timeout=reader.get_float("job_timeout", 30.0, above=0.0, maxval=600.0),
        take_timeout=reader.get_float("take_timeout", 30.0, above=0.0, maxval=600.0),
        job_poll_interval=reader.get_float("job_poll_interval", 0.05, above=0.0, maxval=5.0),
        user_name=reader.get_str("user_name", "branchline"),
    )
