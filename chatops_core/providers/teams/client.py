"""HTTP calls to Microsoft Teams: incoming webhooks, the Bot Connector API and its tokens.

- **Incoming webhooks**: a JSON POST to the channel's secret URL. A Workflows URL answers
  202 (the flow runs later); a legacy connector answers 200 with ``1``, or 200 with a body
  reporting a 429 when throttled, which is raised as :class:`~chatops_core.errors.RateLimited`.
- **Bot Connector** (bot mode): ``POST {serviceUrl}v3/conversations/{id}/activities`` to post,
  ``POST .../activities/{activityId}`` to reply in that activity's thread, and
  ``PUT .../activities/{activityId}`` to update in place, with ``Authorization: Bearer`` a token
  of the bot's own
  (https://learn.microsoft.com/en-us/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference).
- **Tokens**: OAuth2 client credentials (``client_id`` = app id, ``client_secret`` = app
  password, ``scope`` ``https://api.botframework.com/.default``) at ``token_url``
  (https://learn.microsoft.com/en-us/azure/bot-service/rest-api/bot-framework-rest-connector-authentication#bot-to-connector).
  :class:`TokenCache` keeps each token until shortly before it expires, one per process and
  bot (keyed by token URL, app id and a digest of the password), behind a lock so threads of a
  worker share one request.

Why a small client and not ``msal``: a bot needs one form POST to one known endpoint. MSAL
finds the token endpoint by discovering its authority's OpenID configuration (and validates
the authority against Microsoft's instance list), an extra round trip per process that cannot
be pointed at ``token_url`` directly, and it brings ``requests`` along; its cache adds nothing
for a client-credentials token that is simply reused until it expires.

Every failure is mapped once, in :mod:`.errors`. A webhook URL never appears in an error or a
log line: webhooks are named by their channel alias, and httpx's exception text (which may
hold the URL) is never used.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from chatops_core.errors import AuthenticationFailed, ChatOpsError, ProviderError
from chatops_core.providers.teams.config import BOT_SCOPE
from chatops_core.providers.teams.errors import (
    Asked,
    connector_throttled,
    map_teams_response,
    map_transport_error,
    redact,
    throttled_connector,
)

# A token is renewed this long before it expires (AAD tokens live an hour).
TOKEN_MARGIN_SECONDS = 300.0
USER_AGENT = "chatops-incidents (Microsoft Teams provider)"
# How a channel thread's conversation id names its first post.
THREAD_MARK = ";messageid="


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float


class TokenCache:
    """The bot's access token for the Bot Connector, fetched once and reused until
    :data:`TOKEN_MARGIN_SECONDS` before it expires (or half its life, for a short one).

    Thread-safe: one lock per bot, so concurrent callers wait for a single request.
    """

    def __init__(
        self,
        token_url: str,
        app_id: str,
        app_password: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token_url = token_url
        self._app_id = app_id
        self._app_password = app_password
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None

    def get(self, http: httpx.Client) -> str:
        """The token, fetched with ``http`` when there is none or it is near its end."""
        with self._lock:
            token = self._token
            if token is None or self._clock() >= token.expires_at:
                token = self._token = self._fetch(http)
            return token.value

    def invalidate(self, value: str | None = None) -> None:
        """Forget the token (the Bot Connector refused it); with ``value``, only if it is
        still that one, so a newer token another thread fetched is kept."""
        with self._lock:
            if self._token is not None and (value is None or self._token.value == value):
                self._token = None

    def _fetch(self, http: httpx.Client) -> Token:
        operation = "token request"
        form = {
            "grant_type": "client_credentials",
            "client_id": self._app_id,
            "client_secret": self._app_password,
            "scope": BOT_SCOPE,
        }
        started = self._clock()
        try:
            response = http.post(self._token_url, data=form)
        except httpx.HTTPError as exc:
            raise map_transport_error(exc, operation=operation) from None
        if not response.is_success:
            error = map_teams_response(
                response.status_code, response.headers, response.content, operation=operation, asked="token"
            )
            raise redact(error, [self._app_password]) from None
        try:
            data = response.json()
            value = data["access_token"]
            lifetime = float(data.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise ProviderError(f"Teams {operation}: the answer holds no access token") from None
        if not isinstance(value, str) or not value:
            raise ProviderError(f"Teams {operation}: the answer holds no access token")
        margin = min(TOKEN_MARGIN_SECONDS, lifetime / 2)
        return Token(value, started + lifetime - margin)


# One token cache per process and bot: every provider instance and client of that bot shares it.
_CACHES: dict[tuple[str, str, str], TokenCache] = {}
_CACHES_LOCK = threading.Lock()


def shared_token_cache(
    token_url: str,
    app_id: str,
    app_password: str,
    *,
    clock: Callable[[], float] = time.time,
) -> TokenCache:
    """The process's token cache of this bot (made on first use)."""
    digest = hashlib.sha256(app_password.encode()).hexdigest()
    key = (token_url, app_id, digest)
    with _CACHES_LOCK:
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = TokenCache(token_url, app_id, app_password, clock=clock)
        return cache


class TeamsClient:
    """Calls to Teams with one ``httpx.Client``; every failure raised as a ``ChatOpsError``.

    ``tokens`` is the bot's token cache (None: webhook mode only, and a Bot Connector call is
    a configuration error).
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        tokens: TokenCache | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self._http = http or httpx.Client(
            timeout=timeout, headers={"User-Agent": USER_AGENT}, follow_redirects=False
        )
        self._tokens = tokens

    @property
    def http(self) -> httpx.Client:
        return self._http

    def close(self) -> None:
        self._http.close()

    # -- incoming webhooks -------------------------------------------------------------------
    def post_webhook(self, alias: str, url: str, payload: dict[str, Any], *, connector: bool) -> str | None:
        """POST ``payload`` to the incoming webhook of channel ``alias``; a Workflows run id
        when the answer names one. ``connector``: a legacy connector URL (its 200 may report
        a 429)."""
        operation = "webhook post"
        asked: Asked = "connector" if connector else "workflow"
        try:
            response = self._http.post(url, json=payload)
        except httpx.HTTPError as exc:
            raise redact(map_transport_error(exc, operation=operation), [url]) from None
        if not response.is_success:
            error = map_teams_response(
                response.status_code,
                response.headers,
                response.content,
                operation=operation,
                asked=asked,
                channel=alias,
            )
            raise redact(error, [url]) from None
        if connector and connector_throttled(response.content):
            raise throttled_connector(alias, operation=operation)
        return response.headers.get("x-ms-workflow-run-id")

    # -- Bot Connector -----------------------------------------------------------------------
    def send_activity(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> str:
        """Post ``activity`` into a conversation (a channel thread's id,
        ``<channel>;messageid=<first post>``, posts into that thread); its id."""
        url = f"{_base(service_url)}v3/conversations/{_quote(conversation_id)}/activities"
        asked: Asked = "thread" if THREAD_MARK in conversation_id else "conversation"
        return self._connector("POST", url, activity, operation="post activity", asked=asked)

    def reply_activity(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> str:
        """Post ``activity`` in the thread of ``activity_id``; its id."""
        url = (
            f"{_base(service_url)}v3/conversations/{_quote(conversation_id)}/activities/{_quote(activity_id)}"
        )
        return self._connector("POST", url, activity, operation="reply to activity", asked="activity")

    def update_activity(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> str:
        """Replace ``activity_id`` with ``activity`` in place."""
        url = (
            f"{_base(service_url)}v3/conversations/{_quote(conversation_id)}/activities/{_quote(activity_id)}"
        )
        return self._connector("PUT", url, activity, operation="update activity", asked="activity")

    def token(self) -> str:
        """A valid Bot Connector token (a request only when the cached one is near its end)."""
        if self._tokens is None:
            raise AuthenticationFailed("Teams: bot mode is not configured (app_id and app_password)")
        return self._tokens.get(self._http)

    def _connector(
        self, method: str, url: str, activity: dict[str, Any], *, operation: str, asked: Asked
    ) -> str:
        token = self.token()
        try:
            response = self._http.request(
                method, url, json=activity, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            raise map_transport_error(exc, operation=operation) from None
        if not response.is_success:
            if response.status_code == 401 and self._tokens is not None:
                # Revoked or expired early: the next attempt fetches a new one.
                self._tokens.invalidate(token)
            error: ChatOpsError = map_teams_response(
                response.status_code, response.headers, response.content, operation=operation, asked=asked
            )
            raise redact(error, [token]) from None
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {}
        found = data.get("id") if isinstance(data, dict) else None
        return str(found) if found else ""


def _base(service_url: str) -> str:
    return service_url if service_url.endswith("/") else service_url + "/"


def _quote(part: str) -> str:
    return quote(part, safe="")


__all__ = ["TOKEN_MARGIN_SECONDS", "TeamsClient", "Token", "TokenCache", "shared_token_cache"]
