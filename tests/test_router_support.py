"""Moved to tests/support/router.py. This re-export only keeps branches written before
the move importing; new code imports tests.support.router. Remove it once they are
merged."""

from tests.support.router import *  # noqa: F403
from tests.support.router import router_settings  # noqa: F401 - a fixture, by name
