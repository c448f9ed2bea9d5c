"""Term keys for virtual runs: made on purpose, named after the run, valid for a year of virtual time.

A machine never creates its own term key; the simulator creates one for a state dir it sets up
(scenario, fleet machine, crash harness, soak, benchmark, a throw-away `vending serve`), so every
run still exercises the real key file, its validity check and its pseudonyms.
"""

from __future__ import annotations

import logging
import shutil
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


def share_term_key(school_dir: Path, state_dir: Path, first_day: date, label: str = "sim") -> None:
    """Give ``state_dir`` the term key the school keeps in ``school_dir`` (made on first use).

    One term, one key, however many days (state dirs) the term is simulated in.
    """
    simulation_term_key(school_dir, first_day, label)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copy2(key_path(school_dir), key_path(state_dir))
