"""Crash points for failure tests.

``AWASI_FAULTS=relay.after_publish`` makes the process SIGKILL itself the first time
it reaches that point; ``name:N`` at the N-th time. The kill is real: the tests use it
to stop a process at an exact instant (after a publish, before marking the rows
sent), which a kill from outside can only hit by luck. Unset, a point costs one dict
lookup.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _armed() -> dict[str, int]:
    spec = os.environ.get("AWASI_FAULTS", "")
    armed: dict[str, int] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, nth = item.partition(":")
        armed[name] = int(nth or "1")
    return armed


def point(name: str) -> None:
    """SIGKILL this process if the fault ``name`` is armed and due."""
    armed = _armed()
    if name not in armed:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
