"""The virtual world around the firmware: hardware, scenarios, emulators, backends, broker, CLI."""
