"""The one settings object, read once per process.

Sources, later wins: a TOML file (``--config`` or ``CHATOPS_CONFIG``), then environment
variables ``CHATOPS_*``. A string ``"${NAME}"`` in the file is replaced by the environment
variable ``NAME``; a missing one is a start-up error that names it. Secrets are
``SecretStr`` so they never show in a repr or a log line.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from chatops_core.errors import ConfigError
from chatops_core.models import Severity

_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class SlackSettings(BaseModel):
    """One Slack workspace (an app installed there)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["slack"] = "slack"
    bot_token: SecretStr
    signing_secret: SecretStr
    api_url: str = "https://slack.com/api/"
    bot_name: str = "incident-bot"
    default_channel: str | None = "#incidents"
    enable_notifications: bool = True
    create_incident_channels: bool = False
    notification_channels: dict[Severity, str] = Field(default_factory=dict)
    timeout: float = 10.0
    # The emoji (name without colons) that marks a message for the incident's timeline.
    timeline_reaction: str = "pushpin"
    # Archive an incident's own channel when the incident is closed.
    archive_on_close: bool = False
    # The bot's own user id, so its own messages are ignored. When None, the
    # ``authorizations[0].user_id`` and ``api_app_id`` fields of each event are used instead.
    bot_user_id: str | None = None

    @field_validator("api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"


ProviderSettings = SlackSettings
SUPPORTED_TYPES = ("slack",)


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
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    # Shortcut: with no file, the environment alone configures one Slack instance "slack".
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str | None = None

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
    def _known_types(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name, conf in value.items():
                kind = conf.get("type", "slack") if isinstance(conf, dict) else None
                if kind is not None and kind not in SUPPORTED_TYPES:
                    raise ValueError(
                        f"instance {name!r} has type {kind!r}; supported types: {', '.join(SUPPORTED_TYPES)}"
                    )
        return value

    @field_validator("providers")
    @classmethod
    def _instance_names(cls, value: dict[str, ProviderSettings]) -> dict[str, ProviderSettings]:
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
    unknown = set(raw) - {"chatops", "providers", "sla"}
    if unknown:
        raise ConfigError(
            f"configuration file {path}: unknown table(s) {', '.join(sorted(unknown))}; "
            "expected [chatops], [providers.<name>] and [sla]"
        )
    values: dict[str, Any] = dict(raw.get("chatops", {}))
    if "providers" in raw:
        values["providers"] = raw["providers"]
    if "sla" in raw:
        values["sla"] = raw["sla"]
    return values


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        parts.append(f"{loc}: {err['msg']}")
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
    if settings.slack_bot_token or settings.slack_signing_secret:
        if "slack" not in settings.providers:
            if not (settings.slack_bot_token and settings.slack_signing_secret):
                missing = (
                    "CHATOPS_SLACK_SIGNING_SECRET" if settings.slack_bot_token else "CHATOPS_SLACK_BOT_TOKEN"
                )
                raise ConfigError(
                    f"{missing} is not set; a Slack instance needs both a bot token and a signing secret"
                )
            extra: dict[str, Any] = {}
            if settings.slack_api_url:
                extra["api_url"] = settings.slack_api_url
            settings.providers["slack"] = SlackSettings(
                bot_token=settings.slack_bot_token,
                signing_secret=settings.slack_signing_secret,
                **extra,
            )
    return settings


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
