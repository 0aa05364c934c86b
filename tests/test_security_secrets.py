"""The secret key and the demo data: what a real deployment refuses.

- ``awasi serve`` refuses the built-in development key, every placeholder of the
  deployment templates and short keys, naming ``AWASI_SECRET_KEY``, before it connects
  to anything; the one declared list of placeholders matches the template files;
- ``awasi dev`` makes its own key and keeps it;
- ``awasi seed demo`` refuses to run without ``--force``, and writes nothing then.
"""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import sys
from pathlib import Path

import asyncpg
import pytest
import yaml

from awasi.db.roles import PLACEHOLDER_MARKERS
from awasi.secretkey import DEV_DEFAULT, MIN_LENGTH, PLACEHOLDERS, check_secret_key, dev_secret_key
from awasi.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
K8S_SECRETS = ROOT / "deploy" / "k8s" / "secret.example.yaml"
GOOD_KEY = "0123456789abcdef" * 4


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def k8s_secrets() -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d["stringData"]
            for d in yaml.safe_load_all(K8S_SECRETS.read_text()) if d}


def template_keys() -> dict[str, str]:
    return {"built-in default": Settings().secret_key,
            "deploy/env.example": env_example()["AWASI_SECRET_KEY"],
            "deploy/k8s/secret.example.yaml": k8s_secrets()["awasi-secrets"]["AWASI_SECRET_KEY"]}


def test_the_declared_placeholders_are_exactly_the_templates() -> None:
    assert DEV_DEFAULT == "dev-insecure-secret-change-me"
    assert set(template_keys().values()) == PLACEHOLDERS
    # The database passwords of the templates carry a marker `awasi db roles` refuses.
    passwords = [v for k, v in env_example().items() if k.endswith("_PASSWORD")
                 and k.startswith("POSTGRES_")]
    urls = list(k8s_secrets()["awasi-database"].values())
    assert len(passwords) == 5 and len(urls) == 5
    for value in passwords + urls:
        assert any(m in value for m in PLACEHOLDER_MARKERS), value


@pytest.mark.parametrize("value", sorted(PLACEHOLDERS) + ["x" * (MIN_LENGTH - 1), ""])
def test_check_secret_key_refuses_public_and_short_keys(value: str) -> None:
    with pytest.raises(SettingsError, match="AWASI_SECRET_KEY"):
        check_secret_key(value)


def test_check_secret_key_accepts_a_random_key() -> None:
    check_secret_key(GOOD_KEY)
    check_secret_key("k" * MIN_LENGTH)


async def run_awasi(argv: list[str], env: dict[str, str],
                    limit_s: float = 60) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "awasi", *argv, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(limit_s):
        _, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, err.decode()


def serve_env(key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AWASI_SECRET_KEY"}
    # Addresses nothing listens on: a refusal must come before any connection.
    env["AWASI_DATABASE_URL"] = "postgresql://nobody:x@127.0.0.1:9/none"
    env["AWASI_KAFKA_BOOTSTRAP"] = "127.0.0.1:9"
    if key is not None:
        env["AWASI_SECRET_KEY"] = key
    return env


@pytest.mark.parametrize("source", [*template_keys(), "unset", "too short"])
async def test_awasi_serve_refuses_a_public_or_short_key(source: str) -> None:
    key = {"unset": None, "too short": "s3cr3t-but-only-28-characters"}.get(
        source, template_keys().get(source))
    rc, err = await run_awasi(["serve", "intake"], serve_env(key))
    assert rc == 2, err
    assert "AWASI_SECRET_KEY" in err
    assert "Traceback" not in err


async def test_awasi_serve_gets_past_the_key_check_with_a_good_key() -> None:
    env = serve_env(GOOD_KEY)
    del env["AWASI_DATABASE_URL"]
    rc, err = await run_awasi(["serve", "intake"], env)
    # It stops at the next check, the missing database: the key was accepted.
    assert rc == 2, err
    assert "AWASI_DATABASE_URL is not set" in err and "AWASI_SECRET_KEY" not in err


def audit_key_templates() -> dict[str, str]:
    return {"deploy/env.example": env_example()["AWASI_AUDIT_SIGNING_KEY"],
            "deploy/k8s/secret.example.yaml":
                k8s_secrets()["awasi-secrets"]["AWASI_AUDIT_SIGNING_KEY"]}


@pytest.mark.parametrize("source", [*audit_key_templates(), "unset", "16 bytes"])
async def test_awasi_serve_oversight_refuses_a_missing_or_placeholder_audit_key(
        source: str) -> None:
    # One key for the whole deployment: a key file made per container would change
    # the published public key with every new container.
    value = {"unset": None, "16 bytes": base64.b64encode(bytes(16)).decode()}.get(
        source, audit_key_templates().get(source))
    env = {k: v for k, v in serve_env(GOOD_KEY).items() if k != "AWASI_AUDIT_SIGNING_KEY"}
    if value is not None:
        env["AWASI_AUDIT_SIGNING_KEY"] = value
    rc, err = await run_awasi(["serve", "oversight"], env)
    assert rc == 2, err
    assert "AWASI_AUDIT_SIGNING_KEY" in err
    assert "Traceback" not in err
    # Intake and the router do not sign anything: they start past this check.
    rc, err = await run_awasi(["serve", "router"], {**env, "AWASI_DATABASE_URL": ""})
    assert rc == 2 and "AWASI_DATABASE_URL is not set" in err, err


async def test_awasi_serve_oversight_takes_a_good_audit_key() -> None:
    env = serve_env(GOOD_KEY)
    env["AWASI_AUDIT_SIGNING_KEY"] = base64.b64encode(os.urandom(32)).decode()
    env["AWASI_DATABASE_URL"] = ""
    rc, err = await run_awasi(["serve", "oversight"], env)
    assert rc == 2 and "AWASI_DATABASE_URL is not set" in err, err


def test_awasi_dev_makes_a_key_once_and_keeps_it_private(tmp_path: Path) -> None:
    key = dev_secret_key(tmp_path)
    check_secret_key(key)
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dev_secret_key(tmp_path) == key
    other = tmp_path / "other"
    other.mkdir()
    assert dev_secret_key(other) != key


async def test_seed_demo_refuses_without_force_and_writes_nothing(database_url: str) -> None:
    env = {**os.environ, "AWASI_DATABASE_URL": database_url}

    async def users() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM identity.users"))
        finally:
            await conn.close()

    rc, err = await run_awasi(["seed", "demo"], env)
    assert rc == 2
    assert "--force" in err and "awasi dev" in err
    assert await users() == 0
    rc, err = await run_awasi(["seed", "demo", "--force"], env, limit_s=180)
    assert rc == 0, err
    assert await users() > 10
