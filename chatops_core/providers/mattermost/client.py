"""Calls to Mattermost: REST API v4 (``{url}/api/v4``, ``Authorization: Bearer <token>``) and
slash-command ``response_url`` posts, each failure mapped onto :mod:`chatops_core.errors`
by :mod:`.errors`.

Why a small client over httpx rather than a Mattermost library: ``mattermostdriver`` is
archived, and its successor ``mattermostautodriver`` is generated from the server's API
specification with "no additional effort of backwards compatibility" (its minor releases may
remove endpoints, and it asks to be kept in step with the server's version), so the service
would follow a moving interface and still have to map its exceptions. The service needs
about twenty calls of known shape and exact control over what a failure means (was the
request sent? how long to wait?). httpx gives what matters underneath: connect, read, write
and pool timeouts, connection pooling, exception classes that tell a refused connection from
a read timeout, and no hidden retries (its transport retries nothing unless told to).
https://www.python-httpx.org/

Nothing here retries: a rate limit surfaces as :class:`~chatops_core.errors.RateLimited` with
the server's wait, a timeout or a lost connection as
:class:`~chatops_core.errors.ConnectionFailed` with ``details["outcome_unknown"]``, and the
task decides (https://api.mattermost.com/#tag/rate-limiting).

The token never appears in a message, a ``repr`` or an error: it is kept as a ``SecretStr``,
sent only to the API (never to a ``response_url``), and scrubbed from anything the server
echoes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import SecretStr

from chatops_core import __version__
from chatops_core.errors import ChatOpsError, ConfigError, ProviderError
from chatops_core.providers.mattermost.errors import (
    ALREADY_ARCHIVED_IDS,
    MEMBER_MISSING_IDS,
    Asked,
    map_mattermost_response,
    map_transport_error,
    parse_app_error,
    redact,
)

DEFAULT_TIMEOUT = 10.0
DEFAULT_USER_AGENT = f"chatops-incidents/{__version__}"
API_PREFIX = "/api/v4"
# "If since is used, it will always return all posts modified since that time, ordered by
# their create time limited till 1000" (API reference, Get posts for a channel).
MAX_POSTS_SINCE = 1000


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _number(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _object(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return dict(value) if isinstance(value, dict) else {}


@dataclass(frozen=True)
class User:
    """A Mattermost user (https://api.mattermost.com/#tag/users); ``raw`` is the whole answer."""

    id: str
    username: str
    is_bot: bool = False
    first_name: str = ""
    last_name: str = ""
    nickname: str = ""
    delete_at: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> User:
        return cls(
            id=_text(data, "id"),
            username=_text(data, "username"),
            is_bot=data.get("is_bot") is True,
            first_name=_text(data, "first_name"),
            last_name=_text(data, "last_name"),
            nickname=_text(data, "nickname"),
            delete_at=_number(data, "delete_at"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Post:
    """A Mattermost post (https://api.mattermost.com/#tag/posts).

    Times are Unix milliseconds. ``props`` is the post's property bag (attachments, and any
    key the service keeps there to find the post again); action ``integration`` URLs and
    contexts are never in it, as the server strips them from its answers.
    """

    id: str
    channel_id: str
    user_id: str = ""
    message: str = ""
    props: Mapping[str, Any] = field(default_factory=dict)
    root_id: str = ""
    type: str = ""
    create_at: int = 0
    update_at: int = 0
    edit_at: int = 0
    delete_at: int = 0
    is_pinned: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Post:
        return cls(
            id=_text(data, "id"),
            channel_id=_text(data, "channel_id"),
            user_id=_text(data, "user_id"),
            message=_text(data, "message"),
            props=_object(data, "props"),
            root_id=_text(data, "root_id"),
            type=_text(data, "type"),
            create_at=_number(data, "create_at"),
            update_at=_number(data, "update_at"),
            edit_at=_number(data, "edit_at"),
            delete_at=_number(data, "delete_at"),
            is_pinned=data.get("is_pinned") is True,
            raw=dict(data),
        )


@dataclass(frozen=True)
class Channel:
    """A Mattermost channel (https://api.mattermost.com/#tag/channels).

    ``type`` is ``O`` (public), ``P`` (private), ``D`` or ``G`` (direct, group messages).
    """

    id: str
    team_id: str
    name: str
    display_name: str = ""
    type: str = "O"
    header: str = ""
    purpose: str = ""
    delete_at: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def archived(self) -> bool:
        return self.delete_at > 0

    @property
    def private(self) -> bool:
        return self.type == "P"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Channel:
        return cls(
            id=_text(data, "id"),
            team_id=_text(data, "team_id"),
            name=_text(data, "name"),
            display_name=_text(data, "display_name"),
            type=_text(data, "type") or "O",
            header=_text(data, "header"),
            purpose=_text(data, "purpose"),
            delete_at=_number(data, "delete_at"),
            raw=dict(data),
        )


def _segment(value: str, what: str) -> str:
    """``value`` quoted as one path segment; an empty one is a caller's bug."""
    if not value:
        raise ValueError(f"{what} is empty")
    return quote(value, safe="")


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class MattermostClient:
    """The Mattermost calls the provider makes, typed, each mapped onto the error tree.

    ``url`` is the server's address (``https://chat.example.com``); the API is under
    ``{url}/api/v4``. ``token`` is a bot or personal access token. ``timeout`` (seconds)
    bounds connecting, each read and each write. One client keeps a pool of connections:
    make one per process and :meth:`close` it (or use it as a context manager).
    ``transport`` replaces the network (an ``httpx.MockTransport`` in tests, say).
    """

    def __init__(
        self,
        url: str,
        token: str | SecretStr,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        user_agent: str = DEFAULT_USER_AGENT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        if not secret.get_secret_value().strip():
            raise ConfigError("Mattermost token is empty")
        if not _is_http_url(url):
            raise ConfigError("Mattermost url must be an http(s) URL with a host")
        self._url = url.rstrip("/")
        self._api = self._url + API_PREFIX
        self._token = secret
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            follow_redirects=False,
            transport=transport,
        )

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"MattermostClient(url={self._url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> MattermostClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- users ---------------------------------------------------------------------------
    def me(self) -> User:
        """The token's own user (``GET /users/me``): a check that the token works."""
        return User.from_api(self._call("GET", "/users/me", operation="get_me", asked="user"))

    def user(self, user_id: str) -> User:
        """``GET /users/{user_id}``; :class:`UserNotFound` when there is none."""
        path = f"/users/{_segment(user_id, 'user_id')}"
        return User.from_api(self._call("GET", path, operation="get_user", asked="user"))

    def user_by_username(self, name: str) -> User:
        """``GET /users/username/{name}`` (a leading ``@`` is dropped)."""
        path = f"/users/username/{_segment(name.lstrip('@'), 'username')}"
        return User.from_api(self._call("GET", path, operation="get_user_by_username", asked="user"))

    # -- posts ---------------------------------------------------------------------------
    def create_post(
        self,
        channel_id: str,
        message: str,
        *,
        props: Mapping[str, Any] | None = None,
        root_id: str | None = None,
    ) -> Post:
        """``POST /posts``: post ``message`` (Markdown) with ``props`` (attachments, keys to
        find it again); with ``root_id``, as a reply in that post's thread.

        https://api.mattermost.com/#tag/posts/operation/CreatePost
        """
        body: dict[str, Any] = {"channel_id": _require(channel_id, "channel_id"), "message": message}
        if props is not None:
            body["props"] = dict(props)
        if root_id:
            body["root_id"] = root_id
        data = self._call("POST", "/posts", operation="create_post", asked="channel", body=body)
        return _post(data, "create_post")

    def patch_post(
        self,
        post_id: str,
        *,
        message: str | None = None,
        props: Mapping[str, Any] | None = None,
    ) -> Post:
        """``PUT /posts/{post_id}/patch``: change only the fields given.

        Always the patch call: a plain ``PUT /posts/{id}`` treats every omitted field as
        blank (API reference, "Update a post" vs "Patch a post"). ``props``, when given,
        replace the post's whole property bag, so pass every key to keep (attachments and
        any key used to find the post again).
        https://api.mattermost.com/#tag/posts/operation/PatchPost
        """
        body: dict[str, Any] = {}
        if message is not None:
            body["message"] = message
        if props is not None:
            body["props"] = dict(props)
        if not body:
            raise ValueError("patch_post needs a message or props")
        path = f"/posts/{_segment(post_id, 'post_id')}/patch"
        data = self._call("PUT", path, operation="patch_post", asked="post", body=body)
        return _post(data, "patch_post")

    def get_post(self, post_id: str) -> Post:
        """``GET /posts/{post_id}``; :class:`MessageNotFound` when it is gone."""
        path = f"/posts/{_segment(post_id, 'post_id')}"
        return _post(self._call("GET", path, operation="get_post", asked="post"), "get_post")

    def channel_posts(
        self,
        channel_id: str,
        since_ms: int | None = None,
        *,
        page: int | None = None,
        per_page: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Post]:
        """The posts of a channel, newest first (``GET /channels/{channel_id}/posts``).

        With ``since_ms`` (Unix milliseconds): every post created or changed after it, up to
        :data:`MAX_POSTS_SINCE`, thread replies included; the server refuses to combine it
        with ``page``, ``per_page``, ``before`` or ``after``, which page through the history
        otherwise. A post kept with a key in ``props`` is found by reading these.
        https://api.mattermost.com/#tag/posts/operation/GetPostsForChannel
        """
        params: dict[str, str] = {}
        if since_ms is not None:
            if any(v is not None for v in (page, per_page, before, after)):
                raise ValueError("since_ms cannot be combined with page, per_page, before or after")
            # "Provide a non-zero value": 0 would mean "no filter".
            params["since"] = str(max(int(since_ms), 1))
        for key, value in (("page", page), ("per_page", per_page), ("before", before), ("after", after)):
            if value is not None:
                params[key] = str(value)
        path = f"/channels/{_segment(channel_id, 'channel_id')}/posts"
        data = self._call("GET", path, operation="get_posts_for_channel", asked="channel", params=params)
        # An empty list may come as nulls.
        posts = data.get("posts") or {}
        order = data.get("order") or []
        if not isinstance(posts, dict) or not isinstance(order, list):
            raise _malformed("get_posts_for_channel")
        return [Post.from_api(posts[i]) for i in order if isinstance(posts.get(i), dict)]

    def pin_post(self, post_id: str) -> None:
        """``POST /posts/{post_id}/pin`` (pinning a pinned post again is fine)."""
        path = f"/posts/{_segment(post_id, 'post_id')}/pin"
        self._call("POST", path, operation="pin_post", asked="post")

    def create_ephemeral_post(
        self,
        user_id: str,
        channel_id: str,
        message: str,
        props: Mapping[str, Any] | None = None,
    ) -> Post:
        """``POST /posts/ephemeral``: a post only ``user_id`` sees, not stored by the server.

        Needs the ``create_post_ephemeral`` permission (a 403 :class:`MissingPermission`
        otherwise). https://api.mattermost.com/#tag/posts/operation/CreatePostEphemeral
        """
        post: dict[str, Any] = {"channel_id": _require(channel_id, "channel_id"), "message": message}
        if props is not None:
            post["props"] = dict(props)
        body = {"user_id": _require(user_id, "user_id"), "post": post}
        data = self._call("POST", "/posts/ephemeral", operation="create_post_ephemeral", body=body)
        return _post(data, "create_post_ephemeral")

    # -- channels ------------------------------------------------------------------------
    def create_channel(
        self,
        team_id: str,
        name: str,
        display_name: str,
        *,
        purpose: str | None = None,
        header: str | None = None,
        private: bool = False,
    ) -> Channel:
        """``POST /channels``; :class:`ChannelNameTaken` when the team has the name already.

        ``name`` is the URL handle (lowercase letters, digits, ``-``, ``_``; at most 64).
        https://api.mattermost.com/#tag/channels/operation/CreateChannel
        """
        body: dict[str, Any] = {
            "team_id": _require(team_id, "team_id"),
            "name": name,
            "display_name": display_name,
            "type": "P" if private else "O",
        }
        if purpose is not None:
            body["purpose"] = purpose
        if header is not None:
            body["header"] = header
        data = self._call("POST", "/channels", operation="create_channel", body=body)
        return _channel(data, "create_channel")

    def channel(self, channel_id: str) -> Channel:
        """``GET /channels/{channel_id}`` (an archived channel has ``archived`` set)."""
        path = f"/channels/{_segment(channel_id, 'channel_id')}"
        return _channel(self._call("GET", path, operation="get_channel", asked="channel"), "get_channel")

    def channel_by_name(self, team_id: str, name: str, *, include_deleted: bool = False) -> Channel:
        """``GET /teams/{team_id}/channels/name/{name}``; archived ones only with
        ``include_deleted``."""
        path = f"/teams/{_segment(team_id, 'team_id')}/channels/name/{_segment(name.lstrip('~'), 'name')}"
        params = {"include_deleted": "true"} if include_deleted else None
        data = self._call("GET", path, operation="get_channel_by_name", asked="channel", params=params)
        return _channel(data, "get_channel_by_name")

    def add_member(self, channel_id: str, user_id: str) -> None:
        """``POST /channels/{channel_id}/members``; adding a member again is fine.

        https://api.mattermost.com/#tag/channels/operation/AddChannelMember
        """
        path = f"/channels/{_segment(channel_id, 'channel_id')}/members"
        body = {"user_id": _require(user_id, "user_id")}
        self._call("POST", path, operation="add_channel_member", asked="channel", body=body)

    def remove_member(self, channel_id: str, user_id: str) -> bool:
        """``DELETE /channels/{channel_id}/members/{user_id}``; False when the user was not
        a member (nothing to do), True when removed."""
        path = f"/channels/{_segment(channel_id, 'channel_id')}/members/{_segment(user_id, 'user_id')}"
        response = self._request(
            "DELETE", path, operation="remove_channel_member", asked="channel", noop_ids=MEMBER_MISSING_IDS
        )
        return response.is_success

    def archive_channel(self, channel_id: str) -> bool:
        """``DELETE /channels/{channel_id}``, which archives it; False when it already was.

        https://api.mattermost.com/#tag/channels/operation/DeleteChannel
        """
        path = f"/channels/{_segment(channel_id, 'channel_id')}"
        response = self._request(
            "DELETE",
            path,
            operation="delete_channel",
            asked="channel",
            noop_ids=ALREADY_ARCHIVED_IDS,
        )
        return response.is_success

    def patch_channel(
        self,
        channel_id: str,
        *,
        header: str | None = None,
        purpose: str | None = None,
        display_name: str | None = None,
    ) -> Channel:
        """``PUT /channels/{channel_id}/patch``: change only the fields given.

        https://api.mattermost.com/#tag/channels/operation/PatchChannel
        """
        body = {
            key: value
            for key, value in (("header", header), ("purpose", purpose), ("display_name", display_name))
            if value is not None
        }
        if not body:
            raise ValueError("patch_channel needs a header, purpose or display_name")
        path = f"/channels/{_segment(channel_id, 'channel_id')}/patch"
        data = self._call("PUT", path, operation="patch_channel", asked="channel", body=body)
        return _channel(data, "patch_channel")

    # -- interactivity -------------------------------------------------------------------
    def open_dialog(self, trigger_id: str, url: str, dialog: Mapping[str, Any]) -> None:
        """``POST /actions/dialogs/open``: show ``dialog`` to the user of ``trigger_id``; the
        submission goes to ``url``. A stale, used or malformed trigger is
        :class:`TriggerExpired` (a trigger id lives seconds: 3 on older servers).

        https://developers.mattermost.com/integrate/plugins/interactive-dialogs/
        """
        body = {"trigger_id": _require(trigger_id, "trigger_id"), "url": url, "dialog": dict(dialog)}
        self._call("POST", "/actions/dialogs/open", operation="open_dialog", asked="dialog", body=body)

    def post_response(self, response_url: str, body: Mapping[str, Any]) -> None:
        """POST a command response (``{"response_type", "text", "attachments", ...}``) to a
        slash command's ``response_url``.

        It takes five posts within 30 minutes; past that the server refuses and this raises
        :class:`ResponseUrlExpired` (permanent: give up). The bot token is not sent there.
        https://developers.mattermost.com/integrate/slash-commands/custom/
        """
        if not _is_http_url(response_url):
            raise ProviderError("Mattermost command_response: the response_url is not an http(s) URL")
        response = self._send("POST", response_url, operation="command_response", body=dict(body), auth=False)
        if not response.is_success:
            raise self._refused(response, "command_response", "response_url")

    # -- plumbing ------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"} if auth else None
        try:
            return self._http.request(method, url, json=body, params=params, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._redacted(map_transport_error(exc, operation=operation)) from exc

    def _request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        asked: Asked = "other",
        body: Any = None,
        params: Mapping[str, str] | None = None,
        noop_ids: frozenset[str] = frozenset(),
    ) -> httpx.Response:
        """Send an API call; a refusal whose error id is in ``noop_ids`` (the call's aim
        already holds) is returned, any other raises its mapped error."""
        response = self._send(method, self._api + path, operation=operation, body=body, params=params)
        if response.is_success:
            return response
        if noop_ids:
            error = parse_app_error(response.content)
            if error is not None and error.id in noop_ids:
                return response
        raise self._refused(response, operation, asked)

    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        asked: Asked = "other",
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """An API call answering a JSON object."""
        response = self._request(method, path, operation=operation, asked=asked, body=body, params=params)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise _malformed(operation)
        return data

    def _refused(self, response: httpx.Response, operation: str, asked: Asked) -> ChatOpsError:
        error = map_mattermost_response(
            response.status_code, response.headers, response.content, operation=operation, asked=asked
        )
        return self._redacted(error)

    def _redacted(self, error: ChatOpsError) -> ChatOpsError:
        return redact(error, [self._token.get_secret_value()])


def _require(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} is empty")
    return value


def _malformed(operation: str) -> ProviderError:
    """A 2xx answer that is not what the API documents: the call may well have taken effect."""
    return ProviderError(
        f"Mattermost {operation}: the answer is not the documented JSON",
        operation=operation,
        outcome_unknown=True,
    )


def _post(data: Mapping[str, Any], operation: str) -> Post:
    post = Post.from_api(data)
    if not post.id:
        raise _malformed(operation)
    return post


def _channel(data: Mapping[str, Any], operation: str) -> Channel:
    channel = Channel.from_api(data)
    if not channel.id:
        raise _malformed(operation)
    return channel
