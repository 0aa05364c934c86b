"""Topic names and their creation."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from awasi.events.kafka import client_config
from awasi.settings import Settings

log = logging.getLogger(__name__)

INTAKE = "awasi.intake.v1"
ROUTER = "awasi.router.v1"
OVERSIGHT = "awasi.oversight.v1"
# Oversight's signed audit checkpoints (``audit.checkpoint``), keyed by the nil UUID:
# a checkpoint is about no complaint, and no service consumes them; auditors do.
AUDIT = "awasi.audit.v1"
DEAD_LETTER = "awasi.deadletter.v1"
ALL = (INTAKE, ROUTER, OVERSIGHT, AUDIT, DEAD_LETTER)

TOPIC_OF_PRODUCER = {"intake": INTAKE, "router": ROUTER, "oversight": OVERSIGHT}


async def ensure_topics(settings: Settings, topics: tuple[str, ...] = ALL) -> None:
    """Create missing topics with the configured partitions and replication.

    Must run before any consumer asks for metadata: a broker that auto-creates
    topics would otherwise pick its own partition count.
    """
    admin = AIOKafkaAdminClient(**client_config(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return
        try:
            await admin.create_topics([
                NewTopic(t, settings.topic_partitions, settings.topic_replication)
                for t in missing
            ])
        except TopicAlreadyExistsError:
            pass  # another process won the race
        log.info("created topics", extra={"topics": missing})
    finally:
        await admin.close()
