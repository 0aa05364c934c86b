"""The AsyncAPI 3.0 document of the event stream, generated from the models.

Channels are the topics (``awasi.events.topics``); every message is one registered
payload ``(type, version)`` wrapped in the envelope (``awasi.events.envelope``),
with its JSON Schema taken from the pydantic models, so the document follows a
model change by re-running ``awasi events schema``. ``docs/asyncapi.yaml`` is the
checked-in copy (tests/test_asyncapi.py fails when it drifts); each service serves
the part about the topics it writes at ``GET /asyncapi.yaml``.
"""

from __future__ import annotations

import copy
import functools
import uuid
from typing import Any

import yaml

from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.examples import EXAMPLES
from awasi.events.payloads import payload_model, registered_types

_REF = "#/components/schemas/{model}"

# Which topic each event type travels on. Explicit on purpose: a new event type
# makes ``build`` fail until someone says where it goes (and gives an example).
TOPIC_OF_TYPE: dict[str, str] = {
    **dict.fromkeys((
        "complaint.submitted", "complaint.info_added", "complaint.feedback_given",
        "complaint.withdrawn", "complaint.supported", "survey.response_submitted",
    ), topics.INTAKE),
    **dict.fromkeys((
        "complaint.routed", "complaint.needs_triage", "ticket.acknowledged",
        "ticket.info_requested", "ticket.responded", "ticket.resolved",
        "ticket.transferred", "ticket.reopened", "ticket.clock_resumed",
        "ticket.rejected", "ticket.returned_to_triage", "ticket.moved_region",
        "ticket.assignee_changed", "ticket.duplicate_linked", "ticket.attachment_added",
        "recommendation.answered",
    ), topics.ROUTER),
    **dict.fromkeys((
        "deadline.warning", "deadline.breached", "case.escalated", "finding.recorded",
        "case.reopened", "case.claimed", "case.closed", "case.info_reminder",
        "case.archived", "recommendation.issued",
    ), topics.OVERSIGHT),
    "audit.checkpoint": topics.AUDIT,
}
# Registered but never on a topic: ``report.published`` and the panel's own steps
# (proposals, confirmations, released claims) live on oversight's audit chain only;
# ``probe.ping`` is the backbone's self-test traffic.
OFF_TOPIC = frozenset({"report.published", "probe.ping", "finding.proposed",
                       "finding.confirmed", "case.claim_released"})

# The topics each service writes (every consumer may also dead-letter).
SERVICE_TOPICS: dict[str, tuple[str, ...]] = {
    "intake": (topics.INTAKE, topics.DEAD_LETTER),
    "router": (topics.ROUTER, topics.DEAD_LETTER),
    "oversight": (topics.OVERSIGHT, topics.AUDIT, topics.DEAD_LETTER),
}

_PRODUCER = {topics.INTAKE: "intake", topics.ROUTER: "router",
             topics.OVERSIGHT: "oversight", topics.AUDIT: "oversight"}

_TOPIC_TEXT = {
    topics.INTAKE: "What citizens did: complaints, additions, feedback, withdrawals, "
                   "support counts and satisfaction-survey answers. Written by intake.",
    topics.ROUTER: "What agencies did: routing, acknowledgement, questions, answers, "
                   "resolution, transfers, reopening, and answers to recommendations. "
                   "Written by the router.",
    topics.OVERSIGHT: "What the oversight panel and its clock did: deadline warnings and "
                      "breaches, escalations, findings, claims and recommendations. "
                      "Written by oversight.",
    topics.AUDIT: "Oversight's signed audit-chain checkpoints, for auditors; keyed by "
                  "the nil UUID (a checkpoint is about no complaint). No service "
                  "consumes them.",
    topics.DEAD_LETTER: "Events a consumer could never apply (invalid, unknown type, or a "
                        "handler that refused it), with the reason; for operators.",
}

# A key of one complaint's events: the complaint id (a UUID), or a prefixed id for
# events about something else (``rec:<id>``, a survey response's own id).
_KEY = {"type": "string", "minLength": 1, "maxLength": 64,
        "description": "The envelope's complaint_id: every event of one complaint goes "
                       "to one partition, in order."}


def _message_name(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


def _schema_name(event_type: str, version: int) -> str:
    return payload_model(event_type, version).__name__ + (f"V{version}" if version > 1 else "")


def _hoist(schema: dict[str, Any], into: dict[str, Any]) -> dict[str, Any]:
    """Move pydantic's ``$defs`` into ``components.schemas`` (refs point there)."""
    for name, sub in schema.pop("$defs", {}).items():
        into.setdefault(name, sub)
    return schema


def _example_key(event_type: str) -> str:
    if event_type == "audit.checkpoint":
        return str(uuid.UUID(int=0))
    if event_type.startswith("recommendation."):
        return f"rec:{EXAMPLES[event_type].recommendation_id}"  # type: ignore[attr-defined]
    return "3f6c2b1a-8d4e-4f5a-9b7c-1e2d3c4b5a69"


def build(service: str | None = None) -> dict[str, Any]:
    """The document as a dict: every topic, or only those ``service`` writes."""
    unmapped = [t for t, _ in registered_types() if t not in TOPIC_OF_TYPE and t not in OFF_TOPIC]
    if unmapped:
        raise ValueError(f"event types with no topic in awasi/events/asyncapi.py: {unmapped}")
    known = {t for t, _ in registered_types()}
    # A mapped type with no registered model would be written by a producer and
    # refused by every consumer (payload_model raises): catch it here, not in Kafka.
    unregistered = sorted(t for t in (*TOPIC_OF_TYPE, *OFF_TOPIC) if t not in known)
    if unregistered:
        raise ValueError(f"event types with no registered payload model: {unregistered}")
    wanted = SERVICE_TOPICS[service] if service else topics.ALL
    schemas: dict[str, Any] = {}
    envelope = _hoist(Envelope.model_json_schema(ref_template=_REF), schemas)
    schemas["Envelope"] = envelope
    schemas["DeadLetter"] = _DEAD_LETTER_SCHEMA
    messages: dict[str, Any] = {}
    channel_messages: dict[str, dict[str, Any]] = {t: {} for t in wanted}
    for event_type, version in registered_types():
        topic = TOPIC_OF_TYPE.get(event_type)
        if topic not in wanted:
            continue
        model = payload_model(event_type, version)
        name = _schema_name(event_type, version)
        schemas[name] = _hoist(model.model_json_schema(ref_template=_REF), schemas)
        if event_type not in EXAMPLES:
            raise ValueError(f"no example for {event_type} in awasi/events/examples.py")
        example = Envelope.build(
            EXAMPLES[event_type], complaint_id=_example_key(event_type),
            producer=_PRODUCER[topic], occurred_at=EXAMPLES_AT,
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"awasi:{event_type}:{version}"))
        msg = _message_name(event_type, version)
        messages[msg] = {
            "name": msg,
            "title": f"{event_type} v{version}",
            "summary": (model.__doc__ or f"The {event_type} event.").split("\n\n")[0]
                       .replace("\n", " ").strip(),
            "contentType": "application/json",
            "headers": _TRACE_HEADERS,
            "payload": {
                "allOf": [
                    {"$ref": _REF.format(model="Envelope")},
                    {"type": "object", "properties": {
                        "type": {"const": event_type},
                        "version": {"const": version},
                        "payload": {"$ref": _REF.format(model=name)},
                    }},
                ],
            },
            "bindings": {"kafka": {"key": _KEY, "bindingVersion": "0.5.0"}},
            "examples": [{"name": msg, "payload": example.model_dump(mode="json")}],
        }
        channel_messages[topic][msg] = {"$ref": f"#/components/messages/{msg}"}
    if topics.DEAD_LETTER in wanted:
        messages["deadletter"] = _DEAD_LETTER_MESSAGE
        channel_messages[topics.DEAD_LETTER]["deadletter"] = {
            "$ref": "#/components/messages/deadletter"}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in wanted:
        cid = topic.replace(".", "-")
        channels[cid] = {
            "address": topic,
            "title": topic,
            "description": _TOPIC_TEXT[topic],
            "messages": channel_messages[topic],
            "bindings": {"kafka": {"topic": topic, "bindingVersion": "0.5.0"}},
        }
        operations[f"receive-{cid}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"Read {topic}.",
            "messages": [{"$ref": f"#/channels/{cid}/messages/{m}"}
                         for m in channel_messages[topic]],
        }
    title = f"Awasi {service} events" if service else "Awasi events"
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": "1.0.0",
            "description": _DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "messages": messages,
        },
    }


EXAMPLES_AT = EXAMPLES["complaint.submitted"].submitted_at  # type: ignore[attr-defined]

_DESCRIPTION = """\
The event stream of Awasi (docs/DESIGN.md, "Events"). Every message value is one
JSON envelope (`Envelope`) whose `payload` matches the schema registered for its
`type` and `version`; the record key is the envelope's `complaint_id`, so one
complaint's events stay in order on one partition. A record may carry the W3C
`traceparent` (and `tracestate`) header: the complaint's trace, to continue.
Delivery is at least once:
consumers drop repeats by `event_id`. No payload carries a reporter's personal data
(`reporter_ref` is a pseudonym only intake resolves). A change old readers must not
ignore is a new `version`, registered beside the old one.

Generated by `awasi events schema` from awasi/events; do not edit by hand."""

# W3C Trace Context (awasi/tracing.py): the relay's span for the record, so a consumer
# continues the complaint's trace. Absent when the change was made outside any trace.
_TRACE_HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "traceparent": {
            "type": "string",
            "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
            "description": "W3C Trace Context `traceparent` of the span that published "
                           "the record (https://www.w3.org/TR/trace-context/); a "
                           "consumer's span is its child.",
        },
        "tracestate": {"type": "string",
                       "description": "W3C Trace Context `tracestate`, passed on as "
                                      "the caller sent it."},
    },
}

_DEAD_LETTER_SCHEMA: dict[str, Any] = {
    "title": "DeadLetter",
    "description": "A record a consumer gave up on, as it was read, with the reason.",
    "type": "object",
    "additionalProperties": False,
    "required": ["reason", "consumer", "source", "key", "value"],
    "properties": {
        "reason": {"type": "string"},
        "consumer": {"type": "string", "description": "The consumer's name."},
        "source": {
            "type": "object", "additionalProperties": False,
            "required": ["topic", "partition", "offset"],
            "properties": {"topic": {"type": "string"}, "partition": {"type": "integer"},
                           "offset": {"type": "integer"}},
        },
        "key": {"type": ["string", "null"]},
        "value": {"type": ["string", "null"],
                  "description": "The original value, decoded as UTF-8 (replacing "
                                 "invalid bytes)."},
    },
}

_DEAD_LETTER_MESSAGE: dict[str, Any] = {
    "name": "deadletter",
    "title": "Dead letter",
    "summary": "An event a consumer could never apply.",
    "contentType": "application/json",
    "headers": {
        "type": "object",
        "properties": {"reason": {"type": "string", "maxLength": 500,
                                  "description": "The reason, cut to 500 characters."}},
    },
    "payload": {"$ref": _REF.format(model="DeadLetter")},
    "bindings": {"kafka": {"key": {"type": ["string", "null"],
                                   "description": "The original record's key."},
                           "bindingVersion": "0.5.0"}},
    "examples": [{
        "name": "invalid-envelope",
        "headers": {"reason": "envelope: version: Field required"},
        "payload": {
            "reason": "envelope: version: Field required", "consumer": "router",
            "source": {"topic": "awasi.intake.v1", "partition": 3, "offset": 1207},
            "key": "3f6c2b1a-8d4e-4f5a-9b7c-1e2d3c4b5a69",
            "value": "{\"type\": \"complaint.submitted\"}",
        },
    }],
}


@functools.cache
def service_document(service: str) -> str:
    """``service``'s part as YAML, built once per process (the models do not change)."""
    return to_yaml(build(service))


def to_yaml(document: dict[str, Any]) -> str:
    # Deep copy: PyYAML would otherwise write anchors for shared sub-dicts.
    return yaml.dump(copy.deepcopy(document), Dumper=_NoAliases, sort_keys=False,
                     allow_unicode=True, width=88)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Multi-line text as a literal block, readable in review.
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_NoAliases.add_representer(str, _text)
