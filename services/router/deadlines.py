"""Deadline arithmetic for tickets, on the region's working-day calendar and the
catalog's policy (national defaults unless the catalog overrides them).

Every function takes the instant it counts from; nothing reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from awasi import lifecycle
from awasi.catalog import Catalog, Policy
from awasi.events.payloads import Deadlines


@dataclass(frozen=True, slots=True)
class Assigned:
    """Deadlines of a ticket an agency has just received."""

    acknowledge_by: datetime
    resolve_by: datetime
    policy: Policy

    def payload(self) -> Deadlines:
        return Deadlines(acknowledge_by=self.acknowledge_by, resolve_by=self.resolve_by)


def _category(catalog: Catalog, category: str) -> str | None:
    # An unknown category still gets a policy (the catalog's default class).
    return category if category in catalog.categories else None


def assigned(catalog: Catalog, region: str, agency: str, category: str,
             start: datetime) -> Assigned:
    """Deadlines when ``agency`` receives a ticket at ``start``: acknowledge within the
    policy's working days, resolve within the category class's working days, both
    counted from ``start`` (the submission for a rule's routing; the hand-over for a
    triage decision, a transfer or a reopening). Raises ``UnknownCode``."""
    policy = catalog.policy(region, agency, _category(catalog, category))
    cal = catalog.region(region).calendar
    # A light matter is resolved within 2 working days, sooner than the 5 days to
    # acknowledge: the acknowledgement is never due after the resolution.
    acknowledge_days = min(policy.acknowledge_days, policy.resolve_days)
    return Assigned(
        acknowledge_by=cal.add_working_days(start, acknowledge_days),
        resolve_by=cal.add_working_days(start, policy.resolve_days),
        policy=policy,
    )


def triage_by(catalog: Catalog, region: str, category: str, start: datetime) -> datetime:
    """When a ticket no rule routed must have left the region's triage queue."""
    policy = catalog.policy(region, None, _category(catalog, category))
    return catalog.region(region).calendar.add_working_days(start, policy.triage_days)


def dispute_until(catalog: Catalog, region: str, agency: str, category: str,
                  resolved_at: datetime) -> datetime:
    """Until when the citizen may dispute a resolution made at ``resolved_at``."""
    policy = catalog.policy(region, agency, _category(catalog, category))
    return catalog.region(region).calendar.add_working_days(resolved_at, policy.dispute_days)


def resumed(catalog: Catalog, region: str, paused_at: datetime, resumed_at: datetime,
            due: datetime | None) -> datetime | None:
    """A deadline after a pause: the working time left at the pause, counted again
    from the resume (``None`` stays ``None``)."""
    if due is None:
        return None
    return catalog.region(region).calendar.resume(paused_at, resumed_at, due)


def next_due(status: str, triage: datetime | None, acknowledge: datetime | None,
             resolve: datetime | None, acknowledged: bool) -> datetime | None:
    """The deadline that runs next for a ticket in ``status`` (None when paused or
    done): the earliest of the clocks the lifecycle runs in that status."""
    running = lifecycle.running_clocks(status)
    candidates = [d for kind, d in (("triage", triage),
                                    ("acknowledge", None if acknowledged else acknowledge),
                                    ("resolve", resolve))
                  if d is not None and kind in running]
    return min(candidates) if candidates else None
