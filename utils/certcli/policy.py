"""``issuance-policy.py`` / ``kmsca-issuance-policy``: read, check and replace the CA's per-caller
issuance policy (table item ``POLICY#issuance``).

The document format and its semantics: ``kmsca.caller_policy``. ``put`` validates the file with the
CA core (``kmsca.policy_document``, the same code the functions run) before writing, and writes only
if the stored revision is still the one it read (``--if-revision N`` to pin the one you edited).
Needs the stack's ``PolicyAdminPolicy`` (DescribeStacks for ``CaTableName``, GetItem/PutItem on
``POLICY#*``). Unlike the other CLIs it needs Python 3.11+ (the CA core's); on an older Python it
refuses with ``error: UnsupportedPython: ...`` (exit status 1).

Exit status: 0 done, 1 refused or failed (``error: <Code>: <message>`` on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kmsca.errors import CaError

from .aws import ENV_STACK_NAME, clients_for, default_stack_name, stack_outputs
from .contract import UTC
from .errors import CliError, Refused

if TYPE_CHECKING:
    from kmsca.policy_store import DynamoDbPolicyStore

ENV_TABLE_NAME = "KMSCA_TABLE_NAME"
#: The CA core's policy modules (``kmsca.policy_document`` and what it imports) need 3.11.
MIN_PYTHON = (3, 11)

_DESCRIPTION = "Read, check and replace the CA's per-caller issuance policy (table item ``POLICY#issuance``)."


def policy_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The ``get`` / ``check FILE`` / ``put FILE`` command line."""
    p = argparse.ArgumentParser(prog=prog, description=_DESCRIPTION)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("get", help="print the stored document (JSON) and its revision (stderr)")
    check = sub.add_parser("check", help="validate a document file without writing it")
    check.add_argument("file", type=Path)
    put = sub.add_parser("put", help="validate a document file and store it as the next revision")
    put.add_argument("file", type=Path)
    put.add_argument("--if-revision", type=int, metavar="N", help="write only if the stored revision is N (0: none)")
    for command in (sub.choices["get"], put):
        aws = command.add_argument_group("AWS")
        aws.add_argument("--profile", help="AWS named profile")
        aws.add_argument("--region", help="AWS region (default: AWS_REGION, else samconfig.toml)")
        aws.add_argument("--stack-name", help=f"the CA stack (default {ENV_STACK_NAME}, else samconfig.toml)")
        aws.add_argument(
            "--table-name", help=f"the CA table; overrides the CaTableName output (default {ENV_TABLE_NAME})"
        )
        aws.add_argument("--config-env", default="default", help="samconfig.toml environment (default 'default')")
        aws.add_argument("--samconfig", type=Path, metavar="FILE", help="samconfig.toml to read")
        aws.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="AWS read timeout")
    return p


def check_python(version: tuple[int, ...] | None = None) -> None:
    """Refuse a Python older than :data:`MIN_PYTHON` (``version``: default ``sys.version_info``).

    Raises:
        Refused: code ``UnsupportedPython``, naming the version found.
    """
    version = sys.version_info[:3] if version is None else version
    if version[:2] < MIN_PYTHON:
        found = ".".join(str(part) for part in version[:3])
        raise Refused(
            "UnsupportedPython",
            f"issuance-policy validates documents with the CA core, which needs Python "
            f"{'.'.join(map(str, MIN_PYTHON))}+; this is Python {found}",
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Refused("InvalidArgument", f"cannot read {path}: {exc}") from None


def _store(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[DynamoDbPolicyStore, Any]:
    from kmsca.policy_store import DynamoDbPolicyStore

    clients = clients_for(args)
    table = args.table_name or environ.get(ENV_TABLE_NAME)
    if not table:
        stack = args.stack_name or environ.get(ENV_STACK_NAME) or default_stack_name(args.samconfig, args.config_env)
        if not stack:
            raise Refused("InvalidArgument", f"no table: pass --table-name or --stack-name (or set {ENV_STACK_NAME})")
        table = stack_outputs(clients.cloudformation, stack).get("CaTableName")
        if not table:
            raise Refused("InvalidArgument", f"stack {stack!r} has no CaTableName output; is it this project's stack?")
    return DynamoDbPolicyStore(clients._client("dynamodb"), table), clients


def run_policy(args: argparse.Namespace, environ: Mapping[str, str], out: IO[str], err: IO[str]) -> None:
    """Carry out one parsed command.

    Raises:
        CaError: ``InvalidIssuancePolicy``, ``PolicyRevisionConflict`` (from the CA core).
        CliError: refusals of this tool (``UnsupportedPython``, ``NoPolicy``, ``InvalidArgument`` ...).
    """
    import datetime as dt

    check_python()
    from kmsca.policy_document import parse_document

    if args.command == "check":
        document = parse_document(_read(args.file))
        print(f"valid: {len(document.rules)} rule(s): {', '.join(r.name for r in document.rules) or 'none'}", file=out)
        return
    store, clients = _store(args, environ)
    stored = store.load()
    if args.command == "get":
        if stored is None:
            raise Refused("NoPolicy", "no issuance policy is stored (CA-account callers get the CA's global limits)")
        print(stored.text, file=out)
        print(f"revision {stored.revision}, updated {stored.updated_at} by {stored.updated_by}", file=err)
        return
    text = _read(args.file)
    parse_document(text)  # refused before anything is read or written
    current = stored.revision if stored else None
    expected = current if args.if_revision is None else (args.if_revision or None)
    if expected != current:
        raise Refused("PolicyRevisionConflict", f"the stored revision is {current or 0}, not {args.if_revision}")
    try:
        writer = str(clients.sts.get_caller_identity()["Arn"])
    except Exception:  # recorded for the audit trail only
        writer = "unknown"
    revision = store.save(text, expected, writer, dt.datetime.now(UTC))
    print(json.dumps({"revision": revision, "updated_by": writer}), file=out)


def policy_main(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None, prog: str | None = None
) -> int:
    """Run the tool; returns the exit status (0 done, 1 refused or failed; usage errors exit 2)."""
    args = policy_parser(prog).parse_args(argv)
    try:
        run_policy(args, environ if environ is not None else os.environ, sys.stdout, sys.stderr)
    except CaError as exc:  # InvalidIssuancePolicy, PolicyRevisionConflict
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:  # botocore: credentials, access denied, throttling
        print(f"error: AwsError: {exc}", file=sys.stderr)
        return 1
    return 0
