"""Password strength: zxcvbn (Dropbox's estimator, the Python port on PyPI).

zxcvbn ships its own frequency lists (common passwords, English words, names,
keyboard patterns) and estimates guesses; we refuse anything below score 3 ("safely
unguessable: moderate protection from offline slow-hash scenario"). No home-made
list: a maintained one is better than ours. The user's own username and name count
as known words, so "budi2026" is weak for budi.

Checked wherever a person chooses a password (``awasi users add/passwd``, the
self-service change); ``add_user`` itself only enforces the length, so scripted
seeds and tests keep working.
"""

from __future__ import annotations

from collections.abc import Iterable

from zxcvbn import zxcvbn

from awasi.identity.errors import WeakPassword

MIN_LENGTH = 10
MAX_LENGTH = 256
MIN_SCORE = 3
# zxcvbn's matching is superlinear in the length; a longer tail adds nothing to
# the estimate of a passphrase that is already strong.
_SCORED_PREFIX = 100


def check_password(password: str, user_inputs: Iterable[str] = ()) -> None:
    """Return if ``password`` is acceptable; raise ``WeakPassword`` with a message a
    person can act on otherwise."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"password must have at most {MAX_LENGTH} characters")
    result = zxcvbn(password[:_SCORED_PREFIX],
                    user_inputs=[s for s in user_inputs if s][:10])
    if result["score"] < MIN_SCORE:
        feedback = result["feedback"]
        hints = " ".join(filter(None, [feedback.get("warning"),
                                       *feedback.get("suggestions", [])]))
        raise WeakPassword("password is too easy to guess"
                           + (f": {hints}" if hints else "")
                           + " (use a few uncommon words, for example)")
