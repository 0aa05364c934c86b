"""The oversight JSON API. Panel routes need the ``panel`` role (401 without a
token, 403 for any other role); the audit check, the checkpoints, the public key and
the statistics are public."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from awasi.identity import User, require_user
from awasi.identity.store import account_audit
from awasi.web import keys as web_keys
from awasi.web.body import parse_json, validate
from awasi.web.errors import NotFound, ValidationFailed
from awasi.web.responses import json_response
from services.oversight import audit, conflicts, findings, keys, panel, stats

PANEL_ROLES = ("panel",)


async def panel_member(request: web.Request) -> User:
    """The calling panel member; the one auth check every panel route makes."""
    return await require_user(request, roles=PANEL_ROLES)


def _now(request: web.Request) -> Any:
    return request.app[keys.CLOCK].now()


def queue_filter(query: Any) -> panel.QueueFilter:
    """The queue's filters from a query string; 422 for a bad value or cursor."""
    f = validate(panel.QueueFilter, {k: v for k, v in query.items() if v != ""})
    try:
        f.cursor()
    except ValueError as e:
        raise ValidationFailed("Invalid cursor", details={"field": "after"}) from e
    return f


async def get_review_queue(request: web.Request) -> web.Response:
    await panel_member(request)
    f = queue_filter(request.query)
    async with request.app[web_keys.POOL].acquire() as conn:
        items = await panel.review_queue(conn, _now(request), f)
    nxt = panel.queue_cursor(items[-1]) if len(items) == f.limit else None
    return json_response({"items": items, "count": len(items), "next": nxt})


async def post_release(request: web.Request) -> web.Response:
    user = await panel_member(request)
    out = await panel.release(request.app[web_keys.POOL], request.match_info["tracking_code"],
                              user.username, _now(request))
    return json_response(out)


async def post_claim(request: web.Request) -> web.Response:
    user = await panel_member(request)
    out = await panel.claim(request.app[web_keys.POOL], request.match_info["tracking_code"],
                            user.username, _now(request))
    return json_response(out)


async def get_timeline(request: web.Request) -> web.Response:
    await panel_member(request)
    async with request.app[web_keys.POOL].acquire() as conn:
        out = await panel.timeline(conn, request.match_info["tracking_code"], _now(request))
    return json_response(out)


async def post_finding(request: web.Request) -> web.Response:
    """A draft: nothing is published or counted until another member confirms it."""
    user = await panel_member(request)
    body = await parse_json(request, panel.FindingIn)
    out = await findings.draft(request.app[web_keys.POOL],
                               request.match_info["tracking_code"], body,
                               user.username, _now(request))
    return json_response(out, status=201)


def _finding_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound("No such finding or proposal")
    return int(raw)


async def post_confirm(request: web.Request) -> web.Response:
    user = await panel_member(request)
    out = await findings.confirm(request.app[web_keys.POOL], _finding_id(request),
                                 user.username, _now(request))
    return json_response(out)


async def post_cancel(request: web.Request) -> web.Response:
    user = await panel_member(request)
    out = await findings.cancel(request.app[web_keys.POOL], _finding_id(request),
                                user.username, _now(request))
    return json_response(out)


async def post_amend(request: web.Request) -> web.Response:
    user = await panel_member(request)
    body = await parse_json(request, findings.ChangeIn)
    out = await findings.propose_change(request.app[web_keys.POOL], _finding_id(request),
                                        "amend", body.finding, body.reason, user.username,
                                        _now(request))
    return json_response(out, status=201)


async def post_withdraw(request: web.Request) -> web.Response:
    user = await panel_member(request)
    body = await parse_json(request, findings.WithdrawIn)
    out = await findings.propose_change(request.app[web_keys.POOL], _finding_id(request),
                                        "withdraw", None, body.reason, user.username,
                                        _now(request))
    return json_response(out, status=201)


async def get_drafts(request: web.Request) -> web.Response:
    await panel_member(request)
    items = await findings.pending(request.app[web_keys.POOL])
    return json_response({"items": items, "count": len(items)})


async def get_finding_history(request: web.Request) -> web.Response:
    await panel_member(request)
    out = await findings.history(request.app[web_keys.POOL], _finding_id(request))
    return json_response(out)


class ConflictsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    username: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9._-]+$")


async def get_conflicts(request: web.Request) -> web.Response:
    await panel_member(request)
    q = validate(ConflictsQuery, {k: v for k, v in request.query.items() if v != ""})
    items = await conflicts.listing(request.app[web_keys.POOL], q.username)
    return json_response({"items": items})


async def post_conflict(request: web.Request) -> web.Response:
    user = await panel_member(request)
    body = await parse_json(request, conflicts.ConflictIn)
    if body.agency not in request.app[keys.CATALOG].agencies:
        raise ValidationFailed("Unknown agency code", details={"field": "agency"})
    out = await conflicts.declare(request.app[web_keys.POOL], user.username, body,
                                  _now(request))
    return json_response(out, status=201)


async def delete_conflict(request: web.Request) -> web.Response:
    user = await panel_member(request)
    agency = request.match_info["agency"]
    if agency not in request.app[keys.CATALOG].agencies:
        raise NotFound("No such declared conflict")
    await conflicts.withdraw(request.app[web_keys.POOL], user.username, agency)
    return json_response({"ok": True})


class AccountAuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    before: int | None = Field(default=None, ge=1, le=2**63 - 1)
    limit: int = Field(default=50, ge=1, le=200)


async def get_account_audit(request: web.Request) -> web.Response:
    """Who changed which staff account, when: the panel oversees the admins too."""
    await panel_member(request)
    q = validate(AccountAuditQuery, dict(request.query))
    items = await account_audit(request.app[web_keys.POOL], before=q.before, limit=q.limit)
    nxt = items[-1]["id"] if len(items) == q.limit else None
    return json_response({"items": items, "next_before": nxt})


async def post_reopen(request: web.Request) -> web.Response:
    user = await panel_member(request)
    body = await parse_json(request, panel.ReopenIn)
    out = await panel.reopen(request.app[web_keys.POOL], request.match_info["tracking_code"],
                             body, user.username, _now(request))
    return json_response(out, status=202)


async def post_reject_dispute(request: web.Request) -> web.Response:
    user = await panel_member(request)
    body = await parse_json(request, panel.RejectDisputeIn)
    out = await panel.reject_dispute(request.app[web_keys.POOL],
                                     request.match_info["tracking_code"], body,
                                     user.username, _now(request))
    return json_response(out, status=202)


async def get_audit_verify(request: web.Request) -> web.Response:
    """Incremental and rate limited (``AWASI_AUDIT_VERIFY_MIN_INTERVAL_S``, by wall
    time across every process): anyone may call it, so its cost must not grow with
    the history nor with the callers. The full walk is ``awasi audit verify``."""
    settings = request.app[web_keys.SETTINGS]
    out = await audit.verify_incremental(
        request.app[web_keys.POOL], datetime.now(UTC),
        timedelta(seconds=settings.audit_verify_min_interval_s))
    return json_response(out)


async def get_checkpoint(request: web.Request) -> web.Response:
    async with request.app[web_keys.POOL].acquire() as conn:
        cp = await audit.latest(conn)
    if cp is None:
        raise NotFound("No checkpoint has been published yet")
    return json_response(cp, headers={
        "Content-Disposition": f'inline; filename="awasi-checkpoint-{cp["seq"]}.json"'})


class CheckpointsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    before: int | None = Field(default=None, ge=1, le=2**63 - 1)  # a bigint id
    limit: int = Field(default=50, ge=1, le=500)


async def get_checkpoints(request: web.Request) -> web.Response:
    q = validate(CheckpointsQuery, dict(request.query))
    async with request.app[web_keys.POOL].acquire() as conn:
        items = await audit.listing(conn, q.before, q.limit)
    nxt = items[-1]["id"] if len(items) == q.limit else None
    return json_response({"checkpoints": items, "next_before": nxt})


async def post_checkpoint(request: web.Request) -> web.Response:
    user = await panel_member(request)
    async with request.app[web_keys.POOL].acquire() as conn:
        cp = await audit.make_checkpoint(conn, request.app[keys.SIGNING_KEY],
                                         datetime.now(UTC), requested_by=user.username)
    return json_response(cp, status=201)


async def get_public_key(request: web.Request) -> web.Response:
    key = request.app[keys.SIGNING_KEY]
    async with request.app[web_keys.POOL].acquire() as conn:
        known = await audit.public_keys(conn)
    return json_response({"algorithm": "Ed25519", "key_id": key.key_id,
                          "public_key": key.public_b64, "pem": key.public_pem(),
                          "keys": known})


async def get_public_key_pem(request: web.Request) -> web.Response:
    key = request.app[keys.SIGNING_KEY]
    return web.Response(text=key.public_pem(), content_type="application/x-pem-file",
                        headers={"Content-Disposition":
                                 f'attachment; filename="awasi-audit-{key.key_id}.pem"'})


async def current_stats(request: web.Request) -> stats.Stats:
    async with request.app[web_keys.POOL].acquire() as conn:
        return await stats.current(conn, request.app[keys.CATALOG], _now(request))


async def get_stats(request: web.Request) -> web.Response:
    s = await current_stats(request)
    return json_response(s.to_json())


async def get_stats_csv(request: web.Request) -> web.Response:
    s = await current_stats(request)
    return web.Response(
        text=stats.to_csv(s), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="awasi-agencies.csv"'},
    )


_OBJ: dict[str, Any] = {"type": "object"}


def add_routes(app: web.Application) -> None:
    api = app[web_keys.OPENAPI]
    r = app.router
    api.add(r, "GET", "/api/v1/review-queue", get_review_queue, tags=["panel"],
            summary="The panel's review queue: why each case is there and since when"
                    " (filters: reason, region, agency, min_age_days, code; keyset pages:"
                    " limit, after=next)",
            parameters=[{"name": n, "in": "query", "schema": {"type": t}} for n, t in (
                ("reason", "string"), ("region", "string"), ("agency", "string"),
                ("min_age_days", "number"), ("code", "string"), ("after", "string"),
                ("limit", "integer"))],
            responses={200: _OBJ}, secured=True, errors=(400, 422))
    api.add(r, "POST", "/api/v1/review-queue/{tracking_code}/release", post_release,
            tags=["panel"], summary="Give one's own claim back to the queue",
            responses={200: _OBJ}, secured=True, errors=(404, 409))
    api.add(r, "POST", "/api/v1/review-queue/{tracking_code}/claim", post_claim,
            tags=["panel"], summary="Claim a queued case", responses={200: _OBJ},
            secured=True, errors=(404, 409))
    api.add(r, "GET", "/api/v1/cases/{tracking_code}/timeline", get_timeline,
            tags=["panel"], summary="A case's whole timeline", responses={200: _OBJ},
            secured=True, errors=(404,))
    api.add(r, "POST", "/api/v1/cases/{tracking_code}/findings", post_finding,
            tags=["panel"], summary="Draft a finding; another member confirms it",
            body=panel.FindingIn, responses={201: _OBJ}, secured=True,
            errors=(400, 403, 404, 409, 422))
    api.add(r, "GET", "/api/v1/findings/drafts", get_drafts, tags=["panel"],
            summary="Drafts and proposed changes waiting for a second member",
            responses={200: _OBJ}, secured=True, errors=())
    api.add(r, "POST", "/api/v1/findings/{id}/confirm", post_confirm, tags=["panel"],
            summary="Confirm a draft or a proposed change (not one's own; a confirmed"
                    " draft emits finding.recorded)",
            responses={200: _OBJ}, secured=True, errors=(403, 404, 409))
    api.add(r, "POST", "/api/v1/findings/{id}/cancel", post_cancel, tags=["panel"],
            summary="Take back one's own pending draft or proposed change",
            responses={200: _OBJ}, secured=True, errors=(403, 404, 409))
    api.add(r, "POST", "/api/v1/findings/{id}/amend", post_amend, tags=["panel"],
            summary="Propose an amended version of a finding (another member confirms)",
            body=findings.ChangeIn, responses={201: _OBJ}, secured=True,
            errors=(400, 403, 404, 409, 422))
    api.add(r, "POST", "/api/v1/findings/{id}/withdraw", post_withdraw, tags=["panel"],
            summary="Propose to withdraw a finding (another member confirms)",
            body=findings.WithdrawIn, responses={201: _OBJ}, secured=True,
            errors=(400, 403, 404, 409, 422))
    api.add(r, "GET", "/api/v1/findings/{id}/history", get_finding_history, tags=["panel"],
            summary="A finding's proposals and replaced versions", responses={200: _OBJ},
            secured=True, errors=(404,))
    api.add(r, "GET", "/api/v1/panel/conflicts", get_conflicts, tags=["panel"],
            summary="Declared conflicts of interest (?username= for one member's)",
            errors=(400, 422),
            parameters=[{"name": "username", "in": "query", "schema": {"type": "string"}}],
            responses={200: _OBJ}, secured=True)
    api.add(r, "POST", "/api/v1/panel/conflicts", post_conflict, tags=["panel"],
            summary="Declare a conflict of interest with an agency",
            body=conflicts.ConflictIn, responses={201: _OBJ}, secured=True,
            errors=(400, 422))
    api.add(r, "DELETE", "/api/v1/panel/conflicts/{agency}", delete_conflict,
            tags=["panel"], summary="End one's own declared conflict",
            responses={200: _OBJ}, secured=True, errors=(404,))
    api.add(r, "GET", "/api/v1/audit/accounts", get_account_audit, tags=["audit", "panel"],
            summary="Changes to staff accounts, newest first (keyset pages: ?before=id)",
            parameters=[{"name": "before", "in": "query", "schema": {"type": "integer"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
            responses={200: _OBJ}, secured=True, errors=(400, 422))
    api.add(r, "POST", "/api/v1/cases/{tracking_code}/reopen", post_reopen,
            tags=["panel"], summary="Reopen a case (emits case.reopened for the router)",
            body=panel.ReopenIn, responses={202: _OBJ}, secured=True,
            errors=(400, 404, 409, 422))
    api.add(r, "POST", "/api/v1/cases/{tracking_code}/dispute/reject", post_reject_dispute,
            tags=["panel"], summary="Reject the citizen's dispute: the resolution stands and "
                                    "the case closes (emits case.closed; the citizen reads "
                                    "the reason)",
            body=panel.RejectDisputeIn, responses={202: _OBJ}, secured=True,
            errors=(400, 404, 409, 422))
    api.add(r, "GET", "/api/v1/audit/verify", get_audit_verify, tags=["audit"],
            summary="Walk the timeline's hash chain from the last verified entry (rate"
                    " limited); name the first entry that does not match",
            responses={200: _OBJ}, errors=())
    api.add(r, "GET", "/api/v1/audit/checkpoint", get_checkpoint, tags=["audit"],
            summary="The latest signed checkpoint of the chain head (save it: it proves"
                    " later that history up to it is unchanged)",
            responses={200: _OBJ}, errors=(404,))
    api.add(r, "GET", "/api/v1/audit/checkpoints", get_checkpoints, tags=["audit"],
            summary="Every signed checkpoint, newest first (keyset pages: ?before=id)",
            parameters=[{"name": "before", "in": "query", "schema": {"type": "integer"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
            responses={200: _OBJ}, errors=(400, 422))
    api.add(r, "POST", "/api/v1/audit/checkpoints", post_checkpoint, tags=["audit", "panel"],
            summary="Sign and publish a checkpoint now", responses={201: _OBJ},
            secured=True, errors=())
    api.add(r, "GET", "/api/v1/audit/public-key", get_public_key, tags=["audit"],
            summary="The checkpoint signing key (Ed25519) and every key used before",
            responses={200: _OBJ}, errors=())
    api.add(r, "GET", "/api/v1/audit/public-key.pem", get_public_key_pem, tags=["audit"],
            summary="The current public key as a PEM file", responses={200: None}, errors=())
    api.add(r, "GET", "/api/v1/stats/agencies", get_stats, tags=["stats"],
            summary="Public statistics per agency and per region", responses={200: _OBJ},
            errors=())
    api.add(r, "GET", "/api/v1/stats/agencies.csv", get_stats_csv, tags=["stats"],
            summary="The same statistics as CSV", responses={200: None}, errors=())
