"""Thales payShield host-command codec: framing (``wire``), command layouts (``messages``)
and error codes (``errorcodes``). The server's client (``branchline.server.hsm.payshield``)
and the simulator's emulation (``branchline.sim.hsm``) both speak through it."""
