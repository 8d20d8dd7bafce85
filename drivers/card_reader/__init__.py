"""Creator CRT-591-style motorised card reader: pure protocol codecs (no I/O).

``frames`` is the serial framing, ``commands`` the command and error tables, ``apdu`` and
``emv_tlv`` the chip-card layer carried inside APDU-exchange commands, ``tracks`` the
magnetic-stripe track formats.
"""
