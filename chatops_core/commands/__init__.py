"""Chat commands: the command language and what each command does."""

from chatops_core.commands.grammar import (
    USAGE,
    CommandName,
    ParsedCommand,
    help_text,
    parse_command,
    parse_incident_ref,
    parse_severity,
)

__all__ = [
    "USAGE",
    "CommandName",
    "ParsedCommand",
    "help_text",
    "parse_command",
    "parse_incident_ref",
    "parse_severity",
]
