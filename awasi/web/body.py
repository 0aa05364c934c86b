"""Reading request bodies into validated models (pydantic), with errors that name the field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from awasi.web.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

M = TypeVar("M", bound=BaseModel)


def validation_details(e: ValidationError) -> list[dict[str, str]]:
    details = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
        details.append({"field": loc or "(body)", "message": err["msg"], "type": err["type"]})
    return details


def validate(model: type[M], data: Any) -> M:
    """Validate data into ``model``; raise ``ValidationFailed`` (422) naming each field."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        details = validation_details(e)
        first = details[0]["field"] if details else "body"
        raise ValidationFailed(f"Invalid value for '{first}'", details={"fields": details}) from e


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; 415 if not JSON, 400 if malformed, 413 if too large."""
    ctype = request.content_type
    if ctype not in ("application/json", "") and not ctype.endswith("+json"):
        raise UnsupportedMediaType("Send the body as application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as e:
        raise PayloadTooLarge("Request body is too large",
                              details={"max_bytes": getattr(e, "max_size", None)}) from e
    if not raw:
        raise BadRequest("Request body is empty; send a JSON object", code="bad_json")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"Malformed JSON: {e}", code="bad_json") from e
    # PostgreSQL text cannot hold NUL: refuse it here, naming the field, rather than
    # fail at the database. (JSON can only carry NUL escaped, so the scan is rare.)
    if b"\\u0000" in raw and (field := _nul_field(data, "")) is not None:
        raise ValidationFailed(f"Invalid value for '{field}'", details={"fields": [
            {"field": field, "message": "must not contain NUL characters",
             "type": "string_nul"}]})
    return data


def _nul_field(value: Any, path: str) -> str | None:
    """The dotted path of the first string (or key) holding a NUL character."""
    if isinstance(value, str):
        return (path or "(body)") if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        sub = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return sub
        if (found := _nul_field(item, sub)) is not None:
            return found
    return None


async def parse_json(request: web.Request, model: type[M]) -> M:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object", details={"fields": [
            {"field": "(body)", "message": "expected an object", "type": "dict_type"}]})
    return validate(model, data)
