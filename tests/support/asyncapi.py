"""Reading docs/asyncapi.yaml as an outside consumer would: plain YAML and JSON Schema
(jsonschema), nothing of Awasi's own models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
_URI = "urn:awasi:asyncapi"


def load_document(text: str | None = None) -> dict[str, Any]:
    return yaml.safe_load(text if text is not None else DOCUMENT.read_text(encoding="utf-8"))


def validator_at(document: dict[str, Any], pointer: str) -> jsonschema.Draft7Validator:
    """A draft-07 validator (AsyncAPI's schema dialect) for the schema at ``pointer``
    (``/components/messages/x/payload``), its refs resolved inside the document, with
    formats (date-time, uuid...) checked."""
    registry = Registry().with_resource(_URI, Resource(document, specification=DRAFT7))
    return jsonschema.Draft7Validator(
        {"$ref": f"{_URI}#{pointer}"}, registry=registry,
        format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def message_validator(document: dict[str, Any], message: str) -> jsonschema.Draft7Validator:
    return validator_at(document, f"/components/messages/{message}/payload")


def channel_of(document: dict[str, Any], topic: str) -> dict[str, Any]:
    (channel,) = [c for c in document["channels"].values() if c["address"] == topic]
    return channel
