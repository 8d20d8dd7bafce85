"""Branchline's pneumatic tube station: Modbus register map and carrier life cycle (no I/O)."""
