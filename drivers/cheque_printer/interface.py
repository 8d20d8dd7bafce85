"""The cheque printer module's IPP interface beyond RFC 8011: names shared by the driver and
the simulator (docs/protocols/cheque-printer.md documents them for a module vendor).

A real cheque-printing module exposes its feeder OCR and its book presenter the same way:
printer attributes (read with Get-Printer-Attributes) and vendor operations in the range RFC
8011 section 5.4.15 reserves (0x4000-0x7FFF).
"""

from __future__ import annotations

# Standard operations (RFC 8011 section 5.4.15).
PRINT_JOB = 0x0002
VALIDATE_JOB = 0x0004
CANCEL_JOB = 0x0008
GET_JOB_ATTRIBUTES = 0x0009
GET_JOBS = 0x000A
GET_PRINTER_ATTRIBUTES = 0x000B

# Vendor operations of the module.
PRESENT_BOOK = 0x4001  # bind the leaves printed since the last present and offer them
RETRACT_BOOK = 0x4002  # pull a presented book back into the retain bin

# Vendor printer attributes.
FEEDER_OCR_SERIAL = "branchline-feeder-ocr-serial"  # text: the next leaf's serial as read
FEEDER_LEAVES = "branchline-feeder-leaves"  # integer: blank leaves in the cassette
PRESENTER_STATE = "branchline-presenter-state"  # keyword, PRESENTER_STATES
PRESENTER_LEAVES = "branchline-presenter-leaves"  # integer: leaves in the presented book
RETAINED_BOOKS = "branchline-retained-books"  # integer: books retracted since power-on

PRESENTER_STATES = ("empty", "presented", "taken", "retracted")

# printer-state (RFC 8011 section 5.4.11) and job-state (section 5.3.7) enums.
PRINTER_IDLE, PRINTER_PROCESSING, PRINTER_STOPPED = 3, 4, 5
JOB_PENDING, JOB_HELD, JOB_PROCESSING, JOB_STOPPED = 3, 4, 5, 6
JOB_CANCELED, JOB_ABORTED, JOB_COMPLETED = 7, 8, 9
JOB_STATE_NAMES = {
    3: "pending",
    4: "pending-held",
    5: "processing",
    6: "processing-stopped",
    7: "canceled",
    8: "aborted",
    9: "completed",
}

# Status codes (RFC 8011 section 6.4) the module answers with.
OK = 0x0000
CLIENT_ERROR_BAD_REQUEST = 0x0400
CLIENT_ERROR_NOT_FOUND = 0x0406
CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED = 0x040A
CLIENT_ERROR_NOT_POSSIBLE = 0x0404
SERVER_ERROR_OPERATION_NOT_SUPPORTED = 0x0501
SERVER_ERROR_NOT_ACCEPTING_JOBS = 0x0506
CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED = 0x040B

# The printer-state-reasons keywords (RFC 8011 section 5.4.12) that stop the module, and the
# stable error code the driver reports for each.
FAULT_REASONS = {
    "media-empty": "media_empty",
    "media-jam": "media_jam",
    "cover-open": "cover_open",
    "media-needed": "media_empty",
}
