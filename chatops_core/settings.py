"""The one settings object, read once per process.

Sources, later wins: a TOML file (``--config`` or ``CHATOPS_CONFIG``), then environment
variables ``CHATOPS_*``. A string ``"${NAME}"`` in the file is replaced by the environment
variable ``NAME``; a missing one is a start-up error that names it. Secrets are
``SecretStr`` so they never show in a repr or a log line.

Each ``[providers.<name>]`` table is read by the settings model of its ``type``, owned by that
platform's package (``chatops_core/providers/<type>/config.py``); the types are those of the
provider packages found, so a new platform needs no change here. With no instance of that name
configured, a type may also configure one instance from the environment alone
(``CHATOPS_SLACK_BOT_TOKEN`` and ``CHATOPS_SLACK_SIGNING_SECRET`` make one named ``slack``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializeAsAny,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from chatops_core import redaction
from chatops_core.access.settings import AccessSettings
from chatops_core.api_tokens import ApiSettings
from chatops_core.errors import ConfigError
from chatops_core.models import Severity
from chatops_core.providers.config import ProviderSettingsBase, provider_type_of
from chatops_core.providers.registry import settings_models, unsupported_type

_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@cache
def _provider_tables() -> TypeAdapter[dict[str, ProviderSettingsBase]]:
    """Validates ``[providers.*]`` tables: each by the model its ``type`` names, among the
    provider packages found (a union discriminated by ``type``)."""
    models = tuple(settings_models().values())
    choice: Any = Union.__getitem__(models) if len(models) > 1 else models[0]
    return TypeAdapter(dict[str, Annotated[choice, Field(discriminator="type")]])


def _default_ack_minutes() -> dict[Severity, float]:
    return {Severity.SEV1: 5, Severity.SEV2: 15, Severity.SEV3: 60, Severity.SEV4: 240}


class SlaSettings(BaseModel):
    """Acknowledgement SLA: an open incident not acknowledged in time is announced as breached.

    ``ack_minutes`` gives the minutes allowed per severity; a severity missing from it has
    no SLA (a ``[sla.ack_minutes]`` table replaces the defaults as a whole).
    ``check_interval_seconds`` is how often the periodic check runs.
    """

    model_config = ConfigDict(extra="forbid")

    ack_minutes: dict[Severity, Annotated[float, Field(gt=0)]] = Field(default_factory=_default_ack_minutes)
    check_interval_seconds: float = Field(default=30, gt=0)


class RedactionSettings(BaseModel):
    """Secrets kept out of chat, answers, cards and logs (see :mod:`chatops_core.redaction`).

    ``patterns``: regular expressions redacted beside the built-in detectors (the whole match,
    or its group named ``secret``). ``keep_original_in_timeline``: the incident record (its
    timeline, title, resolution) keeps what people wrote; chat and logs still get the
    redacted text. Off by default: what is stored is the redacted text.
    """

    model_config = ConfigDict(extra="forbid")

    patterns: list[str] = Field(default_factory=list)
    keep_original_in_timeline: bool = False

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for index, pattern in enumerate(value):
            problem = redaction.pattern_problem(pattern)
            if problem:
                # The index, not the pattern: a pattern may spell out the secret it hides.
                raise ValueError(f"pattern [{index}] {problem}")
        return value


class Settings(BaseSettings):
    """Process settings. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(env_prefix="CHATOPS_", extra="forbid", env_nested_delimiter=None)

    public_url: str | None = None
    incident_url: str | None = None
    api_token: SecretStr | None = None
    broker_url: str | None = None
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    data_dir: Path = Path("var")
    root_command: str = "/im"
    max_body_bytes: int = 1024 * 1024
    dedupe_ttl_seconds: int = 3600
    # How long a task taken by a worker that died (or lost its broker connection) stays
    # invisible before another worker gets it (Redis broker). It must be longer than a worker
    # holds a task: a command or delivery runs for seconds (a few platform calls, 10 s timeout
    # each), and a task retried with a countdown is held unacknowledged until it is due, for
    # at most workers.retry.CAP_SECONDS (180 s). 300 s leaves two minutes of margin over both,
    # and brings a dead worker's tasks back within about six minutes (with the sweep, a
    # quarter of the timeout capped at 60 s), rather than an hour.
    visibility_timeout_seconds: int = Field(default=300, ge=1)
    # How often the maintenance worker looks for tasks a worker took off the broker and died
    # with before noting them (workers.redis_transport.sweep_sent); such a task comes back
    # within the visibility timeout and three times this (8 minutes by default).
    sent_sweep_seconds: int = Field(default=60, ge=1)
    # Tasks each pool process of a worker serving the notifications queue alone holds: the
    # one it runs and the ones handed to it to run next (workers.celery_app.pipeline_pool).
    # Above 1, the worker's own work for the next task (acknowledging the last, fetching and
    # handing over the next) overlaps the delivery running; 1 hands a task over only once
    # the process is free.
    notifications_prefetch: int = Field(default=2, ge=1, le=16)
    # Instance name -> its settings, each the model of its provider type (providers/<type>/config.py).
    providers: dict[str, SerializeAsAny[ProviderSettingsBase]] = Field(default_factory=dict)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    # Who may do what: roles, the least role per command word, rate limits ([access]).
    access: AccessSettings = Field(default_factory=AccessSettings)
    # Secrets kept out of what the service says ([redaction]).
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    # Named, hashed API tokens with scopes, and the optional /metrics token ([api]);
    # `api_token` above stays a token with every scope (chatops_core.api_tokens).
    api: ApiSettings = Field(default_factory=ApiSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: it wins over the file (passed as init values).
        return (env_settings, init_settings)

    @field_validator("providers", mode="before")
    @classmethod
    def _typed_providers(cls, value: Any) -> Any:
        """Each table read by the model of its ``type``; a model given as it is stays as it is."""
        if not isinstance(value, Mapping):
            return value
        models = settings_models()
        tables: dict[str, Any] = {}
        for name, conf in value.items():
            if isinstance(conf, ProviderSettingsBase):
                continue
            kind = provider_type_of(conf)
            if isinstance(conf, Mapping) and kind not in models:
                raise ValueError(str(unsupported_type(str(name), conf.get("type"))))
            tables[name] = conf
        typed = _provider_tables().validate_python(tables) if tables else {}
        return {name: typed.get(name, conf) for name, conf in value.items()}

    @field_validator("providers")
    @classmethod
    def _instance_names(cls, value: dict[str, ProviderSettingsBase]) -> dict[str, ProviderSettingsBase]:
        for name in value:
            if not _INSTANCE_NAME.match(name):
                raise ValueError(
                    f"provider instance name {name!r} must be lowercase letters, digits, '-' or '_'"
                )
        return value

    def effective_broker_url(self) -> str:
        if not self.broker_url:
            raise ConfigError("no broker: set CHATOPS_BROKER_URL (or use `chatops run`)")
        return self.broker_url

    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'chatops.db').resolve()}"

    def webhook_url(self, instance: str) -> str:
        base = self.public_url or f"http://{self.host}:{self.port}"
        return f"{base.rstrip('/')}/webhooks/{instance}"

    def public_webhook_url(self, instance: str) -> str | None:
        """Where the platform reaches ``instance`` from outside, when ``public_url`` says; None
        otherwise (a button aimed at this host's loopback address would fail silently)."""
        return self.webhook_url(instance) if self.public_url else None

    def incident_link(self, incident_id: str) -> str | None:
        if not self.incident_url:
            return None
        return self.incident_url.replace("{id}", incident_id)


def _expand(value: Any, environ: Mapping[str, str], where: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, environ, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        match = _REF.match(value)
        if match:
            name = match.group(1)
            if name not in environ:
                raise ConfigError(
                    f"configuration value {where} refers to environment variable {name}, which is not set"
                )
            return environ[name]
    return value


def _read_file(path: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
    raw = _expand(raw, environ, "")
    unknown = set(raw) - {"chatops", "providers", "sla", "access", "redaction", "api"}
    if unknown:
        raise ConfigError(
            f"configuration file {path}: unknown table(s) {', '.join(sorted(unknown))}; "
            "expected [chatops], [providers.<name>], [sla], [access], [redaction] and [api]"
        )
    values: dict[str, Any] = dict(raw.get("chatops", {}))
    if "providers" in raw:
        values["providers"] = raw["providers"]
    if "sla" in raw:
        values["sla"] = raw["sla"]
    if "access" in raw:
        values["access"] = raw["access"]
    if "redaction" in raw:
        values["redaction"] = raw["redaction"]
    if "api" in raw:
        values["api"] = raw["api"]
    return values


def _describe(exc: ValidationError) -> str:
    parts = []
    types = set(settings_models())
    for err in exc.errors():
        loc = list(err["loc"])
        # A provider table's errors carry the type that chose its model after the instance
        # name ("providers.slack.slack.bot_token"); the type is the table's own key already.
        if len(loc) >= 3 and loc[0] == "providers" and loc[2] in types:
            del loc[2]
        where = ".".join(str(p) for p in loc) or "settings"
        message = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "invalid configuration: " + "; ".join(parts)


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from a TOML file and the environment.

    Raises :class:`ConfigError` with a message that says what to fix.
    """
    env = os.environ if environ is None else environ
    path = config_path or env.get("CHATOPS_CONFIG")
    values = _read_file(Path(path), env) if path else {}
    try:
        if environ is None:
            settings = Settings(**values)
        else:
            settings = _with_environ(values, env)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    _add_env_instances(settings, env)
    # The process's redactor, for what has no settings at hand (log records, cards).
    redaction.install(redaction.Redactor.from_settings(settings.redaction))
    return settings


def _add_env_instances(settings: Settings, env: Mapping[str, str]) -> None:
    """Add the instance each provider type's environment variables configure alone
    (``CHATOPS_SLACK_BOT_TOKEN``...: an instance named ``slack``), unless an instance of that
    name is configured already."""
    for kind, model in settings_models().items():
        if kind in settings.providers:
            continue
        found = model.from_env(env)
        if found is not None:
            settings.providers[kind] = found


def _with_environ(values: dict[str, Any], environ: Mapping[str, str]) -> Settings:
    """Build settings against an explicit environment (tests, child processes)."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(environ)
        return Settings(**values)
    finally:
        os.environ.clear()
        os.environ.update(saved)
