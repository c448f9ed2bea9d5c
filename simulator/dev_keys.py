"""Every party's keys for a virtual run, made on purpose in the run's work dir (``vending keys dev-set`` layout).

Virtual runs (scenarios, the demo, the fleet, the crash and soak harnesses, tests) sign and verify
with real keys through the same code as a deployment; only where the keys come from differs. A
machine's key is made the first time the run attaches that machine, and its ``.pub`` lands in the
enrolment directory the backends read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from firmware.identity.keyset import (
    SCHOOL_SEAL,
    SEAL,
    Enrolment,
    MachineTrust,
    machine_identity,
    read_seal_key,
    write_dev_set,
    write_machine,
)
from firmware.identity.signing import Identity


@dataclass
class DevKeys:
    """The keys in ``directory``, created when it holds none yet."""

    directory: Path
    _machines: dict[str, Identity] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not (self.directory / "vendor.key").exists():
            write_dev_set(self.directory, ())
        self.vendor = Identity.load("vendor", self.directory / "vendor.key")
        self.school = Identity.load("school", self.directory / "school.key")
        self.issuer = Identity.load("issuer", self.directory / "issuer.key")
        self.seal_private = read_seal_key(self.directory / f"{SEAL}.key")
        self.school_seal_private = read_seal_key(self.directory / f"{SCHOOL_SEAL}.key")
        self.trust = MachineTrust.from_dir(self.directory)
        self.enrolment = Enrolment(self.directory / "machines")

    @property
    def seal_public(self) -> bytes:
        return self.trust.issuer_seal

    def machine(self, machine_id: str) -> Identity:
        """The machine's identity, enrolled at the backends the first time it is asked for."""
        known = self._machines.get(machine_id)
        if known is None:
            path = self.directory / "machines" / f"{machine_id}.key"
            if not path.exists():
                write_machine(self.directory, machine_id)
            known = self._machines[machine_id] = machine_identity(path, machine_id)
        return known
