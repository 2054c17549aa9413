"""The deployment files stay true: infra/compose.yaml, infra/Dockerfile, infra/bootstrap.py, infra/systemd.

There is no container engine here, so the compose file is checked against the Compose Specification's own JSON
schema (vendored from compose-spec/compose-go, see tests/vendor/compose-spec/README.md), and every `listwatch`
command line and LISTWATCH_* variable in these files is parsed by the real CLI and settings. The bootstrap
script runs against a real PostgreSQL cluster and a real S3 server (rclone) on loopback; the systemd units go
through `systemd-analyze verify`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml
from pydantic import BaseModel
from sqlalchemy import create_engine, inspect

from scheduler.cli import app
from scheduler.settings import Settings, load_settings
from tests import postgres
from tests.postgres import postgres_url  # noqa: F401  (fixture)
from tests.servers import S3Server, rclone_s3  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
COMPOSE = INFRA / "compose.yaml"
SCHEMA = ROOT / "tests" / "vendor" / "compose-spec" / "compose-spec.json"
ENV_EXAMPLE = INFRA / "compose.env.example"
UNITS = sorted((INFRA / "systemd").glob("*.service"))
INSTALLED = "/opt/listwatch/.venv/bin/listwatch"      # where the units expect the command (infra/README.md)
NOT_SETTINGS = {"LISTWATCH_SETTINGS"}                 # names the settings file; not a field of Settings
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} (enough for our file; unknown forms fail)."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if name in env and (env[name] or op is None or not op.startswith(":")):
            return env[name]
        if op and op.endswith("-"):
            return arg
        raise AssertionError(f"${{{name}}} is required ({arg or 'no message'}) and has no value")
    return _VAR.sub(one, value)


def example_env() -> dict[str, str]:
    """Every variable infra/compose.env.example names: optional ones with the default it shows, the others with a
    made-up value."""
    pairs = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=(\S*)", ENV_EXAMPLE.read_text(encoding="utf-8"), re.MULTILINE)
    return {name: value or f"test-{name.lower()}" for name, value in pairs}


def listwatch_command(argv: list[str]) -> str:
    """The CLI command ``argv`` names, after the real parser accepted its options (raises otherwise)."""
    command: Any = typer.main.get_command(app)
    args, names = list(argv), []
    while hasattr(command, "get_command"):   # a group (typer's own click: not click.Group)
        assert args, f"`listwatch {' '.join(argv)}` names a command group, not a command"
        name, *args = args
        names.append(name)
        sub = command.get_command(typer.Context(command), name)
        assert sub is not None, f"`listwatch {name}` is not a command (in `listwatch {' '.join(argv)}`)"
        command = sub
    command.make_context(" ".join(names), args)   # raises on an unknown option or a bad value
    return " ".join(names)


def setting_path_exists(variable: str) -> bool:
    """LISTWATCH_STORAGE__BUCKET → storage.bucket is a field of Settings."""
    model: type[BaseModel] = Settings
    *sections, name = variable.removeprefix("LISTWATCH_").lower().split("__")
    for section in sections:
        field = model.model_fields.get(section)
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return False
        model = field.annotation
    return name in model.model_fields


def check_listwatch_environment(variables: dict[str, str], where: str) -> None:
    """Each LISTWATCH_* name is a setting, and the values together are valid settings."""
    ours = {k: v for k, v in variables.items() if k.startswith("LISTWATCH_")}
    unknown = [k for k in ours if k not in NOT_SETTINGS and not setting_path_exists(k)]
    assert not unknown, f"{where}: LISTWATCH_* variables that are no setting: {unknown}"
    saved = {k: v for k, v in os.environ.items() if k.startswith("LISTWATCH_")}
    try:
        for key in saved:
            del os.environ[key]
        os.environ.update({k: v for k, v in ours.items() if k not in NOT_SETTINGS})
        load_settings(Path("/nonexistent/listwatch.yaml"))   # raises SettingsError naming a bad value
    finally:
        for key in list(os.environ):
            if key.startswith("LISTWATCH_"):
                del os.environ[key]
        os.environ.update(saved)


# -- compose.yaml -------------------------------------------------------------------------------------------

def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_compose_services_volumes_and_dependencies_fit_together() -> None:
    data = compose()
    services, volumes = data["services"], set(data.get("volumes") or {})
    assert {"postgres", "s3", "bootstrap", "scheduler", "worker"} <= set(services)
    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on {dependency}, which is no service"
        for mount in service.get("volumes") or []:
            source = mount.split(":")[0] if ":" in mount else ""
            if source and not source.startswith(("$", ".", "/")):
                assert source in volumes, f"{name} mounts volume {source!r}, not declared under volumes:"
    assert "minio" not in json.dumps(data).lower(), "MinIO CE is not maintained: use SeaweedFS (see infra/README.md)"
    assert services["worker"]["deploy"]["replicas"], "workers are scaled with deploy.replicas / --scale"
    for name in ("postgres", "s3", "scheduler", "worker"):
        assert services[name].get("healthcheck"), f"{name} has no healthcheck"


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in compose()["services"].items():
        image = service.get("image", "")
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and re.search(r"\d", tag), \
            f"service {name}: image {image!r} is not pinned to a version"
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.MULTILINE)
    assert version and compose()["x-listwatch"]["image"] == f"listwatch:{version.group(1)}", "image tag ≠ version"
    froms = re.findall(r"^FROM\s+(\S+)", (INFRA / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE)
    assert froms and all(re.search(r":[^:]*\d", image) and not image.endswith(":latest") for image in froms), froms


def test_every_listwatch_command_line_in_compose_is_real() -> None:
    checked = []
    for service in compose()["services"].values():
        image = service.get("image", "")
        if not image.startswith("listwatch:") or "entrypoint" in service:
            continue
        argv = [interpolate(str(a), example_env()) for a in service.get("command", [])]
        checked.append(listwatch_command(argv))
        probe = (service.get("healthcheck") or {}).get("test", [])
        if probe[:2] == ["CMD", "listwatch"]:       # a health check through the CLI (the worker's)
            checked.append("healthcheck " + listwatch_command(probe[2:]))
    assert {"run", "worker", "serve", "healthcheck worker"} <= set(checked), checked


def test_every_variable_in_compose_is_a_setting_or_documented() -> None:
    env = example_env()
    text = COMPOSE.read_text(encoding="utf-8")
    used = {m.group(1) for m in _VAR.finditer(text)}
    assert used <= set(env), f"variables used in compose.yaml but not in compose.env.example: {used - set(env)}"
    for name, service in compose()["services"].items():
        variables = {k: interpolate(str(v), env) for k, v in (service.get("environment") or {}).items()}
        if service.get("image", "").startswith("listwatch:"):
            check_listwatch_environment(variables, f"compose.yaml service {name}")
    required = set(re.findall(r"\$\{(\w+):\?", text))
    empty = {k for k in re.findall(r"^([A-Z][A-Z0-9_]*)=$", ENV_EXAMPLE.read_text(encoding="utf-8"), re.MULTILINE)}
    assert required <= empty, f"required variables not listed (uncommented) in compose.env.example: {required - empty}"


def test_dockerfile_installs_what_setup_installs() -> None:
    dockerfile = (INFRA / "Dockerfile").read_text(encoding="utf-8")
    setup = (INFRA / "setup.sh").read_text(encoding="utf-8")
    for package in ("chromium", "fonts-noto-cjk"):
        assert package in setup and re.search(rf"apt-get install[^\n]*\b{package}\b", dockerfile), package
    assert "'.[postgres]'" in dockerfile
    for source in re.findall(r"^COPY\s+(.+)\s+\S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which is not in the repository"
    env_line = re.search(r"^ENV (.+?)(?:\n(?!\s))", dockerfile, re.MULTILINE | re.DOTALL)
    assert env_line
    variables = dict(re.findall(r"(\w+)=(\S+)", env_line.group(1)))
    check_listwatch_environment(variables, "infra/Dockerfile ENV")


# -- bootstrap.py against real servers ---------------------------------------------------------------------

def run_bootstrap(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LISTWATCH_")}
    return subprocess.run([sys.executable, str(INFRA / "bootstrap.py")], cwd=ROOT, env=clean | env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_bootstrap_creates_the_bucket_and_migrates_the_catalog_once(
    postgres_url: str, rclone_s3: S3Server, tmp_path: Path,  # noqa: F811
) -> None:
    postgres.reset_database(postgres_url)
    env = {"LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"), "LISTWATCH_DATA_DIR": str(tmp_path),
           "LISTWATCH_CATALOG_URL": postgres_url, **rclone_s3.settings_env("listwatch-boot")}
    first = run_bootstrap(env)
    assert first.returncode == 0, first.stderr
    assert "created bucket 'listwatch-boot'" in first.stdout
    rclone_s3.client().head_bucket(Bucket="listwatch-boot")
    engine = create_engine(postgres_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "crawl_runs"} <= tables
    again = run_bootstrap(env)
    assert again.returncode == 0, again.stderr
    assert "already exists" in again.stdout and "created" not in again.stdout


def test_bootstrap_with_a_wrong_key_fails_in_one_line_without_the_secret(
    rclone_s3: S3Server, tmp_path: Path,  # noqa: F811
) -> None:
    secret = "wrong-secret-0123456789"
    env = {"LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"), "LISTWATCH_DATA_DIR": str(tmp_path),
           **rclone_s3.settings_env("listwatch-boot"), "LISTWATCH_STORAGE__SECRET_ACCESS_KEY": secret}
    done = run_bootstrap(env)
    assert done.returncode == 1
    assert done.stderr.startswith("bootstrap: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert secret not in done.stderr + done.stdout
    assert not (tmp_path / "catalog.sqlite").exists(), "the catalog was touched although the store failed"


# -- systemd units -----------------------------------------------------------------------------------------

def unit_lines(path: Path, key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", path.read_text(encoding="utf-8"), re.MULTILINE)


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_unit_verifies_and_runs_a_real_command(unit: Path, tmp_path: Path) -> None:
    [exec_start] = unit_lines(unit, "ExecStart")
    binary, *argv = exec_start.split()
    assert binary == INSTALLED, f"{unit.name}: ExecStart should run {INSTALLED}"
    listwatch_command(argv)
    variables = dict(line.split("=", 1) for line in unit_lines(unit, "Environment"))
    check_listwatch_environment(variables, unit.name)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    # verify checks that ExecStart exists: point it at this checkout's listwatch, nothing else changes.
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text(encoding="utf-8").replace(INSTALLED, str(Path(sys.executable).parent /
                                                                             "listwatch")), encoding="utf-8")
    target = copy.with_name(copy.name.replace("@.", "@1.")) if "@." in copy.name else copy
    if target != copy:
        shutil.copy(copy, target)
    done = subprocess.run([analyze, "verify", str(target)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
