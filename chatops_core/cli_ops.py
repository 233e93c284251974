"""``chatops status`` and ``chatops check``: the operators' view from a terminal.

``status`` prints what :mod:`chatops_core.operations` reads (queues, workers, dead letters,
deliveries, each provider instance's health); ``check`` validates the configuration, calls
each instance's platform with its credentials and says in words what to fix when that fails
(a bad token, a missing scope, an unreachable URL, a rate limit). Neither prints a secret:
no token, no broker URL, no platform URL beyond its host.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chatops_core.errors import ChatOpsError

if TYPE_CHECKING:
    from chatops_core.operations import Snapshot
    from chatops_core.settings import Settings

LoadSettings = Callable[[argparse.Namespace], Any]
AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def add_commands(add: AddCommand, load_settings: LoadSettings) -> None:
    """Register ``status`` and ``check`` through the CLI's ``add(name, func, help)``."""
    p = add(
        "status", lambda args: cmd_status(args, load_settings), "queues, workers, dead letters, providers"
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.add_argument(
        "--ping-timeout", type=float, default=1.0, help="seconds to wait for workers to answer (default 1)"
    )
    add(
        "check",
        lambda args: cmd_check(args, load_settings),
        "validate the configuration and each provider's credentials, saying what to fix",
    )


# --- status ------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace, load_settings: LoadSettings) -> int:
    """Exit 0 when everything was read and no provider is failing; 1 otherwise."""
    from chatops_core.operations import ops_redis, ping_workers, take_snapshot
    from chatops_core.publisher import is_redis_url
    from chatops_core.stack import broker_url_for_tools
    from chatops_core.store import IncidentStore

    settings = load_settings(args)
    broker_url = broker_url_for_tools(settings)
    client = ops_redis(broker_url) if is_redis_url(broker_url) else None
    store = IncidentStore.from_settings(settings)
    try:
        snap = take_snapshot(
            settings,
            client=client,
            store=store,
            broker_url=broker_url,
            workers=lambda: ping_workers(broker_url, timeout=args.ping_timeout),
        )
    finally:
        store.close()
        if client is not None:
            client.close()
    if args.json:
        print(snap.model_dump_json(indent=2))
    else:
        print(render_status(snap))
    failing = any(p.health.failing for p in snap.providers or [])
    return 1 if snap.unavailable or failing else 0


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    return f"{_duration((now - when).total_seconds())} ago"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def render_status(snap: Snapshot) -> str:
    """The snapshot as lines a person reads."""
    now = snap.taken_at
    lines: list[str] = []
    if snap.queues is not None:
        lines.append("queues:")
        for q in snap.queues:
            front = (
                f", next in line waiting {_duration(q.oldest_age_seconds)}"
                if q.oldest_age_seconds is not None
                else ""
            )
            lines.append(f"  {q.name:<14} {q.depth} waiting{front}")
    if snap.workers is not None:
        names = (
            f" ({', '.join(snap.workers)})" if snap.workers else " (no worker answered: nothing is consumed)"
        )
        lines.append(f"workers seen: {len(snap.workers)}{names}")
    if snap.dead_letters is not None:
        d = snap.dead_letters
        oldest = f", oldest {d.oldest.astimezone(UTC).isoformat(timespec='seconds')}" if d.oldest else ""
        hint = (
            " (`chatops dlq list`, then `chatops dlq replay --all` once the cause is fixed)"
            if d.count
            else ""
        )
        lines.append(f"dead letters: {d.count}{oldest}{hint}")
    if snap.deliveries is not None:
        if not snap.deliveries:
            lines.append("deliveries: none counted yet")
        else:
            lines.append("deliveries:")
            for instance, outcomes in sorted(snap.deliveries.items()):
                counts = " ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))
                lines.append(f"  {instance:<14} {counts}")
    if snap.providers is not None:
        lines.append("providers:")
        if not snap.providers:
            lines.append("  none configured")
        for p in snap.providers:
            h = p.health
            name = f"{p.instance} ({p.type}{'' if p.configured else ', no longer configured'})"
            if h.failing:
                state = (
                    f"FAILING, {h.consecutive_failures} failed call(s) in a row; last success "
                    f"{_ago(h.last_success, now)}, last error {_ago(h.last_error_at, now)}"
                )
                lines.append(f"  {name}: {state}")
                if p.advice:
                    lines.append(f"      {p.advice}")
            elif h.last_success is None and h.last_error_at is None:
                lines.append(f"  {name}: no call recorded yet")
            else:
                lines.append(f"  {name}: ok, last success {_ago(h.last_success, now)}")
    for missing in snap.unavailable:
        lines.append(f"unavailable: {missing}")
    return "\n".join(lines)


# --- check ---------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, load_settings: LoadSettings) -> int:
    """Exit 1 when any provider's check fails."""
    from chatops_core.providers import build_providers

    settings = load_settings(args)
    providers = build_providers(settings.providers, webhook_url=settings.public_webhook_url)
    print("configuration: ok")
    if not providers:
        print("providers: none configured")
    failed = 0
    for name, provider in providers.items():
        try:
            state = f"ok ({provider.health()})"
        except ChatOpsError as exc:
            failed += 1
            state = f"FAILED: {exc.code}: {explain_failure(exc, settings, name)}"
        print(f"provider {name} ({provider.type}): {state}; webhook URL {settings.webhook_url(name)}")
    # What only a real delivery finds (a scope a post needs, a channel's permission) shows
    # in what the workers recorded; an instance failing there fails the check too.
    recorded = _recorded_failures(settings)
    for line in recorded:
        print(line)
    return 1 if failed or recorded else 0


def explain_failure(exc: ChatOpsError, settings: Settings, instance: str) -> str:
    """A provider's failure in an operator's words (never a token or a URL beyond its host)."""
    from chatops_core.provider_health import describe_error, endpoint_host, explain, platform_name

    conf = settings.providers.get(instance)
    kind = conf.type if conf is not None else "?"
    host = endpoint_host(conf) if conf is not None else None
    return explain(describe_error(exc), platform=platform_name(kind), host=host)


def _recorded_failures(settings: Settings) -> list[str]:
    """What the workers recorded of instances failing now (say, a scope only a post needs),
    when the broker is Redis and answers within a second; nothing otherwise."""
    from chatops_core.operations import ops_redis, provider_states
    from chatops_core.publisher import is_redis_url
    from chatops_core.stack import broker_url_for_tools

    try:
        broker_url = broker_url_for_tools(settings)
    except ChatOpsError:
        return []
    if not is_redis_url(broker_url):
        return []
    client = ops_redis(broker_url)
    try:
        states = provider_states(client, settings)
    except Exception:
        return []
    finally:
        client.close()
    lines = []
    for p in states:
        if p.configured and p.health.failing and p.advice:
            failures = p.health.consecutive_failures
            lines.append(f"provider {p.instance}: deliveries failing ({failures} in a row): {p.advice}")
    return lines


__all__ = ["add_commands", "cmd_check", "cmd_status", "explain_failure", "render_status"]
