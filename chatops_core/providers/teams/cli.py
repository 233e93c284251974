"""``chatops teams manifest [--out FILE] [--instance NAME]``: the Teams app package of the bot.

A bot reaches people in Teams only as an app: a zip of ``manifest.json`` and two icons,
uploaded in Teams ("Apps" → "Manage your apps" → "Upload an app") or by an admin to the
organisation's catalogue
(https://learn.microsoft.com/en-us/microsoftteams/platform/concepts/build-and-test/apps-package).
The manifest follows schema 1.27 (:data:`MANIFEST_VERSION`)
(https://learn.microsoft.com/en-us/microsoft-365/extensibility/schema/): its ``id`` and the
bot's ``botId`` are the instance's ``app_id`` (the Azure bot registration's Microsoft App ID),
its scopes are ``team``, ``groupChat`` and ``personal``, its command list offers the command
words of :mod:`chatops_core.commands.grammar` (at most 10 per list, titles of 32 characters,
descriptions of 128), and ``validDomains`` holds the host of ``public_url``.

The icons are drawn here, without an image library: a 192x192 full-colour icon and a 32x32
outline icon, white on transparent, as the manifest reference asks
(https://learn.microsoft.com/en-us/microsoft-365/extensibility/schema/root-icons).

Webhook mode needs no package: an outgoing webhook is created in the team's "Manage team" →
"Apps" → "Create an outgoing webhook", and incoming webhooks with the Workflows app.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from chatops_core.commands.grammar import USAGE, CommandName
from chatops_core.providers.cli import add_instance_option, add_platform_command, chosen_instance
from chatops_core.providers.teams.config import TeamsSettings

MANIFEST_VERSION = "1.27"
MANIFEST_SCHEMA = (
    f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
)
SCOPES = ["team", "groupChat", "personal"]
ACCENT = (0xD1, 0x34, 0x38)  # the SEV-1 red of the cards
COLOR_ICON = "color.png"
OUTLINE_ICON = "outline.png"
# The command words offered in Teams' command menu: a list holds at most 10, so the words
# that need an incident channel (join, leave) and the rarer close/reopen are typed, not offered.
MENU_COMMANDS: tuple[CommandName, ...] = (
    CommandName.DECLARE,
    CommandName.ACK,
    CommandName.MITIGATE,
    CommandName.RESOLVE,
    CommandName.STATUS,
    CommandName.LIST,
    CommandName.ESCALATE,
    CommandName.ASSIGN,
    CommandName.NOTE,
    CommandName.HELP,
)
MAX_COMMANDS = 10
TITLE_MAX = 32
DESCRIPTION_MAX = 128


# -- icons -------------------------------------------------------------------------------------


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int, int]]) -> bytes:
    """An RGBA PNG of ``width`` x ``height`` whose pixel (x, y) is ``pixel(x, y)``."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            rows.extend(pixel(x, y))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def _mark(x: float, y: float) -> bool:
    """Whether (x, y), both in 0..1, is on the icon's mark: an exclamation point in a ring."""
    dx, dy = x - 0.5, y - 0.5
    radius = (dx * dx + dy * dy) ** 0.5
    ring = 0.36 <= radius <= 0.44
    bar = abs(dx) <= 0.05 and 0.24 <= y <= 0.6
    dot = (dx * dx + (y - 0.71) ** 2) ** 0.5 <= 0.055
    return ring or bar or dot


def color_icon(size: int = 192) -> bytes:
    """The full-colour icon: the mark in white on the accent colour, edge to edge."""
    r, g, b = ACCENT
    return png(
        size,
        size,
        lambda x, y: (255, 255, 255, 255) if _mark((x + 0.5) / size, (y + 0.5) / size) else (r, g, b, 255),
    )


def outline_icon(size: int = 32) -> bytes:
    """The outline icon: the mark in white on a transparent background."""
    return png(
        size,
        size,
        lambda x, y: (255, 255, 255, 255) if _mark((x + 0.5) / size, (y + 0.5) / size) else (0, 0, 0, 0),
    )


# -- the manifest ------------------------------------------------------------------------------


def commands() -> list[dict[str, str]]:
    """The command menu: each word with its usage, within the manifest's limits."""
    return [
        {"title": word.value[:TITLE_MAX], "description": USAGE[word][:DESCRIPTION_MAX]}
        for word in MENU_COMMANDS[:MAX_COMMANDS]
    ]


def manifest(conf: TeamsSettings, public_url: str, *, app_version: str = "1.0.0") -> dict[str, Any]:
    """The app manifest of the bot of ``conf``, served from ``public_url``."""
    if conf.app_id is None:
        raise ValueError("the instance has no app_id (bot mode)")
    base = public_url.rstrip("/")
    host = urlsplit(base).hostname or ""
    return {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": app_version,
        "id": conf.app_id,
        "developer": {
            "name": "Incident response",
            "websiteUrl": base,
            "privacyUrl": base,
            "termsOfUseUrl": base,
        },
        "name": {"short": "Incidents", "full": "Incident response"},
        "description": {
            "short": "Declare and run incidents from Teams",
            "full": (
                "Declare, acknowledge, mitigate, escalate and resolve incidents by mentioning the bot, "
                "and follow them on cards in your incident channels."
            ),
        },
        "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [
            {
                "botId": conf.app_id,
                "scopes": list(SCOPES),
                "isNotificationOnly": False,
                "supportsFiles": False,
                "commandLists": [{"scopes": list(SCOPES), "commands": commands()}],
            }
        ],
        "validDomains": [host] if host else [],
    }


def package(conf: TeamsSettings, public_url: str) -> bytes:
    """The app package: ``manifest.json`` and the two icons at the zip's top level."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest(conf, public_url), indent=2) + "\n")
        archive.writestr(COLOR_ICON, color_icon())
        archive.writestr(OUTLINE_ICON, outline_icon())
    return buffer.getvalue()


def write_manifest(args: argparse.Namespace, load_settings: Callable[[argparse.Namespace], Any]) -> int:
    settings = load_settings(args)
    chosen = chosen_instance(settings, TeamsSettings, args.instance, "Teams", "teams")
    if chosen is None:
        return 2
    name, conf = chosen
    if not conf.bot_mode:
        print(
            f"chatops: Teams instance {name!r} runs no bot (set app_id and app_password); an outgoing "
            "webhook needs no app package",
            file=sys.stderr,
        )
        return 2
    public_url = settings.public_url
    if not public_url or urlsplit(public_url).scheme != "https":
        print(
            "chatops: public_url must be the https:// address Teams reaches this service at "
            "(the manifest's validDomains and links)",
            file=sys.stderr,
        )
        return 2
    out = args.out or f"teams-app-{name}.zip"
    data = package(conf, public_url)
    with open(out, "wb") as handle:
        handle.write(data)
    endpoint = settings.webhook_url(name)
    print(f"wrote {out} ({len(data)} bytes): the Teams app of {name} (bot {conf.app_id})")
    print(f"the bot's messaging endpoint (Azure bot registration): {endpoint}")
    return 0


def add_commands(sub: Any, load_settings: Callable[[argparse.Namespace], Any]) -> None:
    """``chatops teams …`` (see :func:`chatops_core.cli._add_provider_commands`)."""
    man = add_platform_command(
        sub,
        ("teams", "Microsoft Teams: the bot's app package"),
        ("manifest", "write the Teams app package (manifest.json and icons, zipped)"),
        write_manifest,
        load_settings,
    )
    man.add_argument("--out", help="the zip file to write (default: teams-app-<instance>.zip)")
    add_instance_option(man, "Teams")
