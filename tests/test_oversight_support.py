"""Moved to tests/support/oversight.py. This re-export only keeps branches written
before the move importing; new code imports tests.support.oversight. Remove it once
they are merged."""

from tests.support.oversight import *  # noqa: F403
