"""Audit anchoring against a database writer: signed checkpoints (Ed25519) catch a
rewrite whose every later hash and the stored head were recomputed, which the chain
walk alone cannot; the public verify call is incremental and rate limited;
checkpoints are made on the database's schedule, on demand by the panel, published
on awasi.audit.v1 and shown on the dashboard; the panel member who acted is on the
chain, inside the hashed content, and not on the topic."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.settings import Settings, SettingsError
from services.oversight import audit
from services.oversight.app import create_app
from services.oversight.audit_key import KEY_FILE, SigningKey, load_signing_key
from services.oversight.chain import GENESIS, entry_hash, verify
from services.oversight.clock import ManualClock
from tests.support.chain import cid_in, rewrite_and_recompute, write_legacy
from tests.support.kafka import read_topic
from tests.support.oversight import (
    ACK_DUE,
    MONDAY_9,
    acknowledged,
    bearer,
    eventually,
    feed,
    login,
    make_ctx,
    new_cid,
    open_pool,
    pool_of,
    resolved,
    routed,
    send,
    submitted,
)
from tests.support.services import running_app
from tests.support.stack import process_env

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

KEY = SigningKey.from_seed_b64(base64.b64encode(bytes(range(32))).decode())


async def eight_entries(pool: asyncpg.Pool) -> None:
    ctx, _ = make_ctx()
    # In two partitions: a's entries (seq 1 3 5 7) are positions 1..4 of partition 5.
    a, b = cid_in(5), cid_in(9)
    t = MONDAY_9
    due = t + timedelta(days=2)
    await feed(pool, ctx, submitted(a, t), submitted(b, t))
    await checkpoint(pool)                                           # at entry 2
    await feed(pool, ctx, routed(a, t, due, None))
    await checkpoint(pool)                                           # at entry 3
    await feed(pool, ctx, routed(b, t, due, None), acknowledged(a, t + timedelta(hours=1)),
               acknowledged(b, t + timedelta(hours=1)), resolved(a, t + timedelta(hours=2)),
               resolved(b, t + timedelta(hours=3)))


async def checkpoint(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await audit.make_checkpoint(conn, KEY, datetime.now(UTC), requested_by="test")


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "awasi", "audit", *args], env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=60)


async def test_a_saved_checkpoint_catches_a_rewrite_with_recomputed_hashes(
    database_url: str, tmp_path: Path,
) -> None:
    pool = await open_pool(database_url)
    try:
        await eight_entries(pool)
        saved = await checkpoint(pool)                               # at entry 8
        assert (saved["seq"], saved["algorithm"], saved["key_id"]) == (8, "Ed25519", KEY.key_id)
        file = tmp_path / "checkpoint.json"
        file.write_text(json.dumps(saved))
        env = process_env(database_url, "127.0.0.1:1")
        good = await asyncio.to_thread(run_cli, env, "verify", "--checkpoint", str(file))
        assert good.returncode == 0, good.stdout + good.stderr
        public_before = await audit.verify_incremental(pool, datetime.now(UTC), timedelta(0))
        assert public_before["ok"] is True and public_before["verified_through"] == 8

        await rewrite_and_recompute(pool, 3)

        # The walk alone (CLI without a checkpoint, and the public call) is fooled...
        async with pool.acquire() as conn:
            assert (await verify(conn)).ok is True
        public = await audit.verify_incremental(pool, datetime.now(UTC), timedelta(0))
        assert public["ok"] is True
        plain = await asyncio.to_thread(run_cli, env, "verify")
        assert plain.returncode == 0
        # ...the saved checkpoint is not; the checkpoints signed before the rewrite
        # (entries 2 and 3: partition 5 at positions 1 and 2) narrow it down to the
        # rewritten entry, seq 3, position 2 of partition 5.
        caught = await asyncio.to_thread(run_cli, env, "verify", "--checkpoint", str(file))
        assert caught.returncode == 1, caught.stdout + caught.stderr
        assert "first bad entry: seq 3 (partition 5, entry 2)" in caught.stdout
        verdict = json.loads(caught.stdout[:caught.stdout.rindex("}") + 1])
        assert verdict["first_bad"]["rewritten_between"] == [2, 2]
        assert verdict["first_bad"]["event_id"] == str(await pool.fetchval(
            "SELECT event_id FROM oversight.timeline WHERE seq = 3"))

        # A writer who also deletes the stored checkpoints only widens the range.
        await pool.execute("DELETE FROM oversight.checkpoints WHERE seq < 8")
        wider = await asyncio.to_thread(run_cli, env, "verify", "--checkpoint", str(file))
        assert wider.returncode == 1
        assert "between seq 1 and seq 4 of partition 5" in wider.stdout
    finally:
        await pool.close()


async def test_a_forged_or_foreign_checkpoint_file_is_refused(
    database_url: str, tmp_path: Path,
) -> None:
    pool = await open_pool(database_url)
    try:
        await eight_entries(pool)
        saved = await checkpoint(pool)
        env = process_env(database_url, "127.0.0.1:1")
        forged = dict(saved, head_hash="f" * 64)
        other = SigningKey.from_seed_b64(base64.b64encode(os.urandom(32)).decode())
        swapped = dict(saved, public_key=other.public_b64)  # key id no longer matches
        for bad in (forged, swapped, {"seq": 1}):
            file = tmp_path / "bad.json"
            file.write_text(json.dumps(bad))
            r = await asyncio.to_thread(run_cli, env, "verify", "--checkpoint", str(file))
            assert r.returncode == 2, r.stdout
            assert "not a valid checkpoint" in r.stdout
        # The admin's on-demand checkpoint, signed with the service's key (settings).
        made = await asyncio.to_thread(run_cli, env, "checkpoint")
        assert made.returncode == 0, made.stderr
        cp = json.loads(made.stdout)
        assert audit.parse_checkpoints(cp)[0]["seq"] == 8
        assert cp["key_id"] == load_signing_key(Settings.from_env(env)).key_id != KEY.key_id
        assert await pool.fetchval("SELECT requested_by FROM oversight.checkpoints"
                                   " WHERE id = $1", cp["id"]) == "cli"
    finally:
        await pool.close()


async def test_public_verify_is_incremental_and_rate_limited(settings: Settings) -> None:
    assert settings.database_url
    pool = await open_pool(settings.database_url)
    ctx, _ = make_ctx()
    cid = new_cid()
    try:
        await feed(pool, ctx, submitted(cid, MONDAY_9), acknowledged(cid, MONDAY_9))
        async with running_app(create_app(settings.with_(audit_verify_min_interval_s=3600))
                               ) as client:
            first = await (await client.get("/api/v1/audit/verify")).json()
            assert (first["ok"], first["checked"], first["cached"]) == (True, 2, False)
            await feed(pool, ctx, resolved(cid, MONDAY_9 + timedelta(hours=1)))
            # Within the interval: the stored verdict, no walk (for every caller).
            again = await (await client.get("/api/v1/audit/verify")).json()
            assert again["cached"] is True and again["verified_through"] == 2
        # Past the interval: only the entry after the verified point is walked.
        later = await audit.verify_incremental(pool, datetime.now(UTC) + timedelta(hours=2),
                                               timedelta(hours=1))
        assert (later["ok"], later["from_seq"], later["checked"], later["verified_through"]) \
            == (True, 2, 1, 3)
        # An entry already verified is changed (hash kept): the start point check names it.
        await pool.execute("UPDATE oversight.timeline SET hash = repeat('a', 64) WHERE seq = 3")
        bad = await audit.verify_incremental(pool, datetime.now(UTC) + timedelta(hours=4),
                                             timedelta(hours=1))
        assert bad["ok"] is False and bad["first_bad"]["seq"] == 3
        # The point does not advance past a failure: the next call names it again.
        bad2 = await audit.verify_incremental(pool, datetime.now(UTC) + timedelta(hours=6),
                                              timedelta(hours=1))
        assert bad2["first_bad"]["seq"] == 3 and bad2["cached"] is False
    finally:
        await pool.close()


async def test_checkpoints_are_scheduled_published_and_on_demand(settings: Settings) -> None:
    clock = ManualClock(MONDAY_9)
    cid = new_cid()
    settings = settings.with_(audit_checkpoint_interval_s=86_400)
    async with running_app(create_app(settings, clock=clock)) as client:
        pool = pool_of(client)
        # The first checkpoint is due at once (a fresh database), then daily.
        await eventually(lambda: pool.fetchval("SELECT count(*) FROM oversight.checkpoints"),
                         what="the first checkpoint")
        await send(settings, topics.INTAKE, submitted(cid, MONDAY_9))
        await eventually(lambda: pool.fetchval(
            "SELECT sum(last_seq) FROM oversight.chain_heads"), what="an entry on the chain")
        clock.advance(timedelta(hours=23))
        await asyncio.sleep(0.6)  # three scheduler sweeps: nothing due yet
        assert await pool.fetchval("SELECT count(*) FROM oversight.checkpoints") == 1
        clock.advance(timedelta(hours=1, seconds=1))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) = 2 FROM oversight.checkpoints"), what="the daily checkpoint")

        r = await client.get("/api/v1/audit/checkpoint")
        assert r.status == 200
        cp = await r.json()
        assert set(cp) == {"id", "seq", "head_hash", "time", "key_id", "algorithm",
                           "signature", "public_key", "heads"}
        assert cp["seq"] == 1 and cp["algorithm"] == "Ed25519"
        # Every head signed: the legacy chain's (empty here) and the 64 partitions'.
        assert len(cp["heads"]) == 65 and cp["heads"][0] == [-1, 0, GENESIS]
        assert sum(h[1] for h in cp["heads"]) == 1
        key = await (await client.get("/api/v1/audit/public-key")).json()
        assert key["key_id"] == cp["key_id"] == load_signing_key(settings).key_id
        assert key["pem"].startswith("-----BEGIN PUBLIC KEY-----")
        assert audit.parse_checkpoints(cp)[0]["seq"] == 1   # the signature verifies
        pem = await client.get("/api/v1/audit/public-key.pem")
        assert (await pem.text()) == key["pem"]

        # On demand: the panel only.
        assert (await client.post("/api/v1/audit/checkpoints")).status == 401
        staff = await login(client, "petugas9", "staff", agency="MDN-DISDUKCAPIL")
        assert (await client.post("/api/v1/audit/checkpoints",
                                  headers=bearer(staff))).status == 403
        panel_token = await login(client, "pengawas9", "panel")
        r = await client.post("/api/v1/audit/checkpoints", headers=bearer(panel_token))
        assert r.status == 201
        made = await r.json()
        assert await pool.fetchval("SELECT requested_by FROM oversight.checkpoints"
                                   " WHERE id = $1", made["id"]) == "pengawas9"

        listing = await (await client.get("/api/v1/audit/checkpoints?limit=2")).json()
        assert [c["id"] for c in listing["checkpoints"]] == [made["id"], made["id"] - 1]
        rest = await (await client.get(
            f"/api/v1/audit/checkpoints?before={listing['next_before']}")).json()
        assert [c["id"] for c in rest["checkpoints"]] == [made["id"] - 2]
        r = await client.get("/api/v1/audit/checkpoints?limit=0")
        assert r.status == 422 and "error" in await r.json()

        # Each checkpoint is an event on awasi.audit.v1, keyed by the nil UUID.
        assert settings.kafka_bootstrap
        seen = await read_topic(settings.kafka_bootstrap, topics.AUDIT,
                                until=lambda ms: len(ms) >= 3)
        assert {m["type"] for m in seen} == {"audit.checkpoint"}
        assert {m["complaint_id"] for m in seen} == {audit.NIL_COMPLAINT}
        published = next(m for m in seen if m["payload"]["signature"] == made["signature"])
        Envelope.model_validate({k: v for k, v in published.items() if not k.startswith("_")})
        assert audit.parse_checkpoints(published["payload"])[0]["seq"] == made["seq"]

        # The dashboard shows the key and the latest checkpoint.
        html = await (await client.get("/?lang=en")).text()
        assert key["public_key"] in html and key["key_id"] in html
        assert made["head_hash"] in html and "/api/v1/audit/public-key.pem" in html


async def test_the_panel_member_who_acted_is_on_the_chain_not_on_the_topic(
    settings: Settings,
) -> None:
    clock = ManualClock(MONDAY_9)
    cid = new_cid()
    code = "AWS-ACTOR1"
    async with running_app(create_app(settings, clock=clock)) as client:
        pool = pool_of(client)
        await send(settings, topics.INTAKE, submitted(cid, MONDAY_9, code))
        await send(settings, topics.ROUTER, routed(cid, MONDAY_9, ACK_DUE, None, code=code))
        clock.set(ACK_DUE + timedelta(seconds=1))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) FROM oversight.review_items WHERE complaint_id = $1", cid),
            what="the breach in the queue")
        token = await login(client, "pengawas_aktor", "panel")
        h = bearer(token)
        assert (await client.post(f"/api/v1/review-queue/{code}/claim", headers=h)).status == 200
        r = await client.post(f"/api/v1/cases/{code}/findings", headers=h, json={
            "outcome": "inconclusive", "recommendation": "Lengkapi berkas"})
        assert r.status == 201
        second = bearer(await login(client, "pengawas_kedua", "panel"))
        r = await client.post(f"/api/v1/findings/{(await r.json())['id']}/confirm",
                              headers=second)
        assert r.status == 200
        # The agency resolves it; the panel (the lifecycle lets it reopen a resolved
        # case only) sends it back.
        await send(settings, topics.ROUTER, resolved(cid, ACK_DUE + timedelta(hours=2)))
        await eventually(lambda: pool.fetchval(
            "SELECT status = 'resolved' FROM oversight.cases WHERE complaint_id = $1", cid),
            what="the case resolved")
        r = await client.post(f"/api/v1/cases/{code}/reopen", headers=h,
                              json={"reason": "Belum selesai"})
        assert r.status == 202

        async def acted() -> Any:
            rows = await pool.fetch(
                "SELECT seq, event_type, actor FROM oversight.timeline WHERE complaint_id = $1"
                " AND producer = 'oversight' AND actor IS NOT NULL ORDER BY seq", cid)
            return rows if len(rows) == 5 else None

        rows = await eventually(acted, what="the panel's events on the chain")
        # The draft and its confirmation go on the chain directly (each with its
        # member); the claim and finding.recorded come back through the topic, so
        # the draft may precede the claim's entry.
        assert sorted((r["event_type"], r["actor"]) for r in rows) == [
            ("case.claimed", "pengawas_aktor"), ("case.reopened", "pengawas_aktor"),
            ("finding.confirmed", "pengawas_kedua"), ("finding.proposed", "pengawas_aktor"),
            ("finding.recorded", "pengawas_aktor")]
        r = await client.get(f"/api/v1/cases/{code}/timeline", headers=h)
        entries = (await r.json())["entries"]
        assert [e["actor"] for e in entries if e["type"] == "case.claimed"] == ["pengawas_aktor"]

        # Not on the topic: agencies read it.
        assert settings.kafka_bootstrap
        seen = await read_topic(settings.kafka_bootstrap, topics.OVERSIGHT,
                                until=lambda ms: any(m["type"] == "case.reopened" for m in ms))
        assert all("pengawas_aktor" not in m["_raw"] for m in seen)
        assert all("pengawas_kedua" not in m["_raw"] for m in seen)

        # Inside the hashed content: putting another name there breaks the chain.
        async with pool.acquire() as conn:
            assert (await verify(conn)).ok
        finding_seq = next(r["seq"] for r in rows if r["event_type"] == "finding.recorded")
        await pool.execute("UPDATE oversight.timeline SET actor = 'orang_lain' WHERE seq = $1",
                           finding_seq)
        async with pool.acquire() as conn:
            verdict = await verify(conn)
        assert verdict.ok is False and verdict.first_bad_seq == finding_seq


async def test_entries_written_before_the_actor_existed_still_verify(database_url: str) -> None:
    # An entry without an actor hashes exactly as before the column was added.
    pool = await open_pool(database_url)
    try:
        ctx, _ = make_ctx()
        await feed(pool, ctx, submitted(new_cid(), MONDAY_9))
        row = await pool.fetchrow("SELECT * FROM oversight.timeline WHERE seq = 1")
        assert row["actor"] is None
        import hashlib

        legacy = json.dumps({
            "seq": 1, "part": row["part"],
            "complaint_id": row["complaint_id"], "event_id": str(row["event_id"]),
            "event_type": row["event_type"], "producer": row["producer"],
            "occurred_at": row["occurred_at"].astimezone(UTC).isoformat(timespec="microseconds"),
            "recorded_at": row["recorded_at"].astimezone(UTC).isoformat(timespec="microseconds"),
            "payload": row["payload"]}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert row["hash"] == hashlib.sha256(f"{GENESIS}\n{legacy}".encode()).hexdigest()
    finally:
        await pool.close()


def test_signing_key_setting_and_key_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="AWASI_AUDIT_SIGNING_KEY"):
        load_signing_key(Settings(audit_signing_key="not base64!"))
    with pytest.raises(SettingsError, match="32-byte"):
        load_signing_key(Settings(audit_signing_key=base64.b64encode(b"short").decode()))
    # Unset: a key file in the data folder, created once (owner-only) and kept.
    first = load_signing_key(Settings(data_dir=str(tmp_path)))
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(Settings(data_dir=str(tmp_path))).key_id == first.key_id
    # The key id is derived from the public key: a rotated key has another id.
    assert load_signing_key(Settings(audit_signing_key=base64.b64encode(
        os.urandom(32)).decode())).key_id != first.key_id


async def test_a_panel_member_signs_a_checkpoint_from_the_console(settings: Settings) -> None:
    import re

    from awasi.identity import add_user

    async with running_app(create_app(settings)) as client:
        pool = pool_of(client)
        await add_user(pool, username="pengawas_konsol", password="rahasia-123", role="panel")
        login = await (await client.get("/panel/login")).text()
        login_token = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert login_token
        r = await client.post("/panel/login", data={
            "username": "pengawas_konsol", "password": "rahasia-123", "next": "/panel",
            "csrf_token": login_token.group(1)}, allow_redirects=False)
        assert r.status == 303
        page = await (await client.get("/panel?lang=en")).text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token and "Sign a checkpoint now" in page
        # The scheduled first checkpoint is made at start; wait for it (no race below).
        before = await eventually(lambda: pool.fetchval(
            "SELECT count(*) FROM oversight.checkpoints"), what="the first checkpoint")
        r = await client.post("/panel/checkpoint", data={}, allow_redirects=False)
        assert r.status == 403  # no CSRF token: refused, nothing signed
        assert await pool.fetchval("SELECT count(*) FROM oversight.checkpoints") == before
        r = await client.post("/panel/checkpoint", data={"csrf_token": token.group(1)},
                              allow_redirects=False)
        assert r.status == 303
        assert await pool.fetchval(
            "SELECT requested_by FROM oversight.checkpoints ORDER BY id DESC LIMIT 1"
        ) == "pengawas_konsol"
        page = await (await client.get("/panel?lang=id")).text()
        assert "Titik periksa terakhir" in page


async def test_a_version_1_checkpoint_still_anchors_the_legacy_chain(database_url: str) -> None:
    """Checkpoints signed before the partitions (version 1: the single chain's head)
    still verify over the legacy chain the partitions start from, beside version 2
    ones; a legacy entry rewritten with its hash and the old head recomputed is caught
    by the old checkpoint, naming it."""
    pool = await open_pool(database_url)
    try:
        await write_legacy(pool, 3, new_cid())
        head = await pool.fetchrow("SELECT last_seq, last_hash FROM oversight.chain_head")
        time = audit.time_text(datetime.now(UTC))
        v1 = {"seq": 3, "head_hash": head["last_hash"], "time": time, "key_id": KEY.key_id,
              "algorithm": "Ed25519", "public_key": KEY.public_b64,
              "signature": KEY.sign(audit.message(seq=3, head_hash=head["last_hash"],
                                                  time=time, key_id=KEY.key_id))}
        ctx, _ = make_ctx()
        await feed(pool, ctx, submitted(cid_in(5), MONDAY_9), submitted(cid_in(9), MONDAY_9))
        v2 = await checkpoint(pool)
        assert v2["seq"] == 5 and v2["heads"][0] == [-1, 3, head["last_hash"]]
        both = audit.parse_checkpoints([v1, v2])
        async with pool.acquire() as conn:
            assert (await audit.verify_with_checkpoints(conn, both))["ok"] is True

        row = await pool.fetchrow("SELECT * FROM oversight.timeline WHERE seq = 3")
        forged = entry_hash(row["prev_hash"], seq=3, complaint_id=row["complaint_id"],
                            event_id=row["event_id"], event_type=row["event_type"],
                            producer=row["producer"], occurred_at=row["occurred_at"],
                            recorded_at=row["recorded_at"], payload={"n": 99})
        await pool.execute("UPDATE oversight.timeline SET payload = '{\"n\": 99}'::jsonb,"
                           " hash = $1 WHERE seq = 3", forged)
        await pool.execute("UPDATE oversight.chain_head SET last_hash = $1", forged)
        async with pool.acquire() as conn:
            verdict = await audit.verify_with_checkpoints(conn, audit.parse_checkpoints(v1))
        assert verdict["ok"] is False
        assert (verdict["first_bad"]["seq"], verdict["first_bad"]["partition"]) == (3, None)
        assert "signed checkpoint" in verdict["first_bad"]["reason"]
    finally:
        await pool.close()
