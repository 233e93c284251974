"""Calls to Discord's REST API (``{api_url}``, ``Authorization: Bot <token>``) and to the
interaction webhook (``{api_url}/webhooks/{application_id}/{token}``, no bot token), each
failure mapped onto :mod:`chatops_core.errors` by :mod:`.errors`.

A small client over httpx (connect/read/write timeouts, pooling, no hidden retries) rather
than a Discord library: the libraries are built around the Gateway and an event loop, and
the service needs a dozen calls of known shape with exact control over what a failure means.
Every call sends ``User-Agent: DiscordBot (<url>, <version>)`` as Discord asks
(https://discord.com/developers/docs/reference#user-agent).

Nothing here retries. Rate limits (https://discord.com/developers/docs/topics/rate-limits):

- a 429 is :class:`~chatops_core.errors.RateLimited` with the body's ``retry_after``
  (float seconds) and ``details["is_global"]``;
- proactively, per bucket: each answer's ``X-RateLimit-Bucket``, ``-Remaining`` and
  ``-Reset-After`` are kept per route (method and path, with the channel, guild or webhook
  as major parameter); a call on a route whose bucket is used up waits for its reset when
  that is at most :data:`MAX_BUCKET_WAIT` seconds away, else it is not sent and raises
  :class:`RateLimited` with the time left, so no 429 is spent on it;
- the global limit (50 requests a second per bot) as a least spacing between the calls of
  this client.

Both are kept per process; the delivery pacer spreads posts across processes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from chatops_core import __version__
from chatops_core.errors import ChatOpsError, ConfigError, ProviderError, RateLimited
from chatops_core.providers.discord.errors import (
    Asked,
    map_discord_response,
    map_transport_error,
    redact,
)

PROJECT_URL = "https://github.com/chatops-incidents/chatops-incidents"
USER_AGENT = f"DiscordBot ({PROJECT_URL}, {__version__})"
GLOBAL_PER_SECOND = 50
MAX_BUCKET_WAIT = 1.0
_ID_SEGMENT = re.compile(r"/[0-9]{15,21}")
_MAJOR = re.compile(r"^/(channels|guilds|webhooks)/([^/]+)(/[^/]+)?")


def _segment(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} is empty")
    return quote(value, safe="")


def route_of(method: str, path: str) -> str:
    """The rate-limit route of a call: its method and path with ids other than the major
    parameter (channel, guild, webhook id and token) written ``:id``."""
    match = _MAJOR.match(path)
    if match:
        head = match.group(0) if match.group(1) == "webhooks" else f"/{match.group(1)}/{match.group(2)}"
        rest = path[len(head) :]
    else:
        head, rest = "", path
    return f"{method} {head}{_ID_SEGMENT.sub('/:id', rest)}"


@dataclass
class _Bucket:
    remaining: int
    reset_at: float


class RateLimits:
    """Bucket state learnt from Discord's headers, and the global spacing (thread-safe)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, per_second: float = GLOBAL_PER_SECOND
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._routes: dict[str, str] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._spacing = 1.0 / per_second
        self._next_send = 0.0

    def wait_for(self, route: str) -> float:
        """Seconds until ``route`` may be called (0: now); takes the global slot when 0."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(self._routes.get(route, ""))
            if bucket is not None and bucket.remaining <= 0 and bucket.reset_at > now:
                return bucket.reset_at - now
            wait = max(0.0, self._next_send - now)
            self._next_send = max(now, self._next_send) + self._spacing
            if bucket is not None and bucket.reset_at > now:
                bucket.remaining -= 1
            return wait if wait > 0 else 0.0

    def learn(self, route: str, headers: Mapping[str, str]) -> None:
        bucket = headers.get("X-RateLimit-Bucket")
        remaining = headers.get("X-RateLimit-Remaining")
        reset_after = headers.get("X-RateLimit-Reset-After")
        if not bucket or remaining is None or reset_after is None:
            return
        try:
            left, after = int(remaining), float(reset_after)
        except ValueError:
            return
        with self._lock:
            self._routes[route] = bucket
            self._buckets[bucket] = _Bucket(remaining=left, reset_at=self._clock() + after)

    def hold(self, route: str, seconds: float) -> None:
        """After a 429 on ``route``: nothing more on its bucket for ``seconds``."""
        with self._lock:
            key = self._routes.get(route) or f"route:{route}"
            self._routes.setdefault(route, key)
            self._buckets[key] = _Bucket(remaining=0, reset_at=self._clock() + seconds)


class DiscordClient:
    """The Discord calls the provider makes, typed, each mapped onto the error tree.

    ``api_url`` is ``https://discord.com/api/v10`` (or a local server); ``token`` the bot
    token. ``transport`` replaces the network (tests); ``sleep`` is how a short wait for a
    bucket or the global limit is spent.
    """

    def __init__(
        self,
        api_url: str,
        token: str | SecretStr,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        limits: RateLimits | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        if not secret.get_secret_value().strip():
            raise ConfigError("Discord bot token is empty")
        self._api = api_url.rstrip("/")
        self._token = secret
        self._limits = limits or RateLimits()
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"DiscordClient(api_url={self._api!r})"

    def close(self) -> None:
        self._http.close()

    # -- users and the application ---------------------------------------------------------
    def me(self) -> dict[str, Any]:
        """``GET /users/@me``: the bot user (a check that the token works)."""
        return self._json("GET", "/users/@me", operation="get_current_user", asked="user")

    def user(self, user_id: str) -> dict[str, Any]:
        """``GET /users/{id}``: a user's names."""
        return self._json("GET", f"/users/{_segment(user_id, 'user_id')}", operation="get_user", asked="user")

    def bulk_overwrite_commands(
        self, application_id: str, commands: list[dict[str, Any]], guild_id: str | None = None
    ) -> list[dict[str, Any]]:
        """``PUT /applications/{id}[/guilds/{guild}]/commands``: replace every command."""
        path = f"/applications/{_segment(application_id, 'application_id')}"
        if guild_id:
            path += f"/guilds/{_segment(guild_id, 'guild_id')}"
        answer = self._request("PUT", path + "/commands", operation="bulk_overwrite_commands", body=commands)
        data = _decoded(answer, "bulk_overwrite_commands")
        if not isinstance(data, list):
            raise _malformed("bulk_overwrite_commands")
        return data

    # -- messages ----------------------------------------------------------------------------
    def create_message(self, channel_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        path = f"/channels/{_segment(channel_id, 'channel_id')}/messages"
        return self._message("POST", path, "create_message", body, asked="channel")

    def edit_message(self, channel_id: str, message_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        path = f"/channels/{_segment(channel_id, 'channel_id')}/messages/{_segment(message_id, 'message_id')}"
        return self._message("PATCH", path, "edit_message", body, asked="message")

    def get_message(self, channel_id: str, message_id: str) -> dict[str, Any]:
        path = f"/channels/{_segment(channel_id, 'channel_id')}/messages/{_segment(message_id, 'message_id')}"
        return self._message("GET", path, "get_message", None, asked="message")

    def channel_messages(self, channel_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The channel's latest messages, newest first (``GET /channels/{id}/messages``)."""
        path = f"/channels/{_segment(channel_id, 'channel_id')}/messages"
        answer = self._request(
            "GET", path, operation="get_channel_messages", asked="channel", params={"limit": str(limit)}
        )
        data = _decoded(answer, "get_channel_messages")
        if not isinstance(data, list):
            raise _malformed("get_channel_messages")
        return [m for m in data if isinstance(m, dict)]

    def pin_message(self, channel_id: str, message_id: str) -> None:
        """``PUT /channels/{id}/messages/pins/{message}`` (the form that replaced the deprecated
        ``/pins/{message}``); pinning a pinned message again is fine."""
        channel = _segment(channel_id, "channel_id")
        path = f"/channels/{channel}/messages/pins/{_segment(message_id, 'message_id')}"
        self._request("PUT", path, operation="pin_message", asked="message")

    # -- channels ------------------------------------------------------------------------------
    def guild_channels(self, guild_id: str) -> list[dict[str, Any]]:
        path = f"/guilds/{_segment(guild_id, 'guild_id')}/channels"
        data = _decoded(self._request("GET", path, operation="get_guild_channels"), "get_guild_channels")
        if not isinstance(data, list):
            raise _malformed("get_guild_channels")
        return [c for c in data if isinstance(c, dict)]

    def create_channel(self, guild_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        path = f"/guilds/{_segment(guild_id, 'guild_id')}/channels"
        return self._message("POST", path, "create_guild_channel", body)

    def get_channel(self, channel_id: str) -> dict[str, Any]:
        path = f"/channels/{_segment(channel_id, 'channel_id')}"
        return self._message("GET", path, "get_channel", None, asked="channel")

    def modify_channel(self, channel_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        path = f"/channels/{_segment(channel_id, 'channel_id')}"
        return self._message("PATCH", path, "modify_channel", body, asked="channel")

    def put_permission(self, channel_id: str, overwrite_id: str, body: Mapping[str, Any]) -> None:
        """``PUT /channels/{id}/permissions/{overwrite}``: set one permission overwrite."""
        path = _permission_path(channel_id, overwrite_id)
        self._request("PUT", path, operation="edit_channel_permissions", asked="channel", body=dict(body))

    def delete_permission(self, channel_id: str, overwrite_id: str) -> None:
        path = _permission_path(channel_id, overwrite_id)
        self._request("DELETE", path, operation="delete_channel_permission", asked="channel")

    # -- the interaction webhook ---------------------------------------------------------------
    def edit_original(self, application_id: str, token: str, body: Mapping[str, Any]) -> None:
        """``PATCH /webhooks/{app}/{token}/messages/@original``: answer a deferred interaction."""
        path = f"{self._webhook(application_id, token)}/messages/@original"
        self._request(
            "PATCH",
            path,
            operation="edit_original_response",
            asked="interaction",
            body=dict(body),
            auth=False,
        )

    def delete_original(self, application_id: str, token: str) -> None:
        path = f"{self._webhook(application_id, token)}/messages/@original"
        self._request("DELETE", path, operation="delete_original_response", asked="interaction", auth=False)

    def followup(self, application_id: str, token: str, body: Mapping[str, Any]) -> None:
        """``POST /webhooks/{app}/{token}``: another message in answer to an interaction."""
        self._request(
            "POST",
            self._webhook(application_id, token),
            operation="create_followup_message",
            asked="interaction",
            body=dict(body),
            auth=False,
        )

    # -- plumbing ------------------------------------------------------------------------------
    @staticmethod
    def _webhook(application_id: str, token: str) -> str:
        return f"/webhooks/{_segment(application_id, 'application_id')}/{_segment(token, 'token')}"

    def _message(
        self,
        method: str,
        path: str,
        operation: str,
        body: Mapping[str, Any] | None,
        *,
        asked: Asked = "other",
    ) -> dict[str, Any]:
        answer = self._request(
            method, path, operation=operation, asked=asked, body=None if body is None else dict(body)
        )
        data = _decoded(answer, operation)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise _malformed(operation)
        return data

    def _json(self, method: str, path: str, *, operation: str, asked: Asked = "other") -> dict[str, Any]:
        data = _decoded(self._request(method, path, operation=operation, asked=asked), operation)
        if not isinstance(data, dict):
            raise _malformed(operation)
        return data

    def _request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        asked: Asked = "other",
        body: Any = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        route = route_of(method, path)
        wait = self._limits.wait_for(route)
        if wait > MAX_BUCKET_WAIT:
            raise RateLimited(
                f"Discord {operation}: the route's bucket is used up, retry after {wait:.2f}s",
                retry_after=wait,
                operation=operation,
                proactive=True,
            )
        if wait > 0:
            self._sleep(wait)
            if self._limits.wait_for(route) > MAX_BUCKET_WAIT:
                raise RateLimited(f"Discord {operation}: rate limited", retry_after=MAX_BUCKET_WAIT)
        headers = {"Authorization": f"Bot {self._token.get_secret_value()}"} if auth else None
        try:
            response = self._http.request(method, self._api + path, json=body, params=params, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._redacted(map_transport_error(exc, operation=operation), path) from None
        self._limits.learn(route, response.headers)
        if response.is_success:
            return response
        error = map_discord_response(
            response.status_code, response.headers, response.content, operation=operation, asked=asked
        )
        if isinstance(error, RateLimited):
            self._limits.hold(route, error.retry_after)
        raise self._redacted(error, path)

    def _redacted(self, error: ChatOpsError, path: str) -> ChatOpsError:
        secrets = [self._token.get_secret_value()]
        if path.startswith("/webhooks/"):
            secrets += path.split("/")[3:4]  # the interaction token
        return redact(error, secrets)


def _permission_path(channel_id: str, overwrite_id: str) -> str:
    channel = _segment(channel_id, "channel_id")
    return f"/channels/{channel}/permissions/{_segment(overwrite_id, 'overwrite_id')}"


def _decoded(response: httpx.Response, operation: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise _malformed(operation) from None


def _malformed(operation: str) -> ProviderError:
    return ProviderError(
        f"Discord {operation}: the answer is not the documented JSON",
        operation=operation,
        outcome_unknown=True,
    )
