"""docs/asyncapi.yaml: valid AsyncAPI 3.0 (the official JSON Schema from the npm
registry, ``make install`` puts it in .cache/asyncapi/), complete, and exactly what the
event models generate today (``awasi events schema``)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from awasi.events import topics
from awasi.events.asyncapi import OFF_TOPIC, TOPIC_OF_TYPE, build, to_yaml
from awasi.events.envelope import Envelope
from awasi.events.payloads import registered_types
from tests.support.asyncapi import message_validator

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "asyncapi.yaml"  # tests.support.asyncapi reads the same file
SPEC = ROOT / ".cache" / "asyncapi" / "asyncapi-3.0.0.json"


def spec_validator() -> jsonschema.Draft7Validator:
    assert SPEC.exists(), "the AsyncAPI 3.0.0 JSON Schema is missing: run `make install`"
    return jsonschema.Draft7Validator(json.loads(SPEC.read_text()))


def _refs(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return ([node] if "$ref" in node else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_checked_in_document_is_what_the_models_generate() -> None:
    # Regenerate in memory: a model changed without `awasi events schema` fails here.
    assert DOCUMENT.read_text(encoding="utf-8") == to_yaml(build()), (
        "docs/asyncapi.yaml is out of date: run `awasi events schema -o docs/asyncapi.yaml`")


def test_a_changed_model_would_be_caught() -> None:
    document = build()
    changed = copy.deepcopy(document)
    changed["components"]["schemas"]["TicketResolved"]["required"].append("extra")
    assert to_yaml(changed) != to_yaml(document)


def test_the_document_is_valid_asyncapi_3() -> None:
    document = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    errors = [f"{e.json_path}: {e.message[:200]}"
              for e in spec_validator().iter_errors(document)]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"


def test_the_validator_rejects_a_broken_document() -> None:
    # The official schema really bites: a wrong operation action and a channel
    # address that is not a string are both refused.
    document = build()
    document["operations"]["receive-awasi-intake-v1"]["action"] = "consume"
    document["channels"]["awasi-router-v1"]["address"] = 7
    paths = {e.json_path for e in spec_validator().iter_errors(document)}
    assert any("receive-awasi-intake-v1" in p for p in paths)
    assert any("awasi-router-v1" in p for p in paths)


def test_every_ref_resolves_and_stands_alone() -> None:
    document = build()
    for node in _refs(document):
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part]
        # No siblings beside $ref: draft-07 readers would ignore them silently.
        assert set(node) == {"$ref"}, node


def test_every_topic_and_every_event_type_is_described() -> None:
    document = build()
    registered = {t for t, _ in registered_types()}
    assert set(TOPIC_OF_TYPE) <= registered, set(TOPIC_OF_TYPE) - registered
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == set(topics.ALL)
    messages = document["components"]["messages"]
    for event_type, version in registered_types():
        if event_type in OFF_TOPIC:
            assert f"{event_type}.v{version}" not in messages
            continue
        name = f"{event_type}.v{version}"
        assert name in messages, name
        channel = next(c for c in document["channels"].values()
                       if c["address"] == TOPIC_OF_TYPE[event_type])
        assert name in channel["messages"]


def test_every_example_is_valid_against_its_message_and_the_models() -> None:
    document = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    for name, message in document["components"]["messages"].items():
        assert message["examples"], name
        validator = message_validator(document, name)
        for example in message["examples"]:
            validator.validate(example["payload"])
            if name != "deadletter":
                env = Envelope.from_bytes(json.dumps(example["payload"]).encode())
                assert f"{env.type}.v{env.version}" == name


def test_a_message_of_the_wrong_shape_is_refused() -> None:
    document = build()
    example = document["components"]["messages"]["ticket.resolved.v1"]["examples"][0]
    validator = message_validator(document, "ticket.resolved.v1")
    no_note = copy.deepcopy(example["payload"])
    del no_note["payload"]["note"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(no_note)
    other_type = copy.deepcopy(example["payload"])
    other_type["type"] = "ticket.responded"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(other_type)
    bad_time = copy.deepcopy(example["payload"])
    bad_time["occurred_at"] = "yesterday"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad_time)


def test_a_service_document_holds_only_its_own_topics() -> None:
    intake = build("intake")
    assert {c["address"] for c in intake["channels"].values()} == {
        topics.INTAKE, topics.DEAD_LETTER}
    assert "ticket.resolved.v1" not in intake["components"]["messages"]
    oversight = build("oversight")
    assert {c["address"] for c in oversight["channels"].values()} == {
        topics.OVERSIGHT, topics.AUDIT, topics.DEAD_LETTER}
    assert spec_validator().is_valid(intake) and spec_validator().is_valid(oversight)


def test_the_command_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.yaml"
    done = subprocess.run([sys.executable, "-m", "awasi", "events", "schema", "-o", str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == DOCUMENT.read_text(encoding="utf-8")
