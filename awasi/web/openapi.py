"""A small OpenAPI 3.1 document built from the routes as they are added.

Request and response bodies are the same pydantic models the handlers validate
with, so the document cannot drift from what the code accepts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from awasi.web.responses import json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}


class OpenApi:
    def __init__(self, title: str, version: str = "1.0.0", description: str = "") -> None:
        self.doc: dict[str, Any] = {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version, "description": description},
            "paths": {},
            "components": {
                "schemas": {"Error": ERROR_SCHEMA},
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
        }

    def _schema(self, model: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
        if isinstance(model, dict):
            return model
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            self.doc["components"]["schemas"][name] = sub
        self.doc["components"]["schemas"][model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def add(
        self, router: web.UrlDispatcher, method: str, path: str, handler: Handler, *,
        summary: str, body: type[BaseModel] | dict[str, Any] | None = None,
        body_content_type: str = "application/json",
        responses: dict[int, type[BaseModel] | dict[str, Any] | None] | None = None,
        parameters: list[dict[str, Any]] | None = None, secured: bool = False,
        tags: list[str] | None = None, errors: tuple[int, ...] = (400, 422),
    ) -> None:
        """Register the route with aiohttp and describe it in the document."""
        router.add_route(method, path, handler)
        op: dict[str, Any] = {"summary": summary, "operationId": handler.__name__,
                              "responses": {}}
        if tags:
            op["tags"] = tags
        params = list(parameters or [])
        for segment in path.split("/"):
            if segment.startswith("{") and segment.endswith("}"):
                name = segment[1:-1].split(":")[0]
                params.append({"name": name, "in": "path", "required": True,
                               "schema": {"type": "string"}})
        if params:
            op["parameters"] = params
        if body is not None:
            op["requestBody"] = {"required": True,
                                 "content": {body_content_type: {"schema": self._schema(body)}}}
        for status, model in (responses or {200: None}).items():
            entry: dict[str, Any] = {"description": str(status)}
            if model is not None:
                entry["content"] = {"application/json": {"schema": self._schema(model)}}
            op["responses"][str(status)] = entry
        for status in errors + ((401, 403) if secured else ()):
            op["responses"].setdefault(str(status), {
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            })
        if secured:
            op["security"] = [{"bearer": []}]
        clean = "/".join(s.split(":")[0] + ("}" if ":" in s else "") for s in path.split("/"))
        self.doc["paths"].setdefault(clean, {})[method.lower()] = op

    async def handler(self, request: web.Request) -> web.Response:
        return json_response(self.doc)
