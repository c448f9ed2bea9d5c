"""Virtual hardware implementing the firmware's ports, with fault hooks (jam, empty, door, power)."""

from simulator.hardware.virtual import (
    DoorSwitch,
    RecordingDisplay,
    VirtualClock,
    VirtualDispenser,
    VirtualKeypad,
    VirtualReader,
)

__all__ = ["DoorSwitch", "RecordingDisplay", "VirtualClock", "VirtualDispenser", "VirtualKeypad", "VirtualReader"]
