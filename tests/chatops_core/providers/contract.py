"""The contract every provider keeps, whatever its platform.

:class:`ProviderContract` holds the tests; ``test_contract.py`` runs them once per provider
type, each through a :class:`Harness` that knows its platform: how to build a signed (or
tokened) command request, how to make its local fake server answer 429, 5xx or 401, and how
to read what the fake shows people. The suite itself knows no platform.

What every provider must do:

- ``verify`` refuses a forged or unsigned request with 401;
- ``parse`` turns a genuine command into a neutral :class:`~chatops_core.models.InboundCommand`
  (text, user, channel, this instance), with nothing platform-shaped outside ``reply_to``;
- ``reply`` reaches the person who typed the command;
- ``announce`` posts a card showing the incident;
- ``update_announcement`` edits that card in place, or, without
  :attr:`~chatops_core.providers.base.Capability.UPDATE_MESSAGE`, a new card is the fallback;
- a 429 is :class:`~chatops_core.errors.RateLimited` with the wait the platform asked for;
- a refusal that cannot pass (bad token, unknown channel) is
  :class:`~chatops_core.errors.Permanent` and is not retried inside the provider;
- a 5xx is :class:`~chatops_core.errors.Retryable`.
"""

from __future__ import annotations

import abc
from datetime import timedelta
from typing import Any

import pytest

from chatops_core.errors import InvalidWebhook, Permanent, RateLimited, Retryable
from chatops_core.models import MessageRef, Reply, Severity, Status, utcnow
from chatops_core.notifications import Announcement, IncidentSnapshot
from chatops_core.providers.base import Capability, InboundKind, Provider, WebhookRequest

# The fields of the old, Slack-shaped command that must not come back.
SLACK_SHAPED = ("team_id", "response_url", "trigger_id", "thread_ts", "message_ts")


class Harness(abc.ABC):
    """One provider type on its local fake server, as the contract drives it."""

    #: the provider under test, configured against the fake
    provider: Provider
    #: a channel that exists on the fake, written as this platform's settings write it
    channel: str
    #: a channel that does not exist there
    unknown_channel: str
    #: the user and channel the harness's commands come from
    user_id: str
    channel_id: str

    @abc.abstractmethod
    def command_request(self, text: str) -> WebhookRequest:
        """A command request exactly as the platform sends it, signed or tokened."""

    @abc.abstractmethod
    def forged_request(self, text: str) -> WebhookRequest:
        """The same request with a signature or token that is not the instance's."""

    @abc.abstractmethod
    def unsigned_request(self, text: str) -> WebhookRequest:
        """The same request without any signature or token."""

    @abc.abstractmethod
    def answers(self) -> list[str]:
        """The text of every answer the person who typed the harness's commands was shown."""

    @abc.abstractmethod
    def posts(self, channel: str) -> list[str]:
        """Every post in ``channel``, oldest first, as one text each (card contents included)."""

    @abc.abstractmethod
    def post_attempts(self) -> int:
        """How many post requests reached the fake so far."""

    @abc.abstractmethod
    def fail_posts(self, status: int, *, times: int = 1, wait: int | None = None) -> None:
        """Make the next ``times`` posts answer ``status`` (429 with ``wait`` seconds to wait,
        5xx, or 401 for a token the platform no longer accepts)."""

    @abc.abstractmethod
    def provider_with_bad_token(self) -> Provider:
        """This provider type configured with a bot token the fake does not accept."""


def announcement(status: Status = Status.OPEN, version: int = 1) -> Announcement:
    headline = "incident.created" if status is Status.OPEN else "incident.acknowledged"
    return Announcement(
        type=headline,  # type: ignore[arg-type]
        incident=IncidentSnapshot(
            id="INC-7",
            title="Database timeouts",
            severity=Severity.SEV2,
            status=status,
            created_at=utcnow() - timedelta(minutes=3),
            version=version,
            origin="chat",
        ),
        actor="alice",
        summary="Declared by alice" if status is Status.OPEN else "Acknowledged by alice",
    )


class ProviderContract:
    """The tests every provider type runs; a subclass supplies the ``harness`` fixture."""

    # -- ingress side ------------------------------------------------------------------------
    def test_verify_rejects_a_forged_request_with_401(self, harness: Harness) -> None:
        with pytest.raises(InvalidWebhook) as forged:
            harness.provider.verify(harness.forged_request("declare sev1 Fake"))
        assert forged.value.http_status == 401
        with pytest.raises(InvalidWebhook) as unsigned:
            harness.provider.verify(harness.unsigned_request("declare sev1 Fake"))
        assert unsigned.value.http_status == 401

    def test_parse_gives_a_neutral_command(self, harness: Harness) -> None:
        request = harness.command_request("declare sev2 Database timeouts")
        harness.provider.verify(request)
        inbound = harness.provider.parse(request)
        assert inbound.kind is InboundKind.COMMAND and inbound.status == 200
        command = inbound.command
        assert command is not None
        assert command.text == "declare sev2 Database timeouts"
        assert command.user.user_id == harness.user_id
        assert command.channel_id == harness.channel_id
        assert (command.instance, command.platform) == (harness.provider.name, harness.provider.type)
        assert command.source == "command"
        # Each request is its own command: a key of its own, so both run.
        other = harness.provider.parse(harness.command_request("declare sev2 Database timeouts")).command
        assert command.key and other is not None and other.key != command.key
        dumped = command.model_dump()
        assert [f for f in SLACK_SHAPED if f in dumped] == []
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in command.reply_to.items())

    # -- worker side -------------------------------------------------------------------------
    def test_reply_reaches_the_person(self, harness: Harness) -> None:
        command = _parsed(harness, "status INC-7")
        reply = Reply(text="INC-7 is acknowledged", ephemeral=True)
        if command.answer_key is not None and harness.provider.supports(Capability.ANSWER_IN_RESPONSE):
            # The first answer travels in the webhook's own response; ``reply`` posts one the
            # ingress no longer waits for (late, or a second answer) where the settings route it.
            body, _ = harness.provider.answer_body(command, reply)
            assert "INC-7 is acknowledged" in body.decode("utf-8")
        harness.provider.reply(command, reply)
        assert any("INC-7 is acknowledged" in text for text in harness.answers()), harness.answers()

    def test_announce_posts_a_card(self, harness: Harness) -> None:
        ref = harness.provider.announce(harness.channel, announcement(), key="n1:contract")
        assert isinstance(ref, MessageRef) and ref.message_id
        (card,) = harness.posts(harness.channel)
        assert "INC-7" in card and "Database timeouts" in card

    def test_update_edits_the_card_or_a_new_card_follows(self, harness: Harness) -> None:
        provider = harness.provider
        ref = provider.announce(harness.channel, announcement(), key="n1:contract")
        later = announcement(Status.ACKNOWLEDGED, version=2)
        if provider.supports(Capability.UPDATE_MESSAGE):
            provider.update_announcement(ref, later)
            (card,) = harness.posts(harness.channel)
        else:
            provider.announce(harness.channel, later, key="n2:contract")
            first, card = harness.posts(harness.channel)
            assert "acknowledged" not in first.lower()
        assert "acknowledged" in card.lower() and "INC-7" in card

    def test_a_post_is_found_again_by_its_key_where_the_platform_can(self, harness: Harness) -> None:
        provider = harness.provider
        since = utcnow().timestamp() - 60
        ref = provider.announce(harness.channel, announcement(), key="n1:contract")
        if not provider.supports(Capability.FIND_POSTED):
            # The fallback: never found, so a retry after a lost answer posts (at least once).
            assert provider.find_announcement(harness.channel, "n1:contract", since) is None
            return
        assert provider.find_announcement(harness.channel, "n1:contract", since) == ref
        assert provider.find_announcement(harness.channel, "n9:other", since) is None

    def test_a_429_is_rate_limited_with_the_platforms_wait(self, harness: Harness) -> None:
        harness.fail_posts(429, wait=7)
        with pytest.raises(RateLimited) as info:
            harness.provider.announce(harness.channel, announcement(), key="n1:contract")
        assert info.value.retry_after == pytest.approx(7, abs=1)
        assert harness.posts(harness.channel) == []

    def test_a_5xx_is_retryable(self, harness: Harness) -> None:
        harness.fail_posts(503, times=10)
        with pytest.raises(Retryable) as info:
            harness.provider.announce(harness.channel, announcement(), key="n1:contract")
        assert not isinstance(info.value, RateLimited)
        assert info.value.retryable

    def test_a_rejected_token_is_permanent_and_not_retried(self, harness: Harness) -> None:
        harness.fail_posts(401, times=10)
        _permanent_once(harness, lambda: harness.provider.announce(harness.channel, announcement()))

    def test_a_bad_bot_token_is_permanent_and_not_retried(self, harness: Harness) -> None:
        provider = harness.provider_with_bad_token()
        _permanent_once(harness, lambda: provider.announce(harness.channel, announcement()))

    def test_an_unknown_channel_is_permanent_and_not_retried(self, harness: Harness) -> None:
        _permanent_once(harness, lambda: harness.provider.announce(harness.unknown_channel, announcement()))


def _parsed(harness: Harness, text: str) -> Any:
    request = harness.command_request(text)
    harness.provider.verify(request)
    command = harness.provider.parse(request).command
    assert command is not None
    return command


def _permanent_once(harness: Harness, call: Any) -> None:
    before = harness.post_attempts()
    with pytest.raises(Permanent) as info:
        call()
    assert not info.value.retryable
    # At most the one attempt: a permanent refusal is never tried again in the provider.
    assert harness.post_attempts() - before <= 1
