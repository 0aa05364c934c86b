"""The deadline scheduler: fires due warnings, breaches and level-2 escalations.

Deadlines live in ``oversight.deadlines``, not in timers. Each sweep claims due
pending rows with ``FOR UPDATE SKIP LOCKED``: two oversight processes sweeping at
once take disjoint rows, and a row is marked ``fired`` in the same transaction that
writes its events to the outbox, so each step happens exactly once. A process that
was down simply finds the rows still pending when it comes back.

After claiming a row, the case row is locked with ``SKIP LOCKED`` too: if the
consumer holds the case (it may be about to cancel this very deadline), the row is
left for the next sweep instead of waiting, which also rules out a deadlock with the
consumer (which locks the case first and the deadlines second).

The same loop runs oversight's periodic jobs (``oversight.jobs``: the signed audit
checkpoint and the public statistics snapshot), each claimed with SKIP LOCKED when
due, so with several processes each run happens once and a restart misses none.
The scheduler works on the background pool: web requests cannot starve it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from aiohttp import web
from opentelemetry.context import Context
from prometheus_client import CollectorRegistry, Counter, Histogram

from awasi import lifecycle, tracing
from awasi.catalog import Catalog
from awasi.db.errors import is_transient
from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import (
    CaseArchived,
    CaseClosed,
    CaseEscalated,
    CaseInfoReminder,
    DeadlineBreached,
    DeadlineWarning,
    Payload,
)
from awasi.web import keys as web_keys
from awasi.web.app import background
from services.oversight import audit, keys, rollups, stats
from services.oversight.audit_key import SigningKey
from services.oversight.clock import Clock
from services.oversight.domain import (
    add_review_item,
    level2_at,
    next_seq,
    policy_of,
    save_case,
)

log = logging.getLogger(__name__)

PRODUCER = "oversight"


@dataclass
class SweepResult:
    fired: int = 0
    skipped: int = 0   # warnings whose deadline had already passed
    deferred: int = 0  # case busy: left for the next sweep

    def __iadd__(self, other: SweepResult) -> SweepResult:
        self.fired += other.fired
        self.skipped += other.skipped
        self.deferred += other.deferred
        return self


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.fired = Counter("awasi_oversight_deadline_steps_total",
                             "Deadline steps fired", ["step"], registry=registry)
        self.lateness = Histogram(
            "awasi_oversight_deadline_lateness_seconds",
            "How long after it fell due a deadline step was fired", registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30, 300, 3600),
        )


@dataclass(frozen=True)
class PeriodicJobs:
    signing_key: SigningKey
    checkpoint_interval: timedelta
    stats_refresh_s: float


class Scheduler:
    def __init__(self, pool: asyncpg.Pool, catalog: Catalog, clock: Clock, *,
                 batch_size: int = 200, metrics: SchedulerMetrics | None = None,
                 jobs: PeriodicJobs | None = None) -> None:
        self.pool = pool
        self.catalog = catalog
        self.clock = clock
        self.batch_size = batch_size
        self.metrics = metrics
        self.jobs = jobs

    async def run_jobs(self) -> None:
        """Run each periodic job that is due (a checkpoint, the statistics snapshot)."""
        if self.jobs is None:
            return
        async with self.pool.acquire() as conn:
            await audit.checkpoint_if_due(conn, self.jobs.signing_key, self.clock.now(),
                                          self.jobs.checkpoint_interval)
            await stats.refresh_if_due(conn, self.catalog, self.clock.now(),
                                       self.jobs.stats_refresh_s)

    async def sweep(self) -> SweepResult:
        """Fire every step due now; return what was done. Raises on database errors."""
        total = SweepResult()
        while True:
            result, claimed = await self._sweep_batch()
            total += result
            # Stop when the batch was short, or when nothing could be done in it
            # (every case busy): the rows wait for the next sweep.
            if claimed < self.batch_size or result.fired + result.skipped == 0:
                return total

    async def _sweep_batch(self) -> tuple[SweepResult, int]:
        result = SweepResult()
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, complaint_id, kind, step, agency, due_at, fire_at"
                " FROM oversight.deadlines WHERE status = 'pending' AND fire_at <= $1"
                " ORDER BY fire_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                now, self.batch_size,
            )
            for row in rows:
                case = await conn.fetchrow(
                    "SELECT * FROM oversight.cases WHERE complaint_id = $1"
                    " FOR UPDATE SKIP LOCKED", row["complaint_id"],
                )
                if case is None:
                    result.deferred += 1
                    continue
                fired_at = self.clock.now()
                # Each step a trace of its own (a breach comes days after the request
                # that began the complaint's trace); the events it writes carry it on.
                with tracing.span(f"deadline {row['step']}", {
                        "awasi.deadline.kind": row["kind"], "awasi.deadline.step": row["step"],
                        "awasi.agency": row["agency"] or ""}, context=Context()) as span:
                    fired = await self._fire(conn, row, case, fired_at)
                    span.set_attribute("awasi.deadline.fired", fired)
                if fired:
                    result.fired += 1
                    if self.metrics:
                        self.metrics.fired.labels(row["step"]).inc()
                        self.metrics.lateness.observe(
                            max(0.0, (fired_at - row["fire_at"]).total_seconds()))
                else:
                    result.skipped += 1
        return result, len(rows)

    async def _fire(self, conn: asyncpg.Connection, row: asyncpg.Record,
                    case: asyncpg.Record, now: datetime) -> bool:
        """Apply one due step; True if it produced events, False if it was moot."""
        cid = row["complaint_id"]
        events: list[Payload] = []
        status = "fired"
        if row["step"] in ("reminder", "archive"):
            # Only while the agency still waits for the answer (an answer cancels these).
            if case["status"] != "waiting_info":
                status = "skipped"
            elif row["step"] == "reminder":
                events.append(CaseInfoReminder(archive_at=row["due_at"]))
            else:
                policy = policy_of(self.catalog, case["region"], case["agency"],
                                   case["category"])
                events.append(CaseArchived(
                    revive_until=row["due_at"] + timedelta(days=policy.revive_days)))
        elif row["step"] == "close":
            # The dispute window passed with no dispute: the case is over, if the
            # lifecycle still allows it (a dispute cancels this row, but be sure).
            if (case["status"], "case.closed") in lifecycle.TRANSITIONS:
                events.append(CaseClosed(reason="dispute_window_passed"))
            else:
                status = "skipped"
        elif row["step"] == "warning":
            if row["due_at"] <= now:
                status = "skipped"  # the breach fires instead
            else:
                events.append(DeadlineWarning(kind=row["kind"], agency=row["agency"],
                                              due_at=row["due_at"]))
        elif row["step"] == "breach":
            events.append(DeadlineBreached(kind=row["kind"], agency=row["agency"],
                                           due_at=row["due_at"]))
            # Level 1: to the agency head and into the panel's review queue.
            events.append(CaseEscalated(level=1, kind=row["kind"], agency=row["agency"]))
            await add_review_item(
                conn, cid, "breach", f"deadline:{row['id']}",
                {"kind": row["kind"], "agency": row["agency"],
                 "due_at": row["due_at"].isoformat()}, now,
            )
            await conn.execute(
                "INSERT INTO oversight.deadlines"
                " (complaint_id, kind, step, agency, due_at, fire_at)"
                " VALUES ($1, $2, 'escalation2', $3, $4, $5)",
                cid, row["kind"], row["agency"], row["due_at"],
                level2_at(self.catalog, case, row["due_at"]),
            )
            # The statistics' rollups, in this transaction: the breach counts for
            # the deadline's agency, and a passed resolution deadline makes the
            # case due for the on-time share.
            await rollups.add_fact(conn, self.catalog, case, row["agency"], "breaches")
            if row["kind"] == "resolve" and row["due_at"] == case["resolve_by"]:
                await save_case(conn, self.catalog, case,
                                {**dict(case), "resolve_breached": True})
        else:
            events.append(CaseEscalated(level=2, kind=row["kind"], agency=row["agency"]))
            await rollups.add_fact(conn, self.catalog, case, row["agency"], "escalations2")
            # Level 2: the region's inspectorate (the router's desk) and the panel.
            await add_review_item(
                conn, cid, "escalation2", f"deadline:{row['id']}",
                {"kind": row["kind"], "agency": row["agency"],
                 "due_at": row["due_at"].isoformat()}, now)
        await conn.execute(
            "UPDATE oversight.deadlines SET status = $2, fired_at = $3 WHERE id = $1",
            row["id"], status, now,
        )
        if events:
            # Each event is oversight's own next fact about the complaint, except the
            # closing: it is stamped with the resolution it closes (the case's
            # status_seq), so a dispute of that resolution made in the window (a
            # newer seq) still wins wherever it arrives after the closing; likewise
            # the archiving, stamped with the pause it ends, yields to an answer.
            await add_to_outbox(conn, "oversight", topics.OVERSIGHT, *[
                Envelope.build(e, complaint_id=cid, producer=PRODUCER, occurred_at=now,
                               seq=case["status_seq"] if isinstance(e, CaseClosed | CaseArchived)
                               else await next_seq(conn, cid))
                for e in events
            ])
        return bool(events)

    async def run(self, interval_s: float) -> None:
        """Sweep every ``interval_s`` seconds until cancelled; survive database outages."""
        while True:
            try:
                await self.sweep()
                await self.run_jobs()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the loop must outlive an outage
                level = logging.WARNING if is_transient(e) else logging.ERROR
                log.log(level, "scheduler sweep failed", exc_info=e)
            await asyncio.sleep(interval_s)


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the scheduler loop for the app's lifetime (a cleanup_ctx generator)."""
    settings = app[web_keys.SETTINGS]
    scheduler = Scheduler(
        app[web_keys.BACKGROUND_POOL], app[keys.CATALOG], app[keys.CLOCK],
        metrics=SchedulerMetrics(app[web_keys.REGISTRY]),
        jobs=PeriodicJobs(app[keys.SIGNING_KEY],
                          timedelta(seconds=settings.audit_checkpoint_interval_s),
                          settings.stats_refresh_s))
    async def run() -> None:
        tracing.bind(app[web_keys.TRACER_PROVIDER])
        await scheduler.run(settings.scheduler_interval_s)

    async with background(run(), "oversight-scheduler", app):
        yield
