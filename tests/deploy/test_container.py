"""The container files (Dockerfile, compose.yaml, deploy/chatops.env.example) against the code.

No image is built here: the tests read the files and check that what they run and set exists —
each `chatops …` command line parses with the CLI's own parser, each CHATOPS_* variable is a
setting, each queue is one the workers serve, the healthcheck's path is served by the ingress,
no secret is written inline, and Flower's app module imports with the compose environment.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import SecretStr

from chatops_core.cli import build_parser
from chatops_core.settings import Settings, load_settings
from chatops_core.tasks import QUEUES
from ingress.app import create_app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# The services that run the project's image (built from the Dockerfile).
IMAGE_SERVICES = {name: svc for name, svc in SERVICES.items() if "build" in svc}
ENV_EXAMPLE = ROOT / "deploy" / "chatops.env.example"
CONFIG_EXAMPLE = ROOT / "deploy" / "chatops.example.toml"
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|AUTH|CREDENTIAL|_KEY$", re.IGNORECASE)
REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$")
HEALTH_URL = re.compile(r"https?://[^/'\"\s]+(/[\w./-]*)")


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, (INSTRUCTION, rest), continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        keyword, _, rest = (current + stripped).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def instruction_values(keyword: str) -> list[str]:
    return [rest for kw, rest in dockerfile() if kw == keyword]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in instruction_values("ENV"):
        for word in shlex.split(rest):
            name, _, value = word.partition("=")
            env[name] = value
    return env


def exec_form(rest: str) -> list[str]:
    value = yaml.safe_load(rest)  # a JSON array is YAML
    assert isinstance(value, list), f"not in exec form: {rest}"
    return [str(v) for v in value]


def env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=VALUE: {line}"
            values[name.strip()] = value.strip()
    return values


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def chatops_argvs() -> dict[str, list[str]]:
    """Every `chatops …` command line the image runs: its default, and each compose service's."""
    entrypoint = exec_form(instruction_values("ENTRYPOINT")[-1])
    default_cmd = exec_form(instruction_values("CMD")[-1])
    argvs = {"Dockerfile CMD": entrypoint + default_cmd}
    for name, svc in IMAGE_SERVICES.items():
        service_entrypoint = as_list(svc["entrypoint"]) if "entrypoint" in svc else entrypoint
        if service_entrypoint == ["chatops"]:
            argvs[name] = service_entrypoint + (as_list(svc["command"]) if "command" in svc else default_cmd)
    return argvs


def setting_variables() -> set[str]:
    """The CHATOPS_* names Settings reads: one per field, plus CHATOPS_CONFIG (the file)."""
    prefix = Settings.model_config["env_prefix"]
    return {f"{prefix}{name}".upper() for name in Settings.model_fields} | {f"{prefix}CONFIG"}


def secret_variables() -> set[str]:
    prefix = Settings.model_config["env_prefix"]
    return {
        f"{prefix}{name}".upper()
        for name, field in Settings.model_fields.items()
        if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
    }


def config_mount(service: dict[str, Any]) -> dict[str, Any]:
    target = environment(service)["CHATOPS_CONFIG"]
    mounts = [m for m in service.get("volumes", []) if isinstance(m, dict) and m.get("target") == target]
    assert mounts, f"nothing is mounted at CHATOPS_CONFIG={target}"
    return mounts[0]


def settings_env(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as compose gives it, with the shipped examples for the files an
    operator copies: chatops.env from deploy/chatops.env.example, the configuration file from
    deploy/chatops.example.toml."""
    assert service.get("env_file") == "chatops.env"
    env = {**env_file(ENV_EXAMPLE), **environment(service)}
    env["CHATOPS_CONFIG"] = str(CONFIG_EXAMPLE)
    return env


def test_the_dockerfile_is_multi_stage_slim_and_runs_as_a_user() -> None:
    froms = instruction_values("FROM")
    assert len(froms) >= 2
    assert any(rest.startswith("--from=") for rest in instruction_values("COPY"))
    args = dict(rest.partition("=")[::2] for rest in instruction_values("ARG"))
    runtime = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], froms[-1].split()[0])
    assert runtime == "python:3.11-slim"
    user = instruction_values("USER")[-1].split(":")[0]
    assert user not in ("root", "0")
    assert instruction_values("EXPOSE") == [str(Settings.model_fields["port"].default)]
    assert dockerfile_env()["CHATOPS_HOST"] == "0.0.0.0"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["chatops"] == "chatops_core.cli:main"
    assert exec_form(instruction_values("ENTRYPOINT")[-1]) == ["chatops"]
    assert exec_form(instruction_values("CMD")[-1]) == ["ingress"]


@pytest.mark.parametrize("where", sorted(chatops_argvs()))
def test_every_chatops_command_exists(where: str) -> None:
    argv = chatops_argvs()[where]
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"{where}: `{shlex.join(argv)}` is not a command the CLI has")
    assert callable(args.func)


def test_every_process_of_the_stack_is_there() -> None:
    commands = {tuple(argv[1:2]) for where, argv in chatops_argvs().items() if where in IMAGE_SERVICES}
    assert {("ingress",), ("worker",), ("beat",), ("db",)} <= commands
    migrate = [n for n, argv in chatops_argvs().items() if argv[1:] == ["db", "upgrade"]]
    assert migrate, "no service runs `chatops db upgrade`"
    for name, svc in IMAGE_SERVICES.items():
        if name in migrate:
            assert svc.get("restart") == "no"
            continue
        assert svc["restart"] in ("always", "unless-stopped", "on-failure")
        conditions = {dep: spec["condition"] for dep, spec in svc["depends_on"].items()}
        assert all(conditions[m] == "service_completed_successfully" for m in migrate), name
        assert conditions["redis"] == conditions["postgres"] == "service_healthy", name
    beat = [n for n, argv in chatops_argvs().items() if argv[1:] == ["beat"]]
    assert len(beat) == 1 and SERVICES[beat[0]]["deploy"]["replicas"] == 1


def test_one_worker_pool_per_queue() -> None:
    pools: dict[str, str] = {}
    for name, argv in chatops_argvs().items():
        if name in IMAGE_SERVICES and argv[1] == "worker":
            queues = build_parser().parse_args(argv[1:]).queues.split(",")
            assert len(queues) == 1, f"{name} serves {queues}: one queue per pool, scaled on its own"
            assert queues[0] in QUEUES, f"{name}: no queue {queues[0]!r}; the queues are {QUEUES}"
            assert queues[0] not in pools, f"{name} and {pools.get(queues[0])} serve one queue"
            pools[queues[0]] = name
    assert set(pools) == set(QUEUES)
    notifications = build_parser().parse_args(chatops_argvs()[pools["notifications"]][1:])
    assert notifications.concurrency == 8


def test_workers_get_time_to_finish_a_task_in_flight() -> None:
    for name, argv in chatops_argvs().items():
        if name in IMAGE_SERVICES and argv[1] == "worker":
            grace = re.fullmatch(r"(\d+)s", SERVICES[name]["stop_grace_period"])
            assert grace and int(grace.group(1)) >= 30, name


def test_every_chatops_variable_is_a_setting() -> None:
    known = setting_variables()
    assert {"CHATOPS_BROKER_URL", "CHATOPS_DATABASE_URL", "CHATOPS_API_TOKEN", "CHATOPS_HOST"} <= known
    set_in = {"Dockerfile": dockerfile_env(), ENV_EXAMPLE.name: env_file(ENV_EXAMPLE)}
    set_in.update({name: environment(svc) for name, svc in SERVICES.items()})
    for where, env in set_in.items():
        unknown = {v for v in env if v.upper().startswith("CHATOPS_")} - known
        assert not unknown, f"{where} sets {sorted(unknown)}, which no setting reads"


def test_the_compose_environment_loads_as_settings() -> None:
    for name, svc in IMAGE_SERVICES.items():
        mount = config_mount(svc)
        assert mount["read_only"] is True and mount["source"] == "./chatops.toml", name
        settings = load_settings(environ=settings_env(svc))
        assert urlsplit(settings.effective_broker_url()).hostname in SERVICES, name
        assert urlsplit(settings.effective_database_url()).hostname in SERVICES, name
        assert settings.api_token is not None and settings.providers, name


def test_the_database_url_matches_the_postgres_service() -> None:
    secrets = env_file(ENV_EXAMPLE)
    url = urlsplit(secrets["CHATOPS_DATABASE_URL"])
    postgres = environment(SERVICES["postgres"])
    assert url.hostname == "postgres" and url.username == postgres["POSTGRES_USER"]
    assert url.password == secrets["POSTGRES_PASSWORD"]
    assert url.path == "/" + postgres["POSTGRES_DB"]
    assert SERVICES["postgres"]["env_file"] == "chatops.env"


def test_the_env_example_gives_every_variable_the_example_config_refers_to() -> None:
    def references(value: Any) -> set[str]:
        if isinstance(value, dict):
            return set().union(*map(references, value.values()))
        if isinstance(value, list):
            return set().union(*map(references, value))
        found = REFERENCE.match(value) if isinstance(value, str) else None
        return {value[2:-1]} if found else set()

    referred = references(tomllib.loads(CONFIG_EXAMPLE.read_text(encoding="utf-8")))
    assert referred and referred <= set(env_file(ENV_EXAMPLE))


def test_no_secret_is_written_inline() -> None:
    inline = {"Dockerfile": dockerfile_env()} | {n: environment(s) for n, s in SERVICES.items()}
    for where, env in inline.items():
        for variable, value in env.items():
            if SECRET_NAME.search(variable) or variable in secret_variables():
                assert REFERENCE.match(value), f"{where}: {variable} is written inline; use chatops.env"
            if "://" in value and not REFERENCE.match(value):
                assert urlsplit(value).password is None, f"{where}: {variable} has a password inline"
    assert not (set(secret_variables()) & set().union(*(environment(s) for s in SERVICES.values())))


def test_the_healthchecks_probe_what_exists() -> None:
    (docker_check,) = instruction_values("HEALTHCHECK")
    assert "curl" not in docker_check and "wget" not in docker_check
    ingress = [n for n, argv in chatops_argvs().items() if n in IMAGE_SERVICES and argv[1] == "ingress"]
    assert len(ingress) == 1
    compose_check = " ".join(as_list(SERVICES[ingress[0]]["healthcheck"]["test"]))
    settings = load_settings(environ=settings_env(SERVICES[ingress[0]]))
    client = create_app(settings).test_client()
    for check in (docker_check, compose_check):
        paths = HEALTH_URL.findall(check)
        assert paths, check
        for path in paths:
            assert client.get(path).status_code == 200, f"{path} is not served: {check}"
    assert "CHATOPS_PORT" in docker_check, "the image's check must follow the port setting"
    assert f"127.0.0.1:{settings.port}/" in compose_check
    for name in ("redis", "postgres"):
        assert SERVICES[name]["healthcheck"]["test"]
    for name, svc in IMAGE_SERVICES.items():
        if name not in ingress:
            assert svc["healthcheck"] == {"disable": True}, f"{name} would probe /healthz it does not serve"


def test_flower_runs_the_celery_app() -> None:
    (flower,) = [s for s in IMAGE_SERVICES.values() if "flower" in as_list(s.get("command"))]
    argv = as_list(flower["entrypoint"]) + as_list(flower["command"])
    assert argv[:1] == ["celery"] and "flower" in argv
    module = argv[argv.index("-A") + 1]
    assert "127.0.0.1:5555:5555" in flower["ports"] or "5555:5555" in flower["ports"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")} | settings_env(flower)
    code = (
        f"import celery, importlib; assert isinstance(importlib.import_module({module!r}).app, celery.Celery)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_the_build_context_has_what_the_image_copies_and_no_secret() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def sent(path: str) -> bool:  # the last pattern that matches decides, as for docker build
        keep = True
        for pattern in patterns:
            if fnmatch.fnmatch(path, pattern.removeprefix("!")):
                keep = pattern.startswith("!")
        return keep

    copied = [
        source
        for rest in instruction_values("COPY")
        if not rest.startswith("--from=")
        for source in shlex.split(rest)[:-1]
    ]
    assert copied and all(sent(source.removesuffix("/")) for source in copied)
    for private in ("chatops.env", "chatops.toml", ".venv", "var", ".git", "tests"):
        assert not sent(private), f"{private} would be sent to the image build"
