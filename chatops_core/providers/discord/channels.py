"""Names and permissions of incident channels on Discord.

A text channel's name is lowercase, without spaces (the client turns them into ``-``), 1 to
100 characters (https://discord.com/developers/docs/resources/guild#create-guild-channel).
Names here keep to ``a-z``, ``0-9``, ``-`` and ``_``: the incident id, then as much of the
title as fits. Discord allows two channels of one name, so no suffix is needed for a taken
one.

Access: an incident channel is private to the people in the incident. The guild's
``@everyone`` role (whose id is the guild's) is denied VIEW_CHANNEL; the bot, the declarer
and later the commander and whoever joins get member overwrites (type 1) allowing it.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_LENGTH = 100
# Permission bits (https://discord.com/developers/docs/topics/permissions).
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
READ_MESSAGE_HISTORY = 1 << 16
MANAGE_CHANNELS = 1 << 4
MANAGE_ROLES = 1 << 28
# Pinning became a permission of its own in 2026 (Manage Messages granted it before).
PIN_MESSAGES = 1 << 51
ADD_REACTIONS = 1 << 6
# What a member of an incident channel may do, and what the bot needs in it.
MEMBER_ALLOW = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ADD_REACTIONS | EMBED_LINKS
BOT_ALLOW = MEMBER_ALLOW | MANAGE_MESSAGES | PIN_MESSAGES | MANAGE_CHANNELS | MANAGE_ROLES
# What a locked (closed) channel denies its members.
LOCKED_DENY = SEND_MESSAGES | ADD_REACTIONS
# The bot's permissions in the guild, for the invite URL.
BOT_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | MANAGE_MESSAGES
    | PIN_MESSAGES
    | MANAGE_CHANNELS
    | MANAGE_ROLES
)
ROLE, MEMBER = 0, 1
GUILD_TEXT = 0
_NOT_NAME = re.compile(r"[^a-z0-9_]+")


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"-{2,}", "-", _NOT_NAME.sub("-", ascii_text.lower())).strip("-_")


def channel_name_for(incident_id: str, title: str) -> str:
    """``("INC-12", "Database timeouts!")`` → ``"inc-12-database-timeouts"``, ≤ 100 characters."""
    prefix = slugify(incident_id)[:40] or "incident"
    rest = slugify(title)
    name = f"{prefix}-{rest}" if rest else prefix
    if len(name) > MAX_NAME_LENGTH:
        name = name[:MAX_NAME_LENGTH]
        boundary = name.rfind("-")
        if boundary > len(prefix):
            name = name[:boundary]
    return name.strip("-_")


def invite_url(application_id: str) -> str:
    """The URL that adds the bot to a server with the scopes and permissions it needs."""
    return (
        "https://discord.com/oauth2/authorize"
        f"?client_id={application_id}&scope=bot+applications.commands&permissions={BOT_PERMISSIONS}"
    )
