"""The ``chatops`` command: one entry point for every process and tool."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chatops_core.errors import ChatOpsError, ConfigError

if TYPE_CHECKING:
    from chatops_core.publisher import TaskPublisher
    from chatops_core.store import IncidentStore
    from chatops_core.store.delivery import DeadLetter


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


def _beside_running_stack(settings) -> None:  # noqa: ANN001 - Settings
    """Point this process (and the Celery process it becomes) at the broker and platform of a
    `chatops run` serving from the same data directory, unless a broker is configured."""
    from chatops_core.stack import running_stack_env

    os.environ.update(running_stack_env(settings, config_given="CHATOPS_CONFIG" in os.environ))


def cmd_worker(args: argparse.Namespace) -> int:
    from chatops_core.stack import worker_argv

    settings = _settings(args)
    _beside_running_stack(settings)
    return _exec(worker_argv(queues=args.queues, concurrency=args.concurrency, log_level=settings.log_level))


def cmd_beat(args: argparse.Namespace) -> int:
    from chatops_core.stack import beat_argv

    settings = _settings(args)
    _beside_running_stack(settings)
    return _exec(beat_argv(settings))


def cmd_simulate(args: argparse.Namespace) -> int:
    from chatops_core.simulate import simulate

    return simulate(_settings(args), args)


def cmd_db(args: argparse.Namespace) -> int:
    from chatops_core.store import IncidentStore

    settings = _settings(args)
    if args.db_command == "upgrade":
        store = IncidentStore.from_settings(settings)
        store.upgrade()
        print(f"database at revision {store.current_revision()}")
        store.close()
    return 0


# Dead letters shown by `chatops dlq list`; the oldest first.
DLQ_LIST_LIMIT = 1000


def _dlq_queue(task_name: str) -> str | None:
    """The queue that serves ``task_name``, None for a task no queue serves."""
    from chatops_core.tasks import TASK_QUEUES

    return TASK_QUEUES.get(task_name)


def cmd_dlq(args: argparse.Namespace) -> int:
    """``chatops dlq list | replay [ID | --all] | drop ID``: the tasks that gave up."""
    from chatops_core.store import IncidentStore

    settings = _settings(args)
    store = IncidentStore.from_settings(settings)
    try:
        if store.current_revision() != store.head_revision():
            print("chatops: the database is not up to date; run `chatops db upgrade` first", file=sys.stderr)
            return 1
        if args.dlq_command == "list":
            return _dlq_list(store)
        if args.dlq_command == "drop":
            if not store.drop_dead_letter(args.id):
                return _no_dead_letter(args.id)
            print(f"dropped dead letter {args.id}")
            return 0
        if args.all == (args.id is not None):
            print("chatops: give one dead letter id, or --all", file=sys.stderr)
            return 2
        from chatops_core.stack import broker_url_for_tools

        return _dlq_replay(store, broker_url_for_tools(settings), args.id)
    finally:
        store.close()


def _no_dead_letter(letter_id: int) -> int:
    print(f"chatops: there is no dead letter {letter_id}; `chatops dlq list` shows them", file=sys.stderr)
    return 1


def _dlq_list(store: IncidentStore) -> int:
    letters = store.dead_letters(limit=DLQ_LIST_LIMIT + 1)
    if not letters:
        print("no dead letters")
    for d in letters[:DLQ_LIST_LIMIT]:
        reason = " ".join(d.reason.split())
        print(
            f"{d.id}\t{d.created_at.isoformat(timespec='seconds')}\t{d.task_name}\t{d.target or '-'}"
            f"\tattempts={d.attempts}\t{reason}"
        )
    if len(letters) > DLQ_LIST_LIMIT:
        print(f"(the oldest {DLQ_LIST_LIMIT} shown; replay or drop them to see the rest)")
    return 0


def _dlq_replay(store: IncidentStore, broker_url: str, letter_id: int | None) -> int:
    """Enqueue dead letter ``letter_id`` (None: all, oldest first) again, dropping each once enqueued."""
    from chatops_core.publisher import TaskPublisher

    single = None
    if letter_id is not None:
        single = store.dead_letter(letter_id)
        if single is None:
            return _no_dead_letter(letter_id)
    publisher = TaskPublisher(broker_url)
    try:
        if single is not None:
            return 0 if _replay_one(store, publisher, single) else 1
        kept: set[int] = set()
        replayed = 0
        # Replayed letters leave the table and kept ones are skipped, so every round moves on.
        while batch := [d for d in store.dead_letters(limit=100 + len(kept)) if d.id not in kept]:
            for letter in batch:
                if _replay_one(store, publisher, letter):
                    replayed += 1
                else:
                    kept.add(letter.id)
        if not replayed and not kept:
            print("no dead letters")
        return 1 if kept else 0
    except ChatOpsError as exc:
        print(f"chatops: replay stopped, the dead letter is kept: {exc.message}", file=sys.stderr)
        return 1
    finally:
        publisher.close()


def _replay_one(store: IncidentStore, publisher: TaskPublisher, letter: DeadLetter) -> bool:
    """Enqueue ``letter`` on its task's queue, then drop it; False (kept) for a task no queue serves.

    Raises what :meth:`TaskPublisher.send` raises when the broker does not take it.
    """
    queue = _dlq_queue(letter.task_name)
    if queue is None:
        print(
            f"chatops: dead letter {letter.id} is task {letter.task_name}, which no queue serves; "
            f"kept (`chatops dlq drop {letter.id}` forgets it)",
            file=sys.stderr,
        )
        return False
    task_id = publisher.send(letter.task_name, letter.args, letter.kwargs, queue=queue)
    # Dropped only once the broker took the task, so a failed replay loses nothing.
    store.drop_dead_letter(letter.id)
    print(f"replayed dead letter {letter.id}: {letter.task_name} on queue {queue} as task {task_id}")
    return True


def _usage(message: str) -> int:
    print(f"chatops: {message}", file=sys.stderr)
    return 2


def cmd_notify(args: argparse.Namespace) -> int:
    """``chatops notify INC-7 --type incident.created``: announce an incident as it stands now."""
    from chatops_core.commands.grammar import ID_FORMS, parse_incident_ref
    from chatops_core.errors import IncidentNotFound
    from chatops_core.notifications import IncidentSnapshot, Notification, enqueue_notification
    from chatops_core.publisher import TaskPublisher
    from chatops_core.stack import broker_url_for_tools
    from chatops_core.store import IncidentStore

    settings = _settings(args)
    number = parse_incident_ref(args.incident)
    if number is None:
        return _usage(f"{args.incident!r} is not an incident id; write {ID_FORMS}")
    channels: dict[str, list[str]] = {}
    for spec in args.channel or []:
        instance, sep, channel = spec.partition(":")
        if not sep or not instance or not channel:
            print(
                f"chatops: --channel {spec!r}: write INSTANCE:CHANNEL, e.g. slack:#incidents", file=sys.stderr
            )
            return 2
        if settings.providers and instance not in settings.providers:
            known = ", ".join(sorted(settings.providers))
            print(
                f"chatops: --channel {spec!r}: no provider instance {instance!r} (configured: {known})",
                file=sys.stderr,
            )
            return 2
        channels.setdefault(instance, []).append(channel)
    store = IncidentStore.from_settings(settings)
    try:
        incident = store.get(number)
    except IncidentNotFound as exc:
        print(f"chatops: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    notification = Notification(
        type=args.type,
        incident=IncidentSnapshot.of(incident, url=settings.incident_link(incident.id)),
        channels=channels or None,
        summary=args.summary,
    )
    publisher = TaskPublisher(broker_url_for_tools(settings))
    try:
        notification_id, _ = enqueue_notification(publisher, notification)
    except ChatOpsError as exc:
        print(f"chatops: could not enqueue: {exc.message}", file=sys.stderr)
        return 1
    finally:
        publisher.close()
    print(f"enqueued {args.type} for {incident.id} ({incident.status.value}) as {notification_id}")
    return 0


def _add_provider_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Commands a provider package contributes: its module ``cli`` (``<package>.cli``), when it
    has one, defines ``add_commands(subparsers, load_settings)``, adding its subcommands with
    ``--config`` and a ``func(args) -> int`` as the ones here have; ``load_settings(args)``
    reads the configuration as every command does. Found like the providers themselves."""
    import importlib
    import importlib.util

    from chatops_core.providers.registry import provider_packages

    for package in provider_packages().values():
        name = f"{package.package}.cli"
        if importlib.util.find_spec(name) is None:
            continue
        add_commands = getattr(importlib.import_module(name), "add_commands", None)
        if add_commands is not None:
            add_commands(sub, _settings)


def build_parser() -> argparse.ArgumentParser:
    from chatops_core.notifications import NOTIFICATION_TYPES

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

    p = add(
        "simulate",
        cmd_simulate,
        "send a command to a running ingress as the instance's platform would, and print the answer",
    )
    p.add_argument(
        "--provider",
        help="provider instance to type in (default: the first configured instance whose platform "
        "simulate can play; beside `chatops run` with nothing configured, its Slack playground)",
    )
    p.add_argument("--user", help="user id of the caller (default: the platform's simulated user)")
    p.add_argument("--user-name", default="simulator")
    p.add_argument(
        "--channel",
        help="channel id the command is typed in (default: the playground's id for the name)",
    )
    p.add_argument("--channel-name", default="incidents", help="name of that channel (default incidents)")
    p.add_argument(
        "--url",
        help="ingress base URL (default: http://HOST:PORT when CHATOPS_HOST/CHATOPS_PORT or the config "
        "set them, else the URL a running `chatops run` wrote to DATA_DIR/ingress.url, else "
        "http://127.0.0.1:8080)",
    )
    p.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the answer")
    p.add_argument("text", help='e.g. "/im declare sev2 Database timeouts"')

    p = add("db", cmd_db, "database maintenance")
    p.add_argument("db_command", choices=["upgrade"])

    p = add("notify", cmd_notify, "enqueue a notification about an incident as it stands now")
    p.add_argument("incident", help="incident id: INC-7, #7 or 7")
    p.add_argument("--type", required=True, choices=NOTIFICATION_TYPES, help="notification type")
    p.add_argument(
        "--channel",
        action="append",
        metavar="INSTANCE:CHANNEL",
        help="deliver only here (repeatable), e.g. slack:#incidents; default: the usual routing",
    )
    p.add_argument("--summary", help="a line saying what changed")

    from chatops_core.cli_ops import add_commands as add_ops_commands

    add_ops_commands(add, _settings)  # status, check

    p = add("dlq", cmd_dlq, "dead letters: tasks that gave up (list, replay, drop)")
    dlq = p.add_subparsers(dest="dlq_command", required=True)

    def add_dlq(name: str, help_text: str) -> argparse.ArgumentParser:
        d = dlq.add_parser(name, help=help_text)
        d.add_argument(
            "--config", default=argparse.SUPPRESS, help="TOML configuration file (else CHATOPS_CONFIG)"
        )
        return d

    add_dlq("list", "one line each: id, created at, task, target, attempts, reason")
    d = add_dlq("replay", "enqueue the task again on its queue, then drop the dead letter")
    d.add_argument("id", type=int, nargs="?", help="dead letter id (see `chatops dlq list`)")
    d.add_argument("--all", action="store_true", help="replay every dead letter, oldest first")
    d = add_dlq("drop", "forget a dead letter")
    d.add_argument("id", type=int)

    from chatops_core.cli_users import add_users_command

    add_users_command(sub, _settings)
    from chatops_core.cli_audit import add_audit_command

    add_audit_command(sub, _settings)
    from chatops_core.cli_tokens import add_tokens_command

    add_tokens_command(sub)
    _add_provider_commands(sub)
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
