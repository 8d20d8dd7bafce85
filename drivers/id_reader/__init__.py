"""China resident ID-card reader (GA 467 SAM_V): pure protocol codecs (no I/O).

``frames`` is the serial framing and the SW3 result table, ``identity`` the card's text
block, the ID number check character and card validation.
"""
