"""What the platforms' own commands share (``chatops discord register``, ``chatops teams
manifest``; see :func:`chatops_core.cli._add_provider_commands`): the ``--config`` and
``--instance`` options, and finding the instance a command works on."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from chatops_core.providers.config import ProviderSettingsBase

Settings = TypeVar("Settings", bound=ProviderSettingsBase)


def add_platform_command(
    sub: Any,
    platform: tuple[str, str],
    command: tuple[str, str],
    run: Callable[[argparse.Namespace, Callable[[argparse.Namespace], Any]], int],
    load_settings: Callable[[argparse.Namespace], Any],
) -> argparse.ArgumentParser:
    """``chatops <platform> <command>``: ``platform`` and ``command`` are each a name and its
    help; the command takes ``--config`` and runs ``run(args, load_settings)``. Returns the
    command's parser, for its own options."""
    name, platform_help = platform
    parser = sub.add_parser(name, help=platform_help)
    inner = parser.add_subparsers(dest=f"{name}_command", required=True)
    command_parser: argparse.ArgumentParser = inner.add_parser(command[0], help=command[1])
    add_config_option(command_parser)
    command_parser.set_defaults(func=lambda args: run(args, load_settings))
    return command_parser


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """``--config``, as every command takes it."""
    parser.add_argument(
        "--config", default=argparse.SUPPRESS, help="TOML configuration file (else CHATOPS_CONFIG)"
    )


def add_instance_option(parser: argparse.ArgumentParser, platform: str) -> None:
    """``--instance``: which configured instance of ``platform`` the command works on."""
    parser.add_argument("--instance", help=f"the {platform} instance to use (default: the first configured)")


def chosen_instance(
    settings: Any, model: type[Settings], wanted: str | None, platform: str, type_name: str
) -> tuple[str, Settings] | None:
    """``(name, settings)`` of the instance of ``model`` named ``wanted``, or of the first one
    configured when ``wanted`` is None. None, said on stderr, when there is no such instance."""
    found = {name: conf for name, conf in settings.providers.items() if isinstance(conf, model)}
    chosen: tuple[str, Settings] | None
    if wanted:
        conf = found.get(wanted)
        chosen = (wanted, conf) if conf is not None else None
    else:
        chosen = next(iter(found.items()), None)
    if chosen is None:
        which = f"instance {wanted!r}" if wanted else "instance"
        print(f'chatops: no {platform} {which} is configured (type = "{type_name}")', file=sys.stderr)
    return chosen
