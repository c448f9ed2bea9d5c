r"""Who said it: Ed25519 identities and signed envelopes, so nothing on the broker is trusted for arriving.

Every party signs what it sends (the machine its reports, the vendor and the school their commands,
the receivers their acks) with its own Ed25519 key, and every receiver checks the signature against
the public keys it was given out of band (trust anchors, an enrolment directory) before acting.

The envelope is a standard one, built by joserfc rather than by hand: a JWS (RFC 7515) in the
flattened JSON serialisation, algorithm ``Ed25519`` (RFC 9864; OKP keys per RFC 8037), with the
unencoded-payload option (RFC 7797, ``b64: false``) so the payload stays readable JSON on the wire::

    {"protected": "<base64url header>", "payload": "{\\"seq\\":1,...}", "signature": "<base64url>"}

The header's ``kid`` is the key's RFC 7638 thumbprint; it selects the key, and the key says which
party signed. Ed25519 is deterministic, so a resent report is byte-for-byte the same message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from joserfc.jws import FlattenedJSONSerialization

from firmware.errors import VendingError
from firmware.files import KEY_FILE_BYTES, read_capped
from firmware.identity.secretfile import write_public, write_secret

log = logging.getLogger(__name__)
ALGORITHMS = ("Ed25519",)
ENVELOPE_KEYS = frozenset({"protected", "payload", "signature"})
MAX_HEADER_CHARS = 512  # {"alg","b64","crit","kid"} is about 150 base64url characters


class SignatureError(VendingError):
    """A message whose signature is missing, malformed, by an unknown key or simply wrong."""


class KeyFileError(VendingError):
    """A key file that is missing or is not an Ed25519 key."""


def _import(path: Path, private: bool) -> OKPKey:
    try:
        key = OKPKey.import_key(read_capped(path, KEY_FILE_BYTES))
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file (create keys with `vending keys ...`)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file: {(exc.strerror or str(exc)).lower()}") from None
    except (JoseError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an Ed25519 key in PEM ({exc.__class__.__name__})") from None
    if key.curve_name != "Ed25519":
        raise KeyFileError(f"{path}: an {key.curve_name} key, expected Ed25519")
    if private and not key.is_private:
        raise KeyFileError(f"{path}: a public key, expected the private signing key")
    return key


@dataclass(frozen=True)
class PublicKey:
    """Someone else's verification key, with the party it speaks for."""

    party: str
    key: OKPKey = field(repr=False)

    @cached_property
    def kid(self) -> str:
        return self.key.thumbprint()

    @classmethod
    def load(cls, party: str, path: Path) -> PublicKey:
        return cls(party, _import(path, private=False))

    def pem(self) -> bytes:
        return self.key.as_pem(private=False)


@dataclass(frozen=True)
class Identity:
    """The signing key of this process. Never logged, never sent; only its signatures leave."""

    party: str
    key: OKPKey = field(repr=False)
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kid", self.key.thumbprint())

    @classmethod
    def generate(cls, party: str) -> Identity:
        return cls(party, OKPKey.generate_key("Ed25519"))

    @classmethod
    def load(cls, party: str, path: Path) -> Identity:
        return cls(party, _import(path, private=True))

    def save(self, path: Path, *, force: bool = False) -> Path:
        """``path`` gets the private key (0600, never overwritten without ``force``), ``.pub`` beside it."""
        write_secret(path, self.key.as_pem(private=True), force=force)
        write_public(path.with_suffix(".pub"), self.public.pem())
        return path

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.party, OKPKey.import_key(self.key.as_dict(private=False)))

    def sign(self, payload: str) -> dict[str, str]:
        """The flattened JWS of ``payload`` (JSON text), signed with this key."""
        header = {"alg": ALGORITHMS[0], "b64": False, "crit": ["b64"], "kid": self.kid}
        signed = jws.serialize_json({"protected": header}, payload, self.key, algorithms=ALGORITHMS)
        return {"protected": str(signed["protected"]), "payload": payload, "signature": str(signed["signature"])}


@dataclass(frozen=True)
class Signed:
    """A verified message: who signed it, the payload bytes they signed, and the detached JWS."""

    signer: PublicKey
    payload: bytes
    detached: str  # "<protected>..<signature>" (RFC 7515 appendix F): with the payload, verifiable later


class TrustStore:
    """The public keys a receiver accepts, by kid. Anything signed by another key is refused."""

    def __init__(self, keys: Iterable[PublicKey] = ()) -> None:
        self._keys: dict[str, PublicKey] = {}
        for key in keys:
            self.add(key)

    def add(self, key: PublicKey) -> None:
        self._keys[key.kid] = key

    def parties(self) -> Mapping[str, str]:
        return {kid: key.party for kid, key in self._keys.items()}

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def verify(self, envelope: Mapping[str, Any], parties: Iterable[str] | None = None) -> Signed:
        """Check shape, key and signature; ``parties`` limits whose signature counts here."""
        if set(envelope) != ENVELOPE_KEYS or not all(isinstance(envelope[k], str) for k in ENVELOPE_KEYS):
            raise SignatureError('not a signed message: expected a JWS {"protected", "payload", "signature"}')
        if len(envelope["protected"]) > MAX_HEADER_CHARS:
            raise SignatureError("the JWS header is too long")
        allowed = set(parties) if parties is not None else None
        found: list[PublicKey] = []

        def resolve(guest: Any) -> OKPKey:
            kid = guest.headers().get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise SignatureError("signed by a key this receiver does not know")
            if allowed is not None and key.party not in allowed:
                raise SignatureError(f"signed by the {key.party}, who has no say here (needs: {', '.join(allowed)})")
            found.append(key)
            return key.key

        try:
            flattened = cast(FlattenedJSONSerialization, dict(envelope))
            verified = jws.deserialize_json(flattened, resolve, algorithms=ALGORITHMS)
        except SignatureError:
            raise
        except (JoseError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SignatureError(f"bad signature ({exc.__class__.__name__})") from None
        payload = verified.payload
        text = payload if isinstance(payload, bytes) else str(payload).encode()
        return Signed(found[-1], text, f"{envelope['protected']}..{envelope['signature']}")


def load_public_keys(directory: Path, party_of: Mapping[str, str]) -> TrustStore:
    """A trust store from ``<name>.pub`` files: ``party_of`` maps file stem -> party."""
    return TrustStore(PublicKey.load(party, directory / f"{stem}.pub") for stem, party in party_of.items())
