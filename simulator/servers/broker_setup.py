"""``vending broker setup``: a development CA, a certificate per party, and a Mosquitto config with ACLs.

Transport identity is the second fence after signatures: the broker only lets in clients with a
certificate from this CA, takes the certificate's common name as the user name
(``use_identity_as_username``), and the ACL file lets each party publish and read only its own
topics: a machine its own reports and its own commands and acks, the vendor the vendor stream
(never ``issuer/#``), the issuer only settlements and issuer acks, the school only lockout commands;
requests about one student (``school/v1/...``) go from the school to the party asked and back.

A machine's certificate carries its machine id as the common name and the machine rules are ACL
``pattern`` lines over ``%u``, so enrolling a machine is issuing one certificate (``enrol``): no
ACL edit and no broker reload, which is what a fleet of a thousand machines needs. The party names
are therefore reserved: no machine may be called ``vendor``, ``issuer``, ``school`` or ``insider``.
Keys are 0600 from the first byte and never overwritten without ``force``.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from firmware.app.command_set import commands_of
from firmware.domain import PARTY_BROKER_USERS, PARTY_TOOLS, machine_id_refusal
from firmware.errors import VendingError
from firmware.identity.secretfile import private_dir, write_secret
from firmware.reporting.batches import MAX_BATCH_BYTES
from firmware.reporting.mqtt import BrokerAddress
from simulator.backends.requests import MAX_ANSWER_BYTES
from simulator.safe_output import occupied, replace_file
from simulator.servers.retain_guard import build_retain_guard

VALIDITY = timedelta(days=365)
REPORT_KINDS = ("sale", "denial", "stock", "alert", "cmd-result", "summary", "status", "heartbeat", "batch")
PARTIES = ("vendor", "issuer", "school")
INSIDER = "insider"  # development only: may read and write every topic (captures, hostile-input tests)
# The broker takes every client's id from its certificate (use_username_as_clientid): one certificate is
# one connection. A party that runs several at once gets a certificate each, with the party's rights:
# its backend, a second backend instance sharing the load (vendor, issuer), and its people's tools
# (``TOOLS``: cmd send, the lost-card list, the guardians' controls, a student's requests), which
# connect while the backend runs and under the backend's certificate would throw it off the broker.
TOOLS: dict[str, str] = PARTY_TOOLS
IDENTITIES: dict[str, tuple[str, ...]] = {party: PARTY_BROKER_USERS[party] for party in PARTIES}
INSIDERS = PARTY_BROKER_USERS[INSIDER]  # a capture and attackers at once, in tests
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "campus-vending development CA")])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    server: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # key identifiers: Python 3.13's default TLS context verifies with X509_STRICT, which needs them
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    else:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    return builder.sign(signer, hashes.SHA256())


def acl_text(*, insider: bool = False) -> str:
    """Who may read and write what; Mosquitto denies everything not listed.

    ``pattern`` lines apply to every user with ``%u`` its certificate's common name: for a machine
    that is its id, so each machine gets its own topics and nobody else's.
    """
    # the vendor's tool may reach every command topic: the machine's gate refuses a command that is not the
    # vendor's and answers why (command_set.py); the school writes only its own commands' topics
    vendor = [f"topic read vending/v1/+/{kind}" for kind in REPORT_KINDS]
    vendor += ["topic write vending/v1/+/ack", "topic write vending/v1/+/cmd/+"]
    vendor += ["topic read school/v1/vendor/request", "topic write school/v1/vendor/answer"]
    school = [f"topic write vending/v1/+/cmd/{name}" for name in commands_of("school")]
    school += ["topic read vending/v1/+/cmd-result", "topic write school/v1/+/request", "topic read school/v1/+/answer"]
    school += ["topic write school/v1/+/controls"]
    school += ["topic read school/v1/+/guardian-alert", "topic read school/v1/+/batch", "topic write school/v1/+/ack"]
    issuer = ["topic read issuer/v1/+/settlement", "topic read issuer/v1/+/batch", "topic write issuer/v1/+/ack"]
    issuer += ["topic read issuer/v1/+/account", "topic read issuer/v1/+/auth", "topic write issuer/v1/+/auth-answer"]
    issuer += [
        "topic read issuer/v1/+/unresolved",
        "topic read issuer/v1/+/credit",
        "topic read issuer/v1/+/credit-given",
    ]
    issuer += ["topic write issuer/v1/credits"]
    issuer += ["topic write issuer/v1/hotlist", "topic write issuer/v1/hotlist/delta"]
    issuer += ["topic read school/v1/issuer/request", "topic write school/v1/issuer/answer"]
    rights = {"vendor": vendor, "school": school, "issuer": issuer}
    lines = ["# generated by `vending broker setup`; see docs/security.md"]
    for party, names in IDENTITIES.items():
        for name in names:
            lines += ["", f"user {name}", *rights[party]]
    if insider:
        lines += ["", "# development only (--insider): captures and hostile-input tests"]
        for name in INSIDERS:
            lines += [f"user {name}", "topic readwrite #"]
    lines += ["", "# every machine: CN = machine id"]
    lines += [f"pattern write vending/v1/%u/{kind}" for kind in REPORT_KINDS]
    lines += ["pattern write issuer/v1/%u/settlement", "pattern write issuer/v1/%u/batch"]
    lines += [
        "pattern write issuer/v1/%u/account",
        "pattern write issuer/v1/%u/auth",
        "pattern write issuer/v1/%u/unresolved",
        "pattern write issuer/v1/%u/credit",
        "pattern write issuer/v1/%u/credit-given",
    ]
    lines += ["pattern read issuer/v1/%u/auth-answer"]
    # the issuer's lost-card list: one sealed blob for every machine (firmware/reporting/hotlist.py)
    lines += [
        "pattern read issuer/v1/hotlist",
        "pattern read issuer/v1/hotlist/delta",
        "pattern read issuer/v1/credits",
    ]
    # a school's guardian controls: sealed with the key only that school's machines hold (controls.py)
    lines += ["pattern read school/v1/+/controls"]
    lines += ["pattern read vending/v1/%u/cmd/+"]
    lines += ["pattern read vending/v1/%u/ack", "pattern read issuer/v1/%u/ack"]
    # guardian alerts, sealed to the school (firmware/journal/alerts.py), and the school's acks
    lines += ["pattern write school/v1/%u/guardian-alert", "pattern write school/v1/%u/batch"]
    lines += ["pattern read school/v1/%u/ack"]
    return "\n".join(lines) + "\n"


# Broker limits (docs/security.md, "Broker limits"): the largest legitimate messages are a party's answer
# to a school request (MAX_ANSWER_BYTES) and a machine's batch (MAX_BATCH_BYTES); MQTT's fixed header
# and the topic add well under 1 KiB. A backend's queue while it is down: a school's fleet's batches.
MAX_PACKET_BYTES = max(MAX_ANSWER_BYTES, MAX_BATCH_BYTES) + 4 * 1024
MAX_QUEUED_MESSAGES = 10_000
MAX_QUEUED_BYTES = 64 * 1024 * 1024
AUTOSAVE_CHANGES = 1_000


def config_text(directory: Path, port: int) -> str:
    return (
        "# generated by `vending broker setup`: TLS with client certificates, identity = certificate CN, ACLs\n"
        "per_listener_settings false\n"
        f"listener {port} 127.0.0.1\n"
        f"cafile {directory / 'ca.crt'}\n"
        f"certfile {directory / 'broker.crt'}\n"
        f"keyfile {directory / 'broker.key'}\n"
        "require_certificate true\n"
        "use_identity_as_username true\n"
        # the client id is the certificate's name: no certificate can take another's session or connection
        "use_username_as_clientid true\n"
        "allow_anonymous false\n"
        f"acl_file {directory / 'acl'}\n"
        # asked before the ACL file: a retained message only on a machine's status and stock (retain_guard.c)
        f"plugin {directory / 'retain_guard.so'}\n"
        "persistence true\n"
        f"persistence_location {directory / 'data'}/\n"
        # save after this many changes, not every second: a flood cannot keep the disk writing
        "autosave_on_changes true\n"
        f"autosave_interval {AUTOSAVE_CHANGES}\n"
        # the largest legitimate message is a full batch: a bigger one closes its sender's connection unread
        f"max_packet_size {MAX_PACKET_BYTES}\n"
        # an offline persistent session (a backend that is down) holds at most this much; what is dropped
        # is still in the machines' outboxes and is sent again once the backend acks (exactly once)
        f"max_queued_messages {MAX_QUEUED_MESSAGES}\n"
        f"max_queued_bytes {MAX_QUEUED_BYTES}\n"
        # an authorisation and its answer are one small message each way: not held back by Nagle's algorithm
        "set_tcp_nodelay true\n"
        "log_dest stderr\n"
        "log_type error\n"
        "log_type warning\n"
    )


@dataclass(frozen=True)
class BrokerSetup:
    """A generated broker directory: ``address(party)`` is how that party connects."""

    directory: Path
    port: int

    def address(self, user: str) -> BrokerAddress:
        """``user``: vendor, issuer, school, insider (if generated), or an enrolled machine's id."""
        clients = self.directory / "clients"
        if not (clients / f"{user}.crt").exists():
            raise VendingError(f"{user!r} has no certificate in {clients} (`vending broker enrol` adds a machine)")
        return BrokerAddress(
            "127.0.0.1",
            self.port,
            tls=True,
            ca_file=str(self.directory / "ca.crt"),
            cert_file=str(clients / f"{user}.crt"),
            key_file=str(clients / f"{user}.key"),
        )

    @property
    def config(self) -> Path:
        return self.directory / "mosquitto.conf"

    def enrol(self, machine: str, *, force: bool = False) -> BrokerAddress:
        """A client certificate for ``machine`` (CN = its id), signed by this setup's CA."""
        check_machine_id(machine)
        if force or not (self.directory / "clients" / f"{machine}.crt").exists():
            _issue(self.directory / "clients", machine, _existing_ca(self.directory), server=False)
        return self.address(machine)


@dataclass(frozen=True)
class BrokerAccess:
    """How each party of a run reaches the broker: all through one address, or each with its own certificate.

    ``shared`` is an address with every right: the open broker's, or the insider account's on a
    generated setup (captures and attackers in tests).
    """

    shared: BrokerAddress
    setup: BrokerSetup | None = None

    def party(self, name: str) -> BrokerAddress:
        return self.setup.address(name) if self.setup else self.shared

    def machine(self, machine: str) -> BrokerAddress:
        return self.setup.enrol(machine) if self.setup else self.shared


def check_machine_id(machine: str) -> None:
    if (refusal := machine_id_refusal(machine)) is not None:
        raise VendingError(f"--machines: {machine!r}: {refusal}")


def _issue(where: Path, name: str, ca_key: ec.EllipticCurvePrivateKey, *, server: bool) -> None:
    """A key and its certificate, each written whole, the certificate last: a ``.crt`` there means its key is too.

    Called only where no certificate of ``name`` is there (or ``--force`` replaces them all), so a key
    found alone is one an interrupted run wrote and never certified: nobody holds a certificate for it,
    and it is replaced instead of blocking every later run ("exists already") until ``--force`` made a new CA.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(name, key, CA_NAME, ca_key, ca=False, server=server)
    write_secret(where / f"{name}.key", _key_pem(key), force=True)
    replace_file(where / f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))


def _existing_ca(directory: Path) -> ec.EllipticCurvePrivateKey:
    """The CA key of a setup written before; ``VendingError`` naming the file if it is no EC key."""
    path = directory / "ca.key"
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        raise VendingError(f"{path}: not the setup's CA key ({exc}); `--force` writes a new setup") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise VendingError(f"{path}: not an EC key; `--force` writes a new setup")
    return key


def refuse_foreign_directory(directory: Path) -> None:
    """``VendingError`` unless ``directory`` is new, empty, or a broker setup written before (its CA key there).

    The setup writes its files into the directory and, run as root, hands the directory to the mosquitto
    user: given a home directory or /etc by a slip, it would have written into it and changed its owner.
    """
    why = occupied(directory)
    if why == "not a directory":
        raise VendingError(f"--dir {directory}: not a directory; nothing written")
    if why == "holds files" and not (directory / "ca.key").is_file():
        raise VendingError(
            f"--dir {directory}: holds files, and no broker setup (no ca.key): give a new or empty directory; "
            "nothing written"
        )


def write_broker_setup(
    directory: Path, machines: list[str], port: int = 8883, *, force: bool = False, insider: bool = False
) -> BrokerSetup:
    """The CA, the broker's and every party's certificates, mosquitto.conf and the ACL file.

    On a directory written before (its ``ca.key`` there) and without ``force``, the CA and every
    certificate in it stay as they are: only the certificates it lacks are issued under its CA (a party
    identity added since, such as a tool's), and the ACL and config are written again. ``force``
    replaces everything, the CA with it (every machine must then be enrolled again). A new setup that
    fails half-way is taken away whole (the directory it made, or what it put in an empty one), and every
    file is written whole, so no run leaves a torn certificate, ACL or config.

    ``insider`` adds an account that may read and write everything: development captures and the
    hostile-input tests (an attacker with valid transport credentials); never for a deployment.
    """
    for machine in machines:
        check_machine_id(machine)
    refuse_foreign_directory(directory)
    new = not (directory / "ca.key").is_file()  # refuse_foreign_directory: then it is not there, or empty
    existed = directory.is_dir()
    try:
        setup = _write_setup(directory, machines, port, force=force, insider=insider)
    except BaseException:
        if new:  # all in it is this run's: a failed run (a full disk, no compiler) leaves nothing to refuse next time
            for made in directory.iterdir() if existed else (directory,):
                if made.is_dir() and not made.is_symlink():
                    shutil.rmtree(made, ignore_errors=True)
                else:
                    made.unlink(missing_ok=True)
        raise
    _readable_by_broker(directory)
    return setup


def _write_setup(directory: Path, machines: list[str], port: int, *, force: bool, insider: bool) -> BrokerSetup:
    private_dir(directory)
    private_dir(directory / "clients")
    build_retain_guard(directory)
    completing = (directory / "ca.key").exists() and not force
    if completing:
        ca_key = _existing_ca(directory)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _certificate("campus-vending development CA", ca_key, CA_NAME, ca_key, ca=True, server=False)
        write_secret(directory / "ca.key", _key_pem(ca_key), force=force)
        replace_file(directory / "ca.crt", ca_cert.public_bytes(serialization.Encoding.PEM))
    if not (completing and (directory / "broker.crt").exists()):
        _issue(directory, "broker", ca_key, server=True)
    parties = [name for names in IDENTITIES.values() for name in names]
    for name in (*parties, *INSIDERS) if insider else parties:
        if not (completing and (directory / "clients" / f"{name}.crt").exists()):
            _issue(directory / "clients", name, ca_key, server=False)
    setup = BrokerSetup(directory, port)
    for machine in machines:
        setup.enrol(machine, force=force)
    replace_file(directory / "acl", acl_text(insider=insider).encode())  # whole: the broker never reads half its rules
    (directory / "data").mkdir(exist_ok=True)
    replace_file(directory / "mosquitto.conf", config_text(directory.resolve(), port).encode())
    return setup


def _readable_by_broker(directory: Path) -> None:
    """Run as root, Mosquitto drops to its own user: hand it its key, the ACL and its data dir."""
    if os.geteuid() != 0:
        return
    try:
        import pwd

        pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in (directory, directory / "broker.key", directory / "data", directory / "acl"):
        shutil.chown(path, user="mosquitto")
