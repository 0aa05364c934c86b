"""Signed, expiring tokens shared by the services (itsdangerous, keyed by
``AWASI_SECRET_KEY``): photo links for staff, and the service-to-service request
with which the router asks intake for a named reporter's contact."""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class InvalidSignature(Exception):
    """The token was forged, altered, made for another purpose, or has expired."""


def _serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    # The purpose is the salt: a photo link cannot be replayed as a contact request.
    return URLSafeTimedSerializer(secret_key, salt=f"awasi.{purpose}")


def sign(secret_key: str, purpose: str, data: Any) -> str:
    return _serializer(secret_key, purpose).dumps(data)


def verify(secret_key: str, purpose: str, token: str, max_age_s: int) -> Any:
    """The signed data; raises ``InvalidSignature`` if forged, altered or older than
    ``max_age_s`` seconds."""
    try:
        return _serializer(secret_key, purpose).loads(token, max_age=max_age_s)
    except (SignatureExpired, BadSignature) as e:
        raise InvalidSignature(str(e)) from e
