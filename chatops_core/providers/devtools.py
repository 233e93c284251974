"""Dev tools: trying the product with no chat workspace, one platform at a time.

A provider package may hold a ``devtools`` module that says how ``chatops simulate`` sends a
command as that platform would, and how a local playground plays the platform for
``chatops run`` with nothing configured. The module defines:

- ``INSTANCE: str``: the instance name the playground's configuration gives this platform
  (``slack``, ``mm``; the type's name when left out); its webhook URL is
  ``/webhooks/<INSTANCE>``.
- ``ORDER: int`` (optional, default 100): where the platform comes among the playgrounds;
  the first configured instance is the one ``chatops simulate`` uses with no ``--provider``.
- ``simulated_request(settings, text, *, user, channel_id, channel_name, reply_url, trigger,
  command) -> (body, headers, content_type)``: a command request signed (or carrying its
  token) as the platform sends it. ``settings`` is the instance's settings model, ``text``
  what the person typed after the command (``declare sev2 Database timeouts``), ``command``
  the command itself (``/im``), ``user`` an :class:`~chatops_core.models.Actor` (the id as
  ``--user`` or ``DEFAULT_USER_ID`` gives it, the name as ``--user-name`` does),
  ``channel_id`` the channel typed in (None: the platform's own default), ``reply_url`` where
  the bot's answer is to be posted (the platform's response URL) and ``trigger`` the id that
  lets the bot open a form.
- ``answer_lines(answer, channel_name, names) -> list[str]`` (optional): what the person sees
  of an answer posted to ``reply_url`` (a JSON object), as terminal lines, ``names`` mapping
  the ids the playground knows to names; by default a heading and the answer's ``text``.
- ``response_answer(body, content_type) -> dict | None`` (optional): the answer the
  webhook's own HTTP response carries, for a platform that shows only that (a Teams outgoing
  webhook); printed with ``answer_lines``. With ``"pending": true`` it is a notice that the
  result follows, which ``simulate`` then waits for at the reply URL as usual.
- ``new_trigger() -> str`` (optional): a fresh ``trigger`` as the platform shapes it.
- ``DEFAULT_USER_ID`` (optional): the simulated person's user id when ``--user`` gives none,
  shaped as the platform's ids.
- ``Playground``: a class built as ``Playground(data_dir, out=print_line)`` (``data_dir``
  where it may keep state across restarts; left out when its constructor takes none) with
  ``start()``, ``stop()``, ``url`` (its base URL), ``api_url`` (where the provider's client
  is pointed) and ``config_toml(instance) -> str``, the ``[providers.<instance>]`` table that
  points an instance at it.

A playground that also answers ``POST {url}/playground/session`` and
``GET {url}/playground/names`` lets ``simulate`` type in its channels by name and show names
rather than ids. The session request is JSON ``{"user_id", "user_name", "channel_id",
"channel_name", "trigger", "forward_url"}`` (who types where, the trigger of their command,
and where ``simulate`` listens); the answer is ``{"channel_id", "channel_name",
"reply_url"}``: the channel typed in, and a reply URL on the playground that prints each
answer posted to it and passes it on to ``forward_url``. The names answer maps ids to names.

Packages are found by themselves (:func:`discover_devtools`): a platform with a ``devtools``
module gets ``simulate`` and a playground with no change anywhere else.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import secrets
import sys
import threading
import urllib.request
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

from chatops_core.errors import ConfigError
from chatops_core.models import Actor
from chatops_core.providers.config import ProviderSettingsBase
from chatops_core.providers.registry import provider_packages

# The simulate side of a playground (see the module's docstring).
SESSION_PATH = "/playground/session"
NAMES_PATH = "/playground/names"
# Under the data directory: the configuration `chatops run` writes for its playgrounds, and
# each playground instance's base URL while it serves.
PLAYGROUND_CONFIG = "playground.toml"
PLAYGROUND_URLS = "playgrounds.json"
DEFAULT_ORDER = 100

SimulatedRequest = tuple[bytes, dict[str, str], str]


class Playground(Protocol):
    """A local stand-in for one platform's API (see the module's docstring)."""

    @property
    def url(self) -> str: ...

    @property
    def api_url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def config_toml(self, instance: str) -> str: ...


class DevTools:
    """One platform's dev tools: its ``devtools`` module, with the defaults of what it leaves out."""

    def __init__(self, type_name: str, module: ModuleType) -> None:
        self.type = type_name
        self._module = module
        instance = getattr(module, "INSTANCE", type_name)
        if not isinstance(instance, str) or not instance:
            raise TypeError(f"{module.__name__}.INSTANCE must name the playground's instance")
        self.instance = instance
        self.order = int(getattr(module, "ORDER", DEFAULT_ORDER))
        self.default_user_id = str(getattr(module, "DEFAULT_USER_ID", "simulator"))

    @property
    def has_playground(self) -> bool:
        return hasattr(self._module, "Playground")

    def simulated_request(
        self,
        settings: ProviderSettingsBase,
        text: str,
        *,
        user: Actor,
        channel_id: str | None,
        channel_name: str,
        reply_url: str,
        trigger: str,
        command: str,
    ) -> SimulatedRequest:
        """The command request the platform would send (see the module's docstring)."""
        body, headers, content_type = self._module.simulated_request(
            settings,
            text,
            user=user,
            channel_id=channel_id,
            channel_name=channel_name,
            reply_url=reply_url,
            trigger=trigger,
            command=command,
        )
        return bytes(body), dict(headers), str(content_type)

    def new_trigger(self) -> str:
        make = getattr(self._module, "new_trigger", None)
        return str(make()) if make is not None else secrets.token_hex(16)

    def answer_lines(self, answer: dict[str, Any], channel_name: str, names: Mapping[str, str]) -> list[str]:
        """What the person sees of an answer posted to the reply URL."""
        show = getattr(self._module, "answer_lines", None)
        if show is not None:
            return list(show(answer, channel_name, names))
        return ["bot:", *str(answer.get("text") or "").splitlines()]

    def response_answer(self, body: bytes, content_type: str) -> dict[str, Any] | None:
        """The answer the webhook's HTTP response carries, where the platform answers there."""
        read = getattr(self._module, "response_answer", None)
        if read is None:
            return None
        answer = read(body, content_type)
        return dict(answer) if isinstance(answer, Mapping) else None

    def playground(self, data_dir: Path | None, out: Callable[[str], None] | None = None) -> Playground:
        """A new (not yet started) playground of this platform."""
        make = self._module.Playground
        if "data_dir" in inspect.signature(make).parameters:
            return cast(Playground, make(data_dir=data_dir, out=out))
        return cast(Playground, make(out=out))


@cache
def discover_devtools() -> dict[str, DevTools]:
    """The dev tools of every provider package that has them, by type, in their order."""
    found: list[DevTools] = []
    for kind, package in provider_packages().items():
        name = f"{package.package}.devtools"
        if importlib.util.find_spec(name) is None:
            continue
        found.append(DevTools(kind, importlib.import_module(name)))
    found.sort(key=lambda tools: (tools.order, tools.type))
    instances = [tools.instance for tools in found]
    if len(set(instances)) != len(instances):
        raise TypeError(f"two platforms' dev tools name the same playground instance: {instances}")
    return {tools.type: tools for tools in found}


def devtools_for(type_name: str) -> DevTools | None:
    """The dev tools of platform ``type_name``, None when it has none."""
    return discover_devtools().get(type_name)


def start_playgrounds(
    data_dir: Path,
    out: Callable[[str], None] | None = None,
    *,
    skipped: Callable[[str, ConfigError], None] | None = None,
) -> dict[str, Playground]:
    """Start the playground of every platform that has one; by instance name, in order.

    A playground that cannot run here says so with a :class:`ConfigError` (say, one that
    needs a source checkout); it is left out, and ``skipped`` is told its type and why.
    """
    started: dict[str, Playground] = {}
    try:
        for tools in discover_devtools().values():
            if not tools.has_playground:
                continue
            try:
                playground = tools.playground(data_dir, out)
            except ConfigError as exc:
                if skipped is not None:
                    skipped(tools.type, exc)
                continue
            playground.start()
            started[tools.instance] = playground
    except BaseException:
        for playground in started.values():
            playground.stop()
        raise
    return started


def write_playground_config(
    data_dir: Path, playgrounds: Mapping[str, Playground], public_url: str | None
) -> Path:
    """The configuration of one instance per playground (by instance name), and where each
    playground serves (for ``chatops simulate``). Both files are readable by the owner only:
    the configuration holds the playgrounds' secrets."""
    lines = ["[chatops]"]
    if public_url:
        lines.append(f"public_url = {json.dumps(public_url)}")
    text = "\n".join(lines) + "\n"
    for instance, playground in playgrounds.items():
        text += "\n" + playground.config_toml(instance).strip("\n") + "\n"
    path = data_dir / PLAYGROUND_CONFIG
    _write_private(path, text)
    urls = {instance: playground.url for instance, playground in playgrounds.items()}
    _write_private(data_dir / PLAYGROUND_URLS, json.dumps(urls) + "\n")
    return path


def playground_config(data_dir: Path) -> Path | None:
    """The playgrounds' configuration a `chatops run` wrote under ``data_dir``, if any."""
    path = data_dir / PLAYGROUND_CONFIG
    return path if path.exists() else None


def playground_urls(data_dir: Path) -> dict[str, str]:
    """Each playground instance's base URL, as the last `chatops run` wrote them."""
    try:
        found = json.loads((data_dir / PLAYGROUND_URLS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k): str(v) for k, v in found.items() if isinstance(v, str)}


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


# Sessions of `chatops simulate` a playground remembers at the most.
MAX_SESSIONS = 200
# How long a playground waits for `chatops simulate` to take an answer it passes on.
FORWARD_TIMEOUT_SECONDS = 5.0


def print_line(line: str) -> None:
    """A playground's printed line, on the console at once."""
    print(line, flush=True)


def forward_answer(url: str, body: Any) -> None:
    """Pass ``body`` (as JSON) on to the `chatops simulate` that waits at ``url``; one that is
    gone (or a URL that is no URL) is no error."""
    try:
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT_SECONDS) as resp:  # noqa: S310 - local
            resp.read()
    except (OSError, ValueError):
        pass


def keep_latest(kept: dict[str, Any], most: int) -> None:
    """Drop the oldest entries of ``kept`` (in insertion order) beyond ``most``."""
    while len(kept) > most:
        kept.pop(next(iter(kept)))


class SessionRefused(Exception):
    """A session request a playground cannot serve: the HTTP status and the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LocalPlayground:
    """What the playgrounds built on the test suite's local server of their platform share.

    A subclass calls ``super().__init__(platform, host, out, name)`` (a playground listens on
    127.0.0.1 only; ``out`` receives each printed line, :func:`print_line` by default; ``name``
    prefixes each line), then sets ``_server``: the local server, with ``start()``, ``stop()``,
    ``url`` and ``api_url``. It answers the simulate side of the playground with
    :meth:`open_session` and :meth:`names`; :meth:`own_answer` serves both, for the server's
    request handler to ask before it plays the platform.
    """

    _server: Any

    def __init__(self, platform: str, host: str, out: Callable[[str], None] | None, name: str) -> None:
        if host != "127.0.0.1":
            raise ConfigError(f"the {platform} playground listens on 127.0.0.1 only")
        self._out = out or print_line
        self._name = name
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        """The local server's base URL."""
        return str(self._server.url)

    @property
    def api_url(self) -> str:
        """Where the provider's client is pointed."""
        return str(self._server.api_url)

    @property
    def server(self) -> Any:
        """The platform's stand-in itself: its users, channels, posts, and the requests it builds."""
        return self._server

    # -- simulate's side -----------------------------------------------------------------
    def names(self) -> dict[str, str]:
        """Every user and channel id the playground knows, with its name."""
        raise NotImplementedError

    def open_session(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Register a `chatops simulate` run (see the module's docstring); raises
        :class:`SessionRefused` for one it cannot serve."""
        raise NotImplementedError

    def own_answer(self, method: str, path: str, raw: bytes) -> tuple[int, Any, dict[str, str]] | None:
        """The answer to a request of the simulate side (a session, the names), None for any
        other request (the platform's own)."""
        if path == SESSION_PATH and method == "POST":
            return self._session_answer(raw)
        if path == NAMES_PATH and method == "GET":
            return 200, self.names(), {}
        return None

    def _session_answer(self, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            return 400, {"message": "a JSON object is expected"}, {}
        try:
            return 200, self.open_session(request), {}
        except SessionRefused as exc:
            return exc.status, {"message": exc.message}, {}

    # -- printing ------------------------------------------------------------------------
    def _say(self, lines: list[str]) -> None:
        with self._lock:
            for line in lines:
                self._out(line)


# The checkout this package runs from, when it runs from one (``make run``).
_CHECKOUT = Path(__file__).resolve().parents[2]


def local_server_module(module: str, platform: str) -> ModuleType:
    """The test suite's local server of ``platform`` (``tests.fakes.<name>``), for a playground.

    Playgrounds run from a source checkout, as ``make run`` does: when ``tests`` is not on the
    import path (``chatops run`` started from another directory), the checkout is put there.
    Raises :class:`ConfigError` outside a checkout.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        pass
    if not (_CHECKOUT / Path(*module.split("."))).with_suffix(".py").is_file():
        raise ConfigError(
            f"the {platform} playground runs from a source checkout (it is the test suite's local "
            f"{platform}); run `make run` from the repository"
        )
    sys.path.insert(0, str(_CHECKOUT))
    importlib.invalidate_caches()
    return importlib.import_module(module)


def local_server_available(module: str) -> bool:
    """Whether :func:`local_server_module` can load ``module``."""
    try:
        if importlib.util.find_spec(module) is not None:
            return True
    except ImportError:
        pass
    return (_CHECKOUT / Path(*module.split("."))).with_suffix(".py").is_file()
