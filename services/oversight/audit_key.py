"""Oversight's audit signing key (Ed25519, through the ``cryptography`` library).

The key is the 32-byte Ed25519 seed, written as base64: ``AWASI_AUDIT_SIGNING_KEY``.
``awasi serve oversight`` refuses to start without it (awasi/secretkey.py); ``awasi
dev`` keeps one in its data folder, and the CLI commands run beside it fall back to
that key file ``<AWASI_DATA_DIR>/audit-signing.key``.
The key id is the first 16 hex digits of SHA-256 over the raw public key: a
checkpoint names the key that signed it, so rotating the key (a new seed) leaves old
checkpoints verifiable with the old public key, which stays published.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from awasi.secretkey import AUDIT_KEY_FILE, kept_secret
from awasi.settings import Settings, SettingsError

log = logging.getLogger(__name__)

ALGORITHM = "Ed25519"
KEY_FILE = AUDIT_KEY_FILE


def key_id_of(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public_raw: bytes

    @classmethod
    def from_seed_b64(cls, text: str) -> SigningKey:
        """Raise ``SettingsError`` unless ``text`` is base64 of exactly 32 bytes."""
        try:
            seed = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError) as e:
            raise SettingsError("AWASI_AUDIT_SIGNING_KEY must be base64 of a 32-byte"
                                " Ed25519 seed") from e
        if len(seed) != 32:
            raise SettingsError("AWASI_AUDIT_SIGNING_KEY must be base64 of a 32-byte"
                                f" Ed25519 seed, got {len(seed)} bytes")
        private = Ed25519PrivateKey.from_private_bytes(seed)
        public_raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(private, public_raw)

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_raw)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    def public_pem(self) -> str:
        return public_pem(self.public_raw)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode()


def public_pem(public_raw: bytes) -> str:
    return Ed25519PublicKey.from_public_bytes(public_raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode()


def signature_valid(public_b64: str, message: bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is an Ed25519 signature of ``message`` by the key;
    False (never an exception) for malformed input."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
        key.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def new_seed_b64() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def key_file_seed(path: Path) -> str:
    """The seed kept in ``path``, created (mode 0600) if the file does not exist."""
    if not path.exists():
        log.warning("creating a new audit signing key", extra={"path": str(path)})
    return kept_secret(path, new_seed_b64)


def load_signing_key(settings: Settings) -> SigningKey:
    """The key from ``AWASI_AUDIT_SIGNING_KEY``, else from the data folder's key file."""
    if settings.audit_signing_key:
        return SigningKey.from_seed_b64(settings.audit_signing_key)
    return SigningKey.from_seed_b64(key_file_seed(Path(settings.data_dir) / KEY_FILE))
