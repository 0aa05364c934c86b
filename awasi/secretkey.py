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

import secrets
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
