"""``chatops audit``: the audit trail, newest first.

``chatops audit [--since 30m|2h|1d|ISO] [--actor WHO] [--outcome ok|denied|rate_limited|forged|invalid]
[--json] [--limit N]``

``WHO`` is a person's id (``chatops users list``), a platform user ``<instance>:<user id>`` or
an e-mail address; a person's records are theirs on every platform. Records the ingress left
on its Redis stream reach the store within a few seconds (the ``chatops.audit_drain`` task).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from chatops_core.audit import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    OUTCOME_NAMES,
    ActorFilter,
    AuditRecord,
    parse_outcome,
    parse_since,
    record_json,
)


def add_audit_command(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    load_settings: Callable[[argparse.Namespace], Any],
) -> None:
    """Add ``chatops audit`` to the ``chatops`` subcommands; ``load_settings(args)`` reads
    the configuration as every command does."""

    def run(args: argparse.Namespace) -> int:
        return cmd_audit(args, load_settings(args))

    p = sub.add_parser("audit", help="the audit trail: every chat action, API intake, grant and refusal")
    p.add_argument(
        "--config", default=argparse.SUPPRESS, help="TOML configuration file (else CHATOPS_CONFIG)"
    )
    p.add_argument("--since", help="records from then on: 30m, 2h, 1d or an ISO 8601 time (UTC if no zone)")
    p.add_argument("--actor", help="a person id, INSTANCE:USER_ID or an e-mail address")
    p.add_argument("--outcome", help=OUTCOME_NAMES)
    p.add_argument("--json", action="store_true", help="one JSON array, as GET /api/v1/audit answers")
    p.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"at most this many (default {DEFAULT_LIMIT})"
    )
    p.set_defaults(func=run)


def cmd_audit(args: argparse.Namespace, settings: Any) -> int:
    try:
        since = parse_since(args.since) if args.since else None
        actor = ActorFilter.parse(args.actor) if args.actor else None
        outcome = parse_outcome(args.outcome) if args.outcome else None
        if not 1 <= args.limit <= MAX_LIMIT:
            raise ValueError(f"--limit must be from 1 to {MAX_LIMIT}, not {args.limit}")
    except ValueError as exc:
        print(f"chatops: {exc}", file=sys.stderr)
        return 2
    from chatops_core.store import IncidentStore

    store = IncidentStore.from_settings(settings)
    try:
        if store.current_revision() != store.head_revision():
            print("chatops: the database is not up to date; run `chatops db upgrade` first", file=sys.stderr)
            return 1
        records = store.audit_records(since=since, actor=actor, outcome=outcome, limit=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps([record_json(record) for record in records], indent=2))
        return 0
    if not records:
        print("no audit records" + (" match" if since or actor or outcome else " yet"))
    for record in records:
        print(_line(record))
    return 0


def _line(record: AuditRecord) -> str:
    """One record on one line, tab-separated: when, outcome, who, where, what, why."""
    at = record.at.isoformat(timespec="seconds").replace("+00:00", "Z")
    who = record.actor or "-"
    if record.instance and record.user_id:
        who += f" ({'claimed ' if record.claimed else ''}{record.instance}:{record.user_id})"
    if record.person_id is not None:
        who += f" [person {record.person_id}]"
    where = " ".join(part for part in (record.platform, record.channel and f"#{record.channel}") if part)
    what = " ".join(part for part in (record.source, record.command, record.incident) if part)
    return "\t".join((at, record.outcome.value, who, where or "-", what, record.reason or ""))
