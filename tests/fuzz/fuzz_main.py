"""Coverage-guided fuzzing with atheris (libFuzzer) over the same targets as the hypothesis tests.

    python tests/fuzz/fuzz_main.py TARGET [libFuzzer flags] tests/fuzz/corpus/TARGET
TARGET: machine | catalog | scenario | command | framers | wire. `make fuzz` runs each for 1,000,000 inputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import atheris  # noqa: E402

with atheris.instrument_imports():
    import firmware.app.command_set  # noqa: E402,F401
    import firmware.app.commands  # noqa: E402,F401
    import firmware.config.source  # noqa: E402,F401
    import firmware.readers.pn532_frames  # noqa: E402,F401
    import firmware.reporting.wire  # noqa: E402,F401
    from tests.fuzz import targets  # noqa: E402

COMMANDS = [*firmware.app.command_set.COMMANDS, "bogus"]


def one_input(target: str):
    def run(data: bytes) -> None:
        if target == "command":
            if not data:
                return
            targets.fuzz_command(COMMANDS[data[0] % len(COMMANDS)], data[1:])
        else:
            getattr(targets, f"fuzz_{target}")(data)

    return run


if __name__ == "__main__":
    target = sys.argv.pop(1)
    atheris.Setup(sys.argv, one_input(target))
    atheris.Fuzz()
