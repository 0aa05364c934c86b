"""The identity package's errors."""

from __future__ import annotations


class IdentityError(Exception):
    """Base of the identity errors."""


class InvalidCredentials(IdentityError):
    """Unknown user, wrong password or inactive account (deliberately indistinguishable)."""


class LoginThrottled(IdentityError):
    """Too many failed logins for this username or from this address; ``retry_after`` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


class UserExists(IdentityError):
    """A user with this username exists already."""


class InvalidUser(IdentityError):
    """The user's fields are not acceptable (role, agency, username)."""


class WeakPassword(InvalidUser):
    """The new password is too easy to guess (zxcvbn); ``message`` says why."""


class UnknownUser(IdentityError):
    """No user has this username."""
