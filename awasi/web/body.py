"""Reading request bodies into validated models (pydantic), with errors that name the field."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import BaseModel, ValidationError

from awasi import jsoncodec
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


async def read_json_object(request: web.Request, *,
                           max_bytes: int | None = None) -> tuple[dict[str, Any], bytes]:
    """The request's JSON object and its raw bytes. 415 if not JSON, 413 above
    ``max_bytes`` (default: the app's ``client_max_size``), 400 if empty or malformed,
    422 if not an object or if a string holds a NUL character."""
    ctype = request.content_type
    if ctype not in ("application/json", "") and not ctype.endswith("+json"):
        raise UnsupportedMediaType("Send the body as application/json")
    raw = await _read_limited(request, max_bytes)
    return json_object(raw), raw


def json_object(raw: bytes, *, part: str | None = None,
                max_bytes: int | None = None) -> dict[str, Any]:
    """``raw`` parsed as a JSON object, with the checks every JSON body gets: 413
    above ``max_bytes``, 400 if empty or malformed, 422 if not an object or if a
    string holds a NUL character. ``part`` names a multipart part holding the JSON
    (in messages, and as the prefix of a NUL field's name)."""
    where = f"the '{part}' part" if part else "the body"
    if max_bytes is not None and len(raw) > max_bytes:
        raise PayloadTooLarge(f"{where[0].upper()}{where[1:]} is too large",
                              details={"max_bytes": max_bytes})
    if not raw:
        raise BadRequest(f"{where[0].upper()}{where[1:]} is empty; send a JSON object",
                         code="bad_json")
    try:
        data = jsoncodec.loads(raw)
    except jsoncodec.JSONDecodeError as e:
        raise BadRequest(f"Malformed JSON in {where}: {e}", code="bad_json") from e
    root = part or "(body)"
    if not isinstance(data, dict):
        raise ValidationFailed(f"{where[0].upper()}{where[1:]} must be a JSON object",
                               details={"fields": [{"field": root, "message": "expected an "
                                                    "object", "type": "dict_type"}]})
    # PostgreSQL text cannot hold NUL: refuse it here, naming the field, rather than
    # fail at the database. (JSON can only carry NUL escaped, so the scan is rare.)
    if b"\\u0000" in raw:
        _refuse_nul(_nul_field(data, part or ""))
    return data


async def _read_limited(request: web.Request, max_bytes: int | None) -> bytes:
    if max_bytes is None:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as e:
            raise PayloadTooLarge("Request body is too large",
                                  details={"max_bytes": getattr(e, "max_size", None)}) from e
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge("Request body is too large", details={"max_bytes": max_bytes})
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge("Request body is too large", details={"max_bytes": max_bytes})
    return raw


async def parse_json(request: web.Request, model: type[M]) -> M:
    data, _ = await read_json_object(request)
    return validate(model, data)


async def read_form(request: web.Request) -> MultiDictProxy[str | web.FileField]:
    """The form body (urlencoded or multipart); 400 if it cannot be parsed (e.g. a
    multipart body without a boundary), 422 naming the field if a value holds NUL."""
    try:
        form = await request.post()
    except ValueError as e:
        raise BadRequest(f"Malformed form body: {e}", code="bad_form") from e
    for key, value in form.items():
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            _refuse_nul(key.replace("\x00", "") or "(body)")
    return form


def _refuse_nul(field: str | None) -> None:
    if field is not None:
        raise ValidationFailed(f"Invalid value for '{field}'", details={"fields": [
            {"field": field, "message": "must not contain NUL characters",
             "type": "string_nul"}]})


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
