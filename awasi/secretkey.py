"""The server's secret key (``AWASI_SECRET_KEY``): what ``awasi serve`` refuses.

The key signs CSRF tokens, reporter and photo links and service-to-service requests,
and derives the follow-up secret repeated to a retried anonymous submission. Anyone
who knows it can forge all of those. The built-in default and the placeholders of the
deployment templates are public (they are in this repository), so a service must never
run with one of them, nor with a key short enough to guess.

``PLACEHOLDERS`` is the one list of known public values; ``tests/test_security_secrets.py``
checks it against ``deploy/env.example`` and ``deploy/k8s/secret.example.yaml`` so the
templates and the list cannot drift apart.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from awasi.settings import Settings, SettingsError

VARIABLE = "AWASI_SECRET_KEY"
MIN_LENGTH = 32

# The built-in development default, then the deployment templates' placeholders.
DEV_DEFAULT = Settings().secret_key
PLACEHOLDERS: frozenset[str] = frozenset({
    DEV_DEFAULT,
    # deploy/env.example
    "change-me-to-64-random-hex-characters-0123456789abcdef0123456789",
    # deploy/k8s/secret.example.yaml
    "REPLACE-with-64-random-hex-characters",
})

HOW_TO = ("set it to a random value of at least {n} characters, e.g. "
          "python3 -c 'import secrets; print(secrets.token_hex(32))'")


def check_secret_key(value: str) -> None:
    """Raise ``SettingsError`` naming ``AWASI_SECRET_KEY`` if ``value`` is the built-in
    development key, a template placeholder, or shorter than ``MIN_LENGTH``."""
    how = HOW_TO.format(n=MIN_LENGTH)
    if value == DEV_DEFAULT:
        raise SettingsError(
            f"{VARIABLE} is not set (the built-in development key is public): {how}; "
            "`awasi dev` makes one for you")
    if value.strip() in PLACEHOLDERS:
        raise SettingsError(
            f"{VARIABLE} is still the placeholder from the deployment template "
            f"(deploy/env.example or deploy/k8s/secret.example.yaml): {how}")
    if len(value) < MIN_LENGTH:
        raise SettingsError(f"{VARIABLE} is too short ({len(value)} characters): {how}")


AUDIT_KEY_VARIABLE = "AWASI_AUDIT_SIGNING_KEY"
AUDIT_KEY_FILE = "audit-signing.key"


def check_audit_signing_key(value: str) -> None:
    """Raise ``SettingsError`` naming ``AWASI_AUDIT_SIGNING_KEY`` if it is unset or not
    the base64 of a 32-byte seed (the templates' placeholders are not).

    ``awasi serve oversight`` needs one key for the whole deployment: a key file made
    by each container on its first start would change the published public key with
    every new container, and replicas would sign with different keys."""
    how = ("make one with python3 -c 'import base64,os; "
           "print(base64.b64encode(os.urandom(32)).decode())' (`awasi dev` makes one)")
    if not value.strip():
        raise SettingsError(
            f"{AUDIT_KEY_VARIABLE} is not set: oversight signs the audit checkpoints "
            f"with it, the same key in every replica; {how}")
    try:
        seed = base64.b64decode(value.strip(), validate=True)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise SettingsError(
            f"{AUDIT_KEY_VARIABLE} is not the base64 of a 32-byte Ed25519 seed (is it "
            f"still the deployment template's placeholder?): {how}")


def kept_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in ``path``; if the file does not exist, ``make()`` is written
    there first (created exclusively, mode 0600, so two starts cannot both write)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(make() + "\n")
    return path.read_text().strip()


def dev_audit_signing_key(data_dir: Path) -> str:
    """The audit signing key ``awasi dev`` uses: an Ed25519 seed (base64) kept in
    ``data_dir/audit-signing.key``, so checkpoints stay verifiable across restarts."""
    return kept_secret(data_dir / AUDIT_KEY_FILE,
                       lambda: base64.b64encode(os.urandom(32)).decode())


def dev_secret_key(data_dir: Path) -> str:
    """The key ``awasi dev`` uses: made once with ``secrets.token_hex`` and kept in
    ``data_dir/secret_key`` (mode 0600), so links and sessions survive a restart."""
    path = data_dir / "secret_key"
    if path.exists():
        key = path.read_text().strip()
        if len(key) >= MIN_LENGTH:
            return key
    key = secrets.token_hex(32)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(key + "\n")
    return key
