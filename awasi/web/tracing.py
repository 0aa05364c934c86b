"""The request span: every HTTP request joins the caller's W3C ``traceparent`` or
starts a trace (awasi/tracing.py).

Why not opentelemetry-instrumentation-aiohttp-server: its middleware records the raw
URL and target (tracking codes in paths, the follow-up secret of a signed link in the
query) and the User-Agent, and it takes its tracer from a module global set once per
process, so three apps in one test process could not each have their own provider.
This one is a few lines on the same API, with attributes from an allow-list: the
method, the route template (``/api/v1/complaints/{tracking_code}``, never the path)
and the status.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from opentelemetry.trace import SpanKind, Status, StatusCode

from awasi import tracing
from awasi.web import keys


@web.middleware
async def tracing_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    provider = request.app[keys.TRACER_PROVIDER]
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    headers = {k: request.headers[k] for k in ("traceparent", "tracestate")
               if k in request.headers}
    with tracing.use(provider) as tracer, tracer.start_as_current_span(
            f"{request.method} {route}",
            attributes={"http.request.method": request.method, "http.route": route},
            context=tracing.extract(headers), kind=SpanKind.SERVER,
            record_exception=False, set_status_on_exception=False) as span:
        try:
            response = await handler(request)
        except web.HTTPException as e:
            _status(span, e.status)  # a 4xx is the caller's error, not ours
            raise
        except BaseException as e:
            tracing.failed([span], e)
            raise
        _status(span, response.status)
        return response


def _status(span: Any, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
