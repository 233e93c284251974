"""``chatops discord register [--guild ID] [--instance NAME]``: put the ``/im`` command.

Registration is a bulk overwrite of the application's commands
(https://discord.com/developers/docs/interactions/application-commands#bulk-overwrite-global-application-commands):
idempotent, and it replaces whatever commands the application had. With ``--guild`` the
command is registered in that server only, where it shows at once (global commands are for
every server the bot is in).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from chatops_core.errors import ChatOpsError
from chatops_core.providers.discord import commands
from chatops_core.providers.discord.channels import invite_url
from chatops_core.providers.discord.client import DiscordClient
from chatops_core.providers.discord.config import SNOWFLAKE, DiscordSettings


def _instance(settings: Any, wanted: str | None) -> tuple[str, DiscordSettings] | None:
    found = {name: conf for name, conf in settings.providers.items() if isinstance(conf, DiscordSettings)}
    if wanted:
        conf = found.get(wanted)
        return (wanted, conf) if conf is not None else None
    return next(iter(found.items()), None)


def register(args: argparse.Namespace, load_settings: Callable[[argparse.Namespace], Any]) -> int:
    settings = load_settings(args)
    chosen = _instance(settings, args.instance)
    if chosen is None:
        which = f"instance {args.instance!r}" if args.instance else "instance"
        print(f'chatops: no Discord {which} is configured (type = "discord")', file=sys.stderr)
        return 2
    name, conf = chosen
    if args.guild is not None and not SNOWFLAKE.match(args.guild):
        print("chatops: --guild must be a server id (a snowflake)", file=sys.stderr)
        return 2
    client = DiscordClient(conf.api_url, conf.bot_token, timeout=conf.timeout)
    try:
        registered = client.bulk_overwrite_commands(conf.application_id, [commands.definition()], args.guild)
    except ChatOpsError as exc:
        print(
            f"chatops: registering /{commands.COMMAND_NAME} failed: {exc.code}: {exc.message}",
            file=sys.stderr,
        )
        return 1
    finally:
        client.close()
    where = f"in guild {args.guild}" if args.guild else "globally"
    words = len(commands.SUBCOMMANDS)
    print(
        f"registered /{commands.COMMAND_NAME} ({words} subcommands) for {name} {where}: "
        f"{len(registered)} command(s)"
    )
    print(f"invite the bot with: {invite_url(conf.application_id)}")
    return 0


def add_commands(sub: Any, load_settings: Callable[[argparse.Namespace], Any]) -> None:
    """``chatops discord …`` (see :func:`chatops_core.cli._add_provider_commands`)."""
    parser = sub.add_parser("discord", help="Discord: register the /im command")
    inner = parser.add_subparsers(dest="discord_command", required=True)
    reg = inner.add_parser("register", help="put the /im command definition (bulk overwrite, idempotent)")
    reg.add_argument(
        "--config", default=argparse.SUPPRESS, help="TOML configuration file (else CHATOPS_CONFIG)"
    )
    reg.add_argument("--guild", help="register in this server only (shows at once); default: globally")
    reg.add_argument("--instance", help="the Discord instance to use (default: the first configured)")
    reg.set_defaults(func=lambda args: register(args, load_settings))
