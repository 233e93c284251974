"""Calls to Slack: the Web API through ``slack_sdk.WebClient`` and ``response_url`` posts
through ``slack_sdk.webhook.WebhookClient``.

Connection errors and 500/503 answers are retried in-process a couple of times with a
short backoff. Rate limits are *not*: a 429 (or ``ratelimited`` in the body) surfaces as
:class:`~chatops_core.errors.RateLimited` with Slack's ``Retry-After``, so the task is
retried later with a countdown instead of a worker sleeping
(https://docs.slack.dev/apis/web-api/rate-limits).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import select
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import SplitResult, urlsplit
from urllib.request import Request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryIntervalCalculator, RetryState
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.web.slack_response import SlackResponse
from slack_sdk.webhook import WebhookClient

from chatops_core.errors import ChatOpsError, MessageNotFound, ProviderError, ServerError, TriggerExpired
from chatops_core.models import ChannelRef, MessageRef
from chatops_core.providers.slack.channels import normalize_name, with_suffix
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.providers.slack.errors import (
    code_from_body,
    error_code,
    map_slack_error,
    map_slack_response,
)

try:
    # What api_call itself uses for these steps; call_json goes through api_call where an
    # SDK release has moved them.
    from slack_sdk.web.internal_utils import (
        _build_unexpected_body_error_message,
        _get_url,
        _set_default_params,
    )

    LEAN_CALLS = True
except ImportError:  # pragma: no cover - depends on the SDK release
    LEAN_CALLS = False

MAX_RETRIES = 2
MAX_LIST_PAGES = 50
MAX_NAME_ATTEMPTS = 20
MAX_TOPIC_LENGTH = 250
MAX_INVITES_PER_CALL = 1000
# Errors that mean "already as asked": not failures for an idempotent task.
INVITE_NOOP_CODES = frozenset({"already_in_channel", "cant_invite_self"})
KICK_NOOP_CODES = frozenset({"not_in_channel"})
PIN_NOOP_CODES = frozenset({"already_pinned"})
ARCHIVE_NOOP_CODES = frozenset({"already_archived"})
# Slack documents ``internal_error`` as a failure where "some aspect of the operation" may
# have succeeded: a post that answers it may be in the channel.
# https://docs.slack.dev/reference/methods/chat.postMessage#errors
MAYBE_DONE_CODES = frozenset({"internal_error"})

_TRANSLATED: tuple[type[BaseException], ...] = (
    SlackClientError,
    OSError,  # URLError, TimeoutError, ConnectionError
    http.client.HTTPException,
    ValueError,  # a malformed JSON answer
)


@contextmanager
def translated(method: str, ok_codes: frozenset[str] = frozenset()) -> Iterator[None]:
    """Re-raise what a Slack call raised as a ``ChatOpsError`` (see ``errors.map_slack_error``).

    A refusal whose error code is in ``ok_codes`` means the call's aim already holds (say,
    ``already_pinned``) and is not an error.
    """
    try:
        yield
    except SlackApiError as exc:
        if error_code(exc) in ok_codes:
            return
        raise _with_outcome(map_slack_error(exc, method=method), exc) from exc
    except _TRANSLATED as exc:
        raise _with_outcome(map_slack_error(exc, method=method), exc) from exc


def _with_outcome(error: ChatOpsError, cause: BaseException) -> ChatOpsError:
    """Say in ``error.details["outcome_unknown"]`` whether the call may have taken effect,
    where the cause tells: a request that never left (connection refused, unknown host) did
    not; ``internal_error`` may have. Without it the delivery decides by the error's class.
    """
    if _never_sent(cause):
        error.details["outcome_unknown"] = False
    elif isinstance(error, ServerError) and error_code(cause) in MAYBE_DONE_CODES:
        error.details["outcome_unknown"] = True
    return error


def _never_sent(error: BaseException | None) -> bool:
    """Whether a failed request certainly never reached Slack: the connection was refused
    or the host name did not resolve (a reset or a timeout may come after Slack got it)."""
    reason = getattr(error, "reason", None) if isinstance(error, URLError) else error
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


class _UnsentRetryHandler(RetryHandler):
    """Retries a post only when the request never reached Slack: re-sending one that was
    cut off after Slack got it would post the message twice (the delivery looks first)."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is None and _never_sent(error)


def retry_handlers(
    interval: RetryIntervalCalculator | None = None, *, posts: bool = False
) -> list[RetryHandler]:
    """Retry connection failures and 500/503 twice; never rate limits (see module doc).

    ``posts``: for ``chat.postMessage``, connection failures are retried only when the
    request never reached Slack (see :class:`_UnsentRetryHandler`).
    """
    calc = interval or BackoffRetryIntervalCalculator(backoff_factor=0.5)
    connection: RetryHandler = (
        _UnsentRetryHandler(max_retry_count=MAX_RETRIES, interval_calculator=calc)
        if posts
        else ConnectionErrorRetryHandler(max_retry_count=MAX_RETRIES, interval_calculator=calc)
    )
    return [connection, ServerErrorRetryHandler(max_retry_count=MAX_RETRIES, interval_calculator=calc)]


class KeptAliveWebClient(WebClient):
    """A ``WebClient`` that keeps its connection to Slack open between calls (HTTP/1.1
    keep-alive), one per thread and process.

    The SDK's own transport opens a connection (and, to Slack, a TLS session) for every call
    and asks for it to be closed. This sends the same request, with the same headers, body,
    timeout and TLS context, over a connection kept from the call before; the SDK's retry
    handlers, error handling and response parsing are its own. A connection the server has
    closed meanwhile is noticed before it is used and replaced; one that fails during a call
    is closed, and the failure is what a new connection's would be (a request that could not
    be sent is a ``URLError``, as the SDK's transport raises it; a lost answer raises as is).
    Through a proxy the SDK's own transport is used.

    The calls every delivery makes go through :meth:`call_json`, which skips the SDK's
    argument sorting but sends the same request with the same retries and checks.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()
        self._json_headers: dict[str, str] | None = None
        # URLs by API method, and their parts by URL: worked out once each.
        self._urls: dict[str, str] = {}
        self._parts: dict[str, SplitResult] = {}

    def call_json(self, api_method: str, body: dict[str, Any]) -> SlackResponse:
        """``api_call(api_method, json=body)``, for the calls a delivery makes every time
        (``chat.postMessage``, ``chat.update``) with a body of plain values (no ``None``s, no
        SDK objects), as the client's method for the call would pass it.

        The same request goes out (the URL, the headers the SDK builds for a JSON call, the
        body), through the SDK's own retry loop and handlers, and the answer is checked by
        its own :meth:`SlackResponse.validate` (a refusal raises ``SlackApiError``). What is
        left out are the layers ``api_call`` adds to sort arguments of other kinds (form
        fields, files, a token in the body), which cost about a quarter of the call's CPU.
        """
        if not LEAN_CALLS:
            return self.api_call(api_method, json=body)
        if self._json_headers is None:
            # What api_call sends for a JSON call: this client's headers (the SDK's
            # User-Agent among them), the token, the JSON content type.
            self._json_headers = self._build_urllib_request_headers(
                token=self.token or "", has_json=True, has_files=False, additional_headers={}
            )
        _set_default_params(body, self.default_params)
        url = self._urls.get(api_method) or self._urls.setdefault(
            api_method, _get_url(self.base_url, api_method)
        )
        args: dict[str, Any] = {"headers": dict(self._json_headers), "data": {}, "params": {}, "json": body}
        response = self._perform_urllib_http_request(url=url, args=args)
        # The retry loop parses a JSON answer; anything else is read as api_call reads it.
        raw = response.get("body")
        data: Any = raw
        if "parsed_body" in response:
            data = response["parsed_body"]
        elif raw is not None and not isinstance(raw, bytes):
            try:
                data = json.loads(raw)
            except json.JSONDecodeError:
                data = {"ok": False, "error": _build_unexpected_body_error_message(raw)}
        return SlackResponse(
            client=self,
            http_verb="POST",
            api_url=url,
            req_args=args,
            data=data,
            headers=dict(response["headers"]),
            status_code=response["status"],
        ).validate()

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = self._parts.get(url) or self._parts.setdefault(url, urlsplit(url))
        if self.proxy is not None or parts.scheme not in ("http", "https") or not parts.hostname:
            return super()._perform_urllib_http_request_internal(url, req)
        conn = self._connection(parts.scheme, parts.hostname, parts.port)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = {name: value for name, value in req.header_items() if name.lower() != "connection"}
        try:
            try:
                conn.request_at_once(req.get_method(), path, req.data, headers)
            except OSError as exc:
                raise URLError(exc) from exc
            response = conn.getresponse()
            body = response.read()
        except BaseException:
            self._drop()
            raise
        if response.will_close:
            self._drop()
        if not 200 <= response.status < 300:
            # What urllib raises for an answer that is not a success; the SDK reads it.
            raise HTTPError(url, response.status, response.reason, response.msg, io.BytesIO(body))
        if response.msg.get_content_type() == "application/gzip":
            return {"status": response.status, "headers": response.msg, "body": body}
        charset = response.msg.get_content_charset() or "utf-8"
        return {"status": response.status, "headers": response.msg, "body": body.decode(charset)}

    def _connection(self, scheme: str, host: str, port: int | None) -> _OneWrite:
        local = self._local
        conn: _OneWrite | None = getattr(local, "conn", None)
        where = (os.getpid(), scheme, host, port)
        if conn is not None and (getattr(local, "where", None) != where or _dropped(conn)):
            # Another process (after a fork, the parent's socket is not ours to use), another
            # host, or closed by the server while idle: a new connection.
            conn.close()
            conn = None
        if conn is None:
            if scheme == "https":
                # The SDK's TLS context, or (None) the default one urllib would use.
                conn = _OneWriteHTTPS(host, port, timeout=self.timeout, context=self.ssl)
            else:
                conn = _OneWrite(host, port, timeout=self.timeout)
            local.conn, local.where = conn, where
        elif conn.sock is not None:
            conn.sock.settimeout(self.timeout)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _OneWrite(http.client.HTTPConnection):
    """Sends a request's head and a ``bytes`` body in one write: http.client writes them
    apart, which on a connection without Nagle's delay (http.client sets ``TCP_NODELAY``)
    costs a second packet, and a second read by the server, for every call."""

    _body: bytes | None = None
    _sent: bytes | None = None

    def request_at_once(self, method: str, url: str, body: Any, headers: dict[str, str]) -> None:
        self._body, self._sent = (body or None) if isinstance(body, bytes) else None, None
        try:
            self.request(method, url, body=body, headers=headers)
        finally:
            self._body = self._sent = None

    def send(self, data: Any) -> None:
        body = self._body
        if body is not None and data is not body and isinstance(data, bytes):
            # The head, the body coming next: both now, and the body's own write is skipped.
            self._body, self._sent = None, body
            super().send(data + body)
        elif self._sent is not None and data is self._sent:
            self._sent = None
        else:
            super().send(data)


class _OneWriteHTTPS(_OneWrite, http.client.HTTPSConnection):
    pass


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle kept connection can no longer be used: the server closed it (it is
    readable: an end of file, or bytes nobody asked for)."""
    sock = conn.sock
    if sock is None:
        return False  # not connected yet (or closed by us): it connects on its next request
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class SlackApi:
    """The Slack calls the provider makes, each mapped onto :mod:`chatops_core.errors`."""

    def __init__(
        self, settings: SlackSettings, retry_interval: RetryIntervalCalculator | None = None
    ) -> None:
        self._timeout = settings.timeout
        self._retry_interval = retry_interval
        self._web = KeptAliveWebClient(
            token=settings.bot_token.get_secret_value(),
            base_url=settings.api_url,
            # urllib takes float seconds; the SDK's annotation says int.
            timeout=settings.timeout,  # type: ignore[arg-type]
            retry_handlers=retry_handlers(retry_interval),
        )
        self._poster = KeptAliveWebClient(
            token=settings.bot_token.get_secret_value(),
            base_url=settings.api_url,
            timeout=settings.timeout,  # type: ignore[arg-type]
            retry_handlers=retry_handlers(retry_interval, posts=True),
        )

    def auth_test(self) -> str:
        """``auth.test`` (https://docs.slack.dev/reference/methods/auth.test): who the token is."""
        with translated("auth.test"):
            response = self._web.auth_test()
        return f"team {response.get('team', '?')}, bot user {response.get('user_id', '?')}"

    # -- messages ----------------------------------------------------------------------
    def post_message(
        self,
        channel: str,
        text: str,
        blocks: Sequence[dict[str, Any]],
        metadata: dict[str, Any] | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> MessageRef:
        """``chat.postMessage`` (https://docs.slack.dev/reference/methods/chat.postMessage).

        ``metadata`` is Slack message metadata (``event_type`` + ``event_payload``), which
        lets a later attempt find the message in the channel's history. ``thread_ts`` posts
        the message as a reply in that message's thread; ``broadcast`` (with ``thread_ts``)
        sends the reply to the channel too (``reply_broadcast``), so it notifies like a post.
        """
        body: dict[str, Any] = {"channel": channel, "text": text, "blocks": list(blocks)}
        if thread_ts:
            body["thread_ts"] = thread_ts
            if broadcast:
                body["reply_broadcast"] = True
        if metadata:
            body["metadata"] = metadata
        with translated("chat.postMessage"):
            response = self._poster.call_json("chat.postMessage", body)
        return MessageRef(channel_id=str(response["channel"]), message_id=str(response["ts"]))

    def join(self, channel_id: str) -> None:
        """``conversations.join`` (https://docs.slack.dev/reference/methods/conversations.join)."""
        with translated("conversations.join"):
            self._web.conversations_join(channel=channel_id)

    def channel_ids(self) -> dict[str, str]:
        """Name -> id of the channels the app can see (``conversations.list``, all pages).

        https://docs.slack.dev/reference/methods/conversations.list
        """
        found: dict[str, str] = {}
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            with translated("conversations.list"):
                response = self._web.conversations_list(
                    types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor
                )
            for channel in response.get("channels") or []:
                found[str(channel["name"])] = str(channel["id"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return found

    def history(self, channel_id: str, oldest: float, limit: int = 200) -> list[dict[str, Any]]:
        """Recent messages with their metadata (``conversations.history``).

        https://docs.slack.dev/reference/methods/conversations.history
        """
        with translated("conversations.history"):
            response = self._web.conversations_history(
                channel=channel_id, oldest=f"{oldest:.6f}", limit=limit, include_all_metadata=True
            )
        return list(response.get("messages") or [])

    def thread(self, channel_id: str, ts: str, oldest: float, limit: int = 200) -> list[dict[str, Any]]:
        """The replies in the thread of message ``ts`` since ``oldest``, with their metadata
        (``conversations.replies``; the thread's first message comes first).

        https://docs.slack.dev/reference/methods/conversations.replies
        """
        with translated("conversations.replies"):
            response = self._web.conversations_replies(
                channel=channel_id, ts=ts, oldest=f"{oldest:.6f}", limit=limit, include_all_metadata=True
            )
        return list(response.get("messages") or [])

    def message(self, channel_id: str, ts: str) -> dict[str, Any]:
        """The message ``ts`` of a channel; :class:`MessageNotFound` if there is none.

        ``conversations.history`` with ``latest=ts``, ``inclusive`` and ``limit=1`` returns
        that message when it is in the channel itself
        (https://docs.slack.dev/reference/methods/conversations.history). A reply in a thread
        is not listed there, so ``conversations.replies`` is asked next
        (https://docs.slack.dev/reference/methods/conversations.replies).
        """
        with translated("conversations.history"):
            response = self._web.conversations_history(channel=channel_id, latest=ts, inclusive=True, limit=1)
        found = _with_ts(response.get("messages"), ts) or _with_ts(self._thread_reply(channel_id, ts), ts)
        if found is not None:
            return found
        raise MessageNotFound(
            f"Slack conversations.history: no message {ts} in {channel_id}",
            method="conversations.history",
            slack_error="message_not_found",
        )

    def _thread_reply(self, channel_id: str, ts: str) -> list[dict[str, Any]]:
        """The thread messages at ``ts`` (with the thread's first message); [] when none."""
        with translated("conversations.replies"):
            try:
                response = self._web.conversations_replies(
                    channel=channel_id, ts=ts, oldest=ts, latest=ts, inclusive=True, limit=2
                )
            except SlackApiError as exc:
                if error_code(exc) == "thread_not_found":
                    return []
                raise
        return list(response.get("messages") or [])

    def update_message(self, channel_id: str, ts: str, text: str, blocks: Sequence[dict[str, Any]]) -> None:
        """``chat.update`` (https://docs.slack.dev/reference/methods/chat.update)."""
        with translated("chat.update"):
            self._web.call_json(
                "chat.update", {"channel": channel_id, "ts": ts, "text": text, "blocks": list(blocks)}
            )

    def post_ephemeral(self, channel: str, user: str, text: str, blocks: Sequence[dict[str, Any]]) -> None:
        """``chat.postEphemeral`` (https://docs.slack.dev/reference/methods/chat.postEphemeral)."""
        with translated("chat.postEphemeral"):
            self._web.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)

    def pin(self, channel_id: str, ts: str) -> None:
        """``pins.add``; a message already pinned is not an error.

        https://docs.slack.dev/reference/methods/pins.add
        """
        with translated("pins.add", PIN_NOOP_CODES):
            self._web.pins_add(channel=channel_id, timestamp=ts)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        """``views.open`` (https://docs.slack.dev/reference/methods/views.open).

        A stale, used or malformed trigger is :class:`TriggerExpired`. Slack has also been seen
        to answer ``invalid_arguments`` naming the ``trigger_id``, which means the same.
        """
        with translated("views.open"):
            try:
                self._web.views_open(trigger_id=trigger_id, view=view)
            except SlackApiError as exc:
                if error_code(exc) == "invalid_arguments" and _names_trigger(exc):
                    raise TriggerExpired(
                        "Slack views.open: the form's trigger cannot be used (invalid_arguments)",
                        method="views.open",
                        slack_error="invalid_arguments",
                    ) from exc
                raise

    def respond(self, response_url: str, body: dict[str, Any]) -> None:
        """Post to a ``response_url`` (ephemeral unless ``response_type`` is ``in_channel``).

        https://docs.slack.dev/interactivity/handling-user-interaction/ : Slack answers
        ``ok``, or an error word such as ``expired_url`` or ``used_url``.
        """
        client = WebhookClient(
            url=response_url,
            timeout=self._timeout,  # type: ignore[arg-type]
            retry_handlers=retry_handlers(self._retry_interval),
        )
        with translated("response_url"):
            response = client.send_dict(body)
        code = code_from_body(response.body)
        if not 200 <= response.status_code < 300 or code:
            raise map_slack_response(response.status_code, response.headers, code, method="response_url")

    # -- channels ----------------------------------------------------------------------
    def create_channel(self, name: str, topic: str | None = None) -> ChannelRef:
        """``conversations.create``, adding ``-2``, ``-3``... while the name is taken.

        https://docs.slack.dev/reference/methods/conversations.create
        """
        base = normalize_name(name)
        channel: dict[str, Any] | None = None
        for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
            candidate = base if attempt == 1 else with_suffix(base, attempt)
            with translated("conversations.create"):
                try:
                    response = self._web.conversations_create(name=candidate)
                except SlackApiError as exc:
                    if error_code(exc) == "name_taken":
                        continue
                    raise
            channel = response["channel"]
            break
        if channel is None:
            raise ProviderError(
                f"Slack conversations.create: {MAX_NAME_ATTEMPTS} names starting with {base!r} are taken",
                method="conversations.create",
                slack_error="name_taken",
            )
        ref = ChannelRef(channel_id=str(channel["id"]), name=str(channel.get("name") or candidate))
        if topic:
            self.set_topic(ref.channel_id, topic)
        return ref

    def set_topic(self, channel_id: str, topic: str) -> None:
        """``conversations.setTopic`` (https://docs.slack.dev/reference/methods/conversations.setTopic)."""
        with translated("conversations.setTopic"):
            self._web.conversations_setTopic(channel=channel_id, topic=topic[:MAX_TOPIC_LENGTH])

    def invite(self, channel_id: str, user_ids: Sequence[str]) -> None:
        """``conversations.invite``; users already there (or the bot itself) are not errors.

        https://docs.slack.dev/reference/methods/conversations.invite : with several users
        one refusal fails the whole call, so on a no-op refusal each user is invited alone.
        """
        users = list(dict.fromkeys(u for u in user_ids if u))
        for start in range(0, len(users), MAX_INVITES_PER_CALL):
            batch = users[start : start + MAX_INVITES_PER_CALL]
            if not self._invite(channel_id, batch) and len(batch) > 1:
                for user in batch:
                    self._invite(channel_id, [user])

    def _invite(self, channel_id: str, users: list[str]) -> bool:
        """Invite ``users``; False when Slack refused with a no-op code."""
        with translated("conversations.invite"):
            try:
                self._web.conversations_invite(channel=channel_id, users=users)
            except SlackApiError as exc:
                if error_code(exc) in INVITE_NOOP_CODES:
                    return False
                raise
        return True

    def archive(self, channel_id: str) -> None:
        """``conversations.archive``; a channel already archived is not an error.

        https://docs.slack.dev/reference/methods/conversations.archive
        """
        with translated("conversations.archive", ARCHIVE_NOOP_CODES):
            self._web.conversations_archive(channel=channel_id)

    def user_name(self, user_id: str) -> str | None:
        """The name the workspace shows for ``user_id``: their display name, else their real
        name, else their user name (``users.info``, https://docs.slack.dev/reference/methods/users.info).
        """
        with translated("users.info"):
            response = self._web.users_info(user=user_id)
        user = response.get("user") or {}
        profile = user.get("profile") or {}
        for name in (
            profile.get("display_name"),
            profile.get("real_name"),
            user.get("real_name"),
            user.get("name"),
        ):
            if isinstance(name, str) and name.strip():
                return name.strip()
        return None

    def kick(self, channel_id: str, user_id: str) -> None:
        """``conversations.kick``; a user who is not there is not an error.

        https://docs.slack.dev/reference/methods/conversations.kick
        """
        with translated("conversations.kick", KICK_NOOP_CODES):
            self._web.conversations_kick(channel=channel_id, user=user_id)


def _names_trigger(exc: SlackApiError) -> bool:
    """Whether a refusal's ``response_metadata.messages`` speak of the ``trigger_id``."""
    data = getattr(exc.response, "data", None)
    metadata = data.get("response_metadata") if isinstance(data, dict) else None
    messages = metadata.get("messages") if isinstance(metadata, dict) else None
    return isinstance(messages, list) and any("trigger_id" in str(message) for message in messages)


def _with_ts(messages: Any, ts: str) -> dict[str, Any] | None:
    """The message whose ``ts`` is ``ts`` in a list of messages, if any."""
    for message in messages or []:
        if isinstance(message, dict) and str(message.get("ts")) == ts:
            return dict(message)
    return None
