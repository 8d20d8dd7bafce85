"""Face camera: the Branchline face-module command set (dual visible/IR kiosk modules, framed
over serial) and plain UVC cameras through V4L2. Codecs (``frames``, ``capture``, ``v4l2``)
hold no I/O; ``link`` and the drivers do.
"""
