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
from chatops_core.providers.cli import add_instance_option, add_platform_command, chosen_instance
from chatops_core.providers.discord import commands
from chatops_core.providers.discord.channels import invite_url
from chatops_core.providers.discord.client import DiscordClient
from chatops_core.providers.discord.config import SNOWFLAKE, DiscordSettings


def register(args: argparse.Namespace, load_settings: Callable[[argparse.Namespace], Any]) -> int:
    settings = load_settings(args)
    chosen = chosen_instance(settings, DiscordSettings, args.instance, "Discord", "discord")
    if chosen is None:
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
    reg = add_platform_command(
        sub,
        ("discord", "Discord: register the /im command"),
        ("register", "put the /im command definition (bulk overwrite, idempotent)"),
        register,
        load_settings,
    )
    reg.add_argument("--guild", help="register in this server only (shows at once); default: globally")
    add_instance_option(reg, "Discord")
