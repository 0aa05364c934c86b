"""Chaos: thousands of complaints (the JSON API and the Telegram bot) while intake,
router and oversight are SIGKILLed at random moments and the broker is stopped and
started; afterwards every accepted complaint is in intake once, routed exactly once,
on the oversight timeline once per event in its topic's order, routed to the agency its
rule names (one routing decision per complaint on the router topic), with the audit
chain intact.
A longer run: `bench/chaos.py`."""

from __future__ import annotations

import os

import pytest

from awasi.embedded import EmbeddedBroker
from tests.support.chaos import run_chaos

# A hang guard, not a speed claim: 5,100 complaints, kills and broker restarts take
# two to four minutes on an idle two-core machine and more on a loaded one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

COMPLAINTS = int(os.environ.get("AWASI_CHAOS_COMPLAINTS", "5000"))
BOT_COMPLAINTS = 100


async def test_nothing_lost_or_duplicated_under_chaos(database_url: str,
                                                      broker: EmbeddedBroker) -> None:
    report = await run_chaos(database_url, broker, complaints=COMPLAINTS,
                             bot_complaints=BOT_COMPLAINTS)
    print("\n" + "\n".join(report.lines()))
    assert report.submitted == COMPLAINTS + BOT_COMPLAINTS
    assert report.accepted == COMPLAINTS + BOT_COMPLAINTS, (
        "a careful client (API) and a patient citizen (bot) get every complaint accepted")
    assert report.bot_accepted == BOT_COMPLAINTS
    assert sum(report.kills.values()) >= 3 and report.broker_restarts >= 1
