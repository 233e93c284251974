"""``chatops tokens``: mint API tokens, and hash the ones you have.

- ``chatops tokens new NAME --scope notify [--scope read]``: a fresh random token, printed this
  once, and the ``[api.tokens.NAME]`` lines to paste into the configuration file (its hash and
  scopes: the token itself is kept nowhere by the service).
- ``chatops tokens hash``: reads a token from standard input (without echoing it, at a
  terminal) and prints its ``sha256:...`` hash, for ``[api] metrics_token_hash`` or to put an
  existing token, the older ``api_token`` say, under a name with scopes.

Neither reads the configuration: minting a token needs none, and works before there is one.
See :mod:`chatops_core.api_tokens` for what the scopes open and why a SHA-256 is enough.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from chatops_core.api_tokens import TOKEN_NAME, TOKEN_NAME_RULE, Scope, hash_token, new_token


def add_tokens_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``chatops tokens`` (``new``, ``hash``) to the ``chatops`` subcommands."""
    p = sub.add_parser("tokens", help="API tokens: mint a new one (new), or hash one you have (hash)")
    p.set_defaults(func=cmd_tokens)
    tokens = p.add_subparsers(dest="tokens_command", required=True)
    n = tokens.add_parser(
        "new", help="print a fresh random token once, and the [api.tokens.NAME] lines to configure it"
    )
    n.add_argument("name", help=f"the token's name in the configuration and the logs ({TOKEN_NAME_RULE})")
    n.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=[scope.value for scope in Scope],
        help="what it may do (repeatable): notify, read, or admin (everything)",
    )
    tokens.add_parser("hash", help="read a token from standard input and print its hash")


def cmd_tokens(args: argparse.Namespace) -> int:
    if args.tokens_command == "new":
        return _new(args.name, [Scope(value) for value in args.scope], sys.stdout)
    return _hash(sys.stdin, sys.stdout)


def _new(name: str, scopes: list[Scope], out: TextIO) -> int:
    if not TOKEN_NAME.match(name):
        print(f"chatops: token name {name[:64]!r} must be {TOKEN_NAME_RULE}", file=sys.stderr)
        return 2
    token = new_token()
    # Listed once each, in the order Scope defines, whatever order and repeats were typed.
    listed = ", ".join(f'"{scope.value}"' for scope in Scope if scope in scopes)
    out.write(
        f"API token {name!r}, shown only this once: hand it to its client now.\n"
        f"\n    {token}\n\n"
        "Add these lines to the configuration file (only the hash is kept there):\n\n"
        f"[api.tokens.{name}]\n"
        f'hash = "{hash_token(token)}"\n'
        f"scopes = [{listed}]\n"
    )
    return 0


def _read_token(source: TextIO) -> str:
    if source.isatty():
        return getpass.getpass("token (not echoed): ")
    return source.readline()


def _hash(source: TextIO, out: TextIO) -> int:
    # The first line, without the line break or surrounding blanks: what a Bearer header
    # carries is trimmed the same way before it is hashed.
    token = _read_token(source).strip()
    if not token:
        print("chatops: no token on standard input", file=sys.stderr)
        return 2
    out.write(hash_token(token) + "\n")
    return 0
