"""The ``chatops`` command: one entry point for every process and tool."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from chatops_core.errors import ChatOpsError, ConfigError


def _settings(args: argparse.Namespace):  # noqa: ANN202 - returns Settings
    from chatops_core.settings import load_settings

    if getattr(args, "config", None):
        os.environ["CHATOPS_CONFIG"] = os.path.abspath(args.config)
    settings = load_settings()
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    from chatops_core.stack import run_stack

    if args.host:
        os.environ["CHATOPS_HOST"] = args.host
    if args.port is not None:
        os.environ["CHATOPS_PORT"] = str(args.port)
    return run_stack(_settings(args))


def _exec(argv: list[str]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 0  # not reached


def cmd_ingress(args: argparse.Namespace) -> int:
    from chatops_core.stack import gunicorn_argv

    settings = _settings(args)
    return _exec(gunicorn_argv(settings, workers=args.workers))


def cmd_worker(args: argparse.Namespace) -> int:
    from chatops_core.stack import worker_argv

    settings = _settings(args)
    settings.effective_broker_url()
    return _exec(worker_argv(queues=args.queues, concurrency=args.concurrency, log_level=settings.log_level))


def cmd_beat(args: argparse.Namespace) -> int:
    from chatops_core.stack import beat_argv

    settings = _settings(args)
    settings.effective_broker_url()
    return _exec(beat_argv(settings))


def cmd_simulate(args: argparse.Namespace) -> int:
    from chatops_core.simulate import simulate

    return simulate(_settings(args), args)


def cmd_db(args: argparse.Namespace) -> int:
    from chatops_core.store import IncidentStore

    settings = _settings(args)
    if args.db_command == "upgrade":
        store = IncidentStore(settings.effective_database_url())
        store.upgrade()
        print(f"database at revision {store.current_revision()}")
        store.close()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from chatops_core.providers import build_providers

    settings = _settings(args)
    providers = build_providers(settings.providers)
    print("configuration: ok")
    if not providers:
        print("providers: none configured")
    failed = 0
    for name, provider in providers.items():
        try:
            state = f"ok ({provider.health()})"
        except ChatOpsError as exc:
            failed += 1
            state = f"FAILED: {exc.code}: {exc.message}"
        print(f"provider {name} ({provider.type}): {state}; webhook URL {settings.webhook_url(name)}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatops", description="Run incidents from chat.")
    parser.add_argument("--config", help="TOML configuration file (else CHATOPS_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:  # noqa: ANN001
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--config", default=argparse.SUPPRESS, help="TOML configuration file (else CHATOPS_CONFIG)"
        )
        p.set_defaults(func=func)
        return p

    p = add("run", cmd_run, "the whole stack: embedded Redis, ingress, one worker for every queue")
    p.add_argument("--host")
    p.add_argument("--port", type=int)

    p = add("ingress", cmd_ingress, "the webhook ingress (gunicorn)")
    p.add_argument("--workers", type=int, default=2)

    p = add("worker", cmd_worker, "a Celery worker")
    p.add_argument("-Q", "--queues", default="interactive,notifications,maintenance")
    p.add_argument("-c", "--concurrency", type=int, default=2)

    add("beat", cmd_beat, "the scheduler of periodic tasks")

    p = add("simulate", cmd_simulate, "send a signed command to a running ingress and print the answer")
    p.add_argument("--provider", help="provider instance (default: the first Slack instance)")
    p.add_argument("--user", default="U0SIMULATE", help="user id of the caller")
    p.add_argument("--user-name", default="simulator")
    p.add_argument("--channel", default="C0SIMULATE", help="channel id the command is typed in")
    p.add_argument("--channel-name", default="incidents")
    p.add_argument("--url", help="ingress base URL (default http://HOST:PORT)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the answer")
    p.add_argument("text", help='e.g. "/im declare sev2 Database timeouts"')

    p = add("db", cmd_db, "database maintenance")
    p.add_argument("db_command", choices=["upgrade"])

    add("check", cmd_check, "validate the configuration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"chatops: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
