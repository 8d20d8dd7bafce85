"""The fleet: terminals and their devices as the TerminalLink reports them (the registry
in ``branchline.server.fleet_registry``), the Fleet API for operations, and the heartbeat
sweep that marks silent terminals offline."""
