"""The simulated pneumatic tube: the line model, the station controller and Modbus RTU framing."""
