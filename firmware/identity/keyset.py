"""Where each party's keys live, and what each process trusts.

One directory layout for every deployment size (``vending keys dev-set`` writes all of it on a laptop;
a school deployment gives each party only its own files)::

    vendor.key   vendor.pub        Ed25519: signs stock, price and slot commands, and vendor acks
    school.key   school.pub        Ed25519: signs lunch lockouts and food-rule commands, guardian controls
    controls.key                   the school's, shared with its machines: names cards in and seals its controls
    school-seal.key school-seal.pub  X25519: machines seal guardian alerts to it; only the school opens them
    issuer.key   issuer.pub        Ed25519: signs issuer acks
    issuer-seal.key issuer-seal.pub  X25519: machines seal settlements to it; only the issuer opens them
    machines/<id>.key              Ed25519: the machine's own key (copied into its state dir as machine.key)
    machines/<id>.pub              the enrolment directory: the machines a backend accepts

Private halves are 0600 from the first byte and never overwritten without ``force``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey

from firmware.domain import MACHINE_ID, MACHINE_ID_RULE
from firmware.errors import VendingError
from firmware.files import KEY_FILE_BYTES, read_capped
from firmware.identity.secretfile import private_dir, write_public, write_secret
from firmware.identity.signing import Identity, KeyFileError, PublicKey, SignatureError, Signed, TrustStore

AUTHORITIES = ("vendor", "school", "issuer")
SEAL = "issuer-seal"
SCHOOL_SEAL = "school-seal"  # the school's X25519 pair: machines seal guardian alerts to it
HOTLIST = "hotlist"  # the issuer's lost-card list key, shared with its machines: names cards, seals the list
CONTROLS = "controls"  # the school's guardian-controls key, shared with its machines: names cards, seals the push
CARD_MASTER = "card-master"  # the issuer's card master key: every card's sector keys are diversified from it
CARD_MASTER_BYTES = 32
MACHINE_KEY_FILE = "machine.key"


def machine_party(machine: str) -> str:
    return f"machine:{machine}"


def write_seal_pair(directory: Path, name: str = SEAL, *, force: bool = False) -> Path:
    """An X25519 pair to seal to: ``<name>.key`` (0600) and ``<name>.pub`` (hex); the issuer's, the school's."""
    key = PrivateKey.generate()
    path = write_secret(directory / f"{name}.key", bytes(key).hex().encode() + b"\n", force=force)
    write_public(directory / f"{name}.pub", (bytes(key.public_key).hex() + "\n").encode())
    return path


def read_seal_key(path: Path) -> bytes:
    """A 32-byte X25519 key written by ``write_seal_pair`` (either half)."""
    try:
        raw = bytes.fromhex(read_capped(path, KEY_FILE_BYTES).decode().strip())
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file (create it with `vending keys party issuer`)") from None
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise KeyFileError(f"{path}: expected a 32-byte X25519 key in hex")
    return raw


def write_party(directory: Path, party: str, *, force: bool = False) -> list[Path]:
    """One authority's signing key (and, for the issuer, its sealing pair)."""
    if party not in AUTHORITIES:
        raise VendingError(f"party {party!r}: expected one of {', '.join(AUTHORITIES)}")
    private_dir(directory)
    written = [Identity.generate(party).save(directory / f"{party}.key", force=force)]
    if party == "school":
        written.append(write_secret(directory / f"{CONTROLS}.key", secrets.token_bytes(32).hex().encode(), force=force))
        written.append(write_seal_pair(directory, SCHOOL_SEAL, force=force))
    if party == "issuer":
        written.append(write_seal_pair(directory, SEAL, force=force))
        master = secrets.token_bytes(CARD_MASTER_BYTES).hex().encode()
        written.append(write_secret(directory / f"{CARD_MASTER}.key", master, force=force))
        hotlist = secrets.token_bytes(CARD_MASTER_BYTES).hex().encode()
        written.append(write_secret(directory / f"{HOTLIST}.key", hotlist, force=force))
    return written


def read_shared_key(directory: Path, name: str) -> bytes | None:
    """A key an authority shares with its machines (``hotlist``, ``controls``); None where the directory has none."""
    path = directory / f"{name}.key"
    if not path.exists():
        return None
    try:
        key = bytes.fromhex(read_capped(path, KEY_FILE_BYTES).decode().strip())
    except ValueError:
        raise VendingError(f"{path}: not a hex key") from None
    if len(key) != CARD_MASTER_BYTES:
        raise VendingError(f"{path}: a {name} key is {CARD_MASTER_BYTES} bytes, not {len(key)}")
    return key


def read_card_master(directory: Path) -> bytes:
    """The issuer's card master key from ``directory/card-master.key`` (the secure access module's secret)."""
    path = directory / f"{CARD_MASTER}.key"
    try:
        key = bytes.fromhex(read_capped(path, KEY_FILE_BYTES).decode().strip())
    except FileNotFoundError:
        raise VendingError(f"{path}: no card master key (`vending keys dev-set` writes one)") from None
    except ValueError:
        raise VendingError(f"{path}: not a hex key") from None
    if len(key) != CARD_MASTER_BYTES:
        raise VendingError(f"{path}: a card master key is {CARD_MASTER_BYTES} bytes, not {len(key)}")
    return key


def write_machine(directory: Path, machine: str, *, force: bool = False) -> Path:
    """A machine's key pair in ``directory/machines``: the ``.pub`` is its enrolment at the backends."""
    if not MACHINE_ID.fullmatch(machine):
        raise VendingError(f"machine id {machine!r}: {MACHINE_ID_RULE}")
    return Identity.generate(machine_party(machine)).save(
        private_dir(directory / "machines") / f"{machine}.key", force=force
    )


def write_dev_set(directory: Path, machines: Iterable[str], *, force: bool = False) -> list[Path]:
    """Every party's keys for one laptop: three authorities, the issuer's sealing pair, the machines.

    ``machines/`` is made even with no machine yet: it is the backends' enrolment directory, which
    they require, and `vending keys machine --enrol` adds to it while they run.
    """
    written = [path for party in AUTHORITIES for path in write_party(directory, party, force=force)]
    private_dir(directory / "machines")
    return written + [write_machine(directory, machine, force=force) for machine in machines]


@dataclass(frozen=True)
class MachineTrust:
    """What a machine trusts: the authorities' public keys, and the key it seals settlements to."""

    authorities: TrustStore
    issuer_seal: bytes
    hotlist_key: bytes | None = None  # the issuer's lost-card list key, where the machine checks one
    controls_key: bytes | None = None  # the school's guardian-controls key, where the machine takes its pushes
    school_seal: bytes | None = None  # the school's X25519 public key: guardian alerts are sealed to it

    @classmethod
    def load(cls, vendor: Path, school: Path, issuer: Path, issuer_seal: Path) -> MachineTrust:
        anchors = zip(AUTHORITIES, (vendor, school, issuer), strict=True)
        store = TrustStore(PublicKey.load(party, path) for party, path in anchors)
        # the keys an authority shares with its machines lie beside its public key
        shared = (read_shared_key(issuer.parent, HOTLIST), read_shared_key(school.parent, CONTROLS))
        school_seal = school.parent / f"{SCHOOL_SEAL}.pub"
        alerts_to = read_seal_key(school_seal) if school_seal.exists() else None  # guardian alerts
        return cls(store, read_seal_key(issuer_seal), *shared, alerts_to)

    @classmethod
    def from_dir(cls, directory: Path) -> MachineTrust:
        """The ``.pub`` files (and shared keys) of a key directory laid out as above."""
        return cls.load(*[directory / f"{name}.pub" for name in (*AUTHORITIES, SEAL)])


def machine_identity(path: Path, machine: str) -> Identity:
    return Identity.load(machine_party(machine), path)


class Enrolment:
    """The machines a backend accepts: ``<id>.pub`` files in a directory, read again when an id is new.

    A machine enrolled while the backend runs is accepted at its first report; a machine whose file is
    removed stays known until the backend restarts (revocation is a restart, see docs/security.md).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._keys: dict[str, PublicKey] = {}

    def key(self, machine: str) -> PublicKey:
        known = self._keys.get(machine)
        if known is not None:
            return known
        if not MACHINE_ID.fullmatch(machine):
            raise SignatureError("not an enrolled machine (malformed id)")
        try:
            found = PublicKey.load(machine_party(machine), self.directory / f"{machine}.pub")
        except KeyFileError:
            raise SignatureError(f"machine {machine} is not enrolled") from None
        self._keys[machine] = found
        return found

    def verify(self, machine: str, envelope: Mapping[str, Any]) -> Signed:
        """The payload, if ``machine``'s own enrolled key signed it."""
        return TrustStore([self.key(machine)]).verify(envelope)
