"""Term keys for virtual runs: made on purpose, named after the run, valid for a year of virtual time.

A machine never creates its own term key; the simulator creates one for a state dir it sets up
(scenario, fleet machine, crash harness, soak, benchmark, a throw-away `vending serve`), so every
run still exercises the real key file, its validity check and its pseudonyms.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

from firmware.identity.keys import key_path, write_key

log = logging.getLogger(__name__)
VALIDITY = timedelta(days=366)


def simulation_term_key(state_dir: Path, first_day: date, label: str = "sim") -> None:
    """Give ``state_dir`` a term key for a run starting on ``first_day``, unless it holds one already."""
    if key_path(state_dir).exists():
        return
    term = f"{label}-{first_day.isoformat()}"
    write_key(state_dir, term, first_day + VALIDITY)
    log.info("created term key %s (valid until %s) in %s", term, first_day + VALIDITY, state_dir)
