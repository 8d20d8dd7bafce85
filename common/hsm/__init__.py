"""The HSM's engine and contract, shared by the server and the simulator.

``interface`` is the one HSM contract and ``errors`` its error classes; ``soft`` is the
in-process backend (keys in a keystore sealed by ``keystore``), which the server uses as its
``soft`` backend and the simulated payShield (``branchline.sim.hsm``) uses as its crypto;
``payshield`` holds the payShield host-command codec both ends of that wire speak. The
server's own part (``branchline.server.hsm``: ``open_hsm`` and the payShield client) builds on
this package; nothing here imports the server.
"""
