"""``edge-targets.py``: register, list and deregister the CA's edge targets (workload accounts).

- ``register NAME --account-id ID --role-arn ARN --kvs-arn ARN [--trust-store-id ID]``: the external
  id comes from ``--external-id`` or, to keep it out of the process list, the environment variable
  ``KMSCA_EDGE_EXTERNAL_ID``. The targets function checks, before it writes anything, that the role
  is in that account and can be assumed with the external id and not without it, and that the
  KeyValueStore (and trust store) can be read through it.
- ``list``: every target (the external id is never shown).
- ``deregister NAME``.

The function comes from ``--function-name`` / ``KMSCA_TARGETS_FUNCTION_NAME`` or the stack output
``TargetsFunctionName``; the caller needs the stack's ``TargetAdminPolicy``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from .aws import AwsClients, add_aws_arguments, clients_for, find_function, function_and_stack, invoke_function
from .errors import Refused
from .report import Outcome, run_cli

ENV_TARGETS_FUNCTION_NAME = "KMSCA_TARGETS_FUNCTION_NAME"
ENV_EXTERNAL_ID = "KMSCA_EDGE_EXTERNAL_ID"
OUTPUT_TARGETS_FUNCTION_NAME = "TargetsFunctionName"
COLUMNS = ("name", "account_id", "kvs_arn", "trust_store_id", "registered_at")

#: Next steps for the targets function's refusals (printed after its message).
NEXT_STEPS = {
    "EdgeRoleRefused": "check that the edge stack's ExternalId equals the external id given here and that its "
    "CaRoleArns include the CA stack's EdgeCallerRoleArns output",
    "EdgeRoleUnsafe": "deploy edge/template.yaml: its EdgeRole trusts the CA's roles only with sts:ExternalId",
    "EdgeTargetUnavailable": "check the edge stack's outputs (RevokedSerialsStoreArn, TrustStoreId) and retry",
    "TargetAlreadyRegistered": "deregister it first, or choose another name",
    "TargetNotFound": "see the registered names with 'edge-targets.py list'",
    "InvalidTarget": "use the edge stack's outputs EdgeRoleArn, RevokedSerialsStoreArn and AccountId",
}


def build_targets_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Register, list and deregister the CA's edge targets.")
    sub = parser.add_subparsers(dest="command", required=True)
    register = sub.add_parser("register", help="register a workload account's edge stack")
    register.add_argument("name", help="target name: 1-63 of a-z, 0-9 and '-' (cloudfront-origin requests name it)")
    register.add_argument("--account-id", required=True, help="the workload account (edge stack output AccountId)")
    register.add_argument("--role-arn", required=True, help="the edge stack's output EdgeRoleArn")
    register.add_argument("--kvs-arn", required=True, help="the edge stack's output RevokedSerialsStoreArn")
    register.add_argument("--trust-store-id", help="the edge stack's output TrustStoreId (if it has one)")
    register.add_argument(
        "--external-id", help=f"the edge stack's ExternalId parameter (default: the environment's {ENV_EXTERNAL_ID})"
    )
    register.add_argument("--registered-by", help="label stored with the target (default: your STS ARN)")
    sub.add_parser("list", help="list the registered targets")
    deregister = sub.add_parser("deregister", help="stop syncing a target (its KeyValueStore is left as it is)")
    deregister.add_argument("name")
    for sub_parser in sub.choices.values():
        sub_parser.add_argument("--json", action="store_true", help="print JSON")
        add_aws_arguments(
            sub_parser, what="targets function", output=OUTPUT_TARGETS_FUNCTION_NAME, env_var=ENV_TARGETS_FUNCTION_NAME
        )
    return parser


def _function(args: argparse.Namespace, clients: AwsClients, environ: Mapping[str, str]) -> str:
    function_name, stack_name = function_and_stack(args, environ, ENV_TARGETS_FUNCTION_NAME)
    name, _ = find_function(
        lambda: clients.cloudformation,
        function_name=function_name,
        stack_name=stack_name,
        output=OUTPUT_TARGETS_FUNCTION_NAME,
        what="targets function",
        env_var=ENV_TARGETS_FUNCTION_NAME,
    )
    return name


def _invoke(
    args: argparse.Namespace, clients: AwsClients, environ: Mapping[str, str], payload: Mapping[str, Any]
) -> Any:
    name = _function(args, clients, environ)
    try:
        return invoke_function(clients.lambda_, name, payload, "targets function")
    except Refused as exc:
        step = NEXT_STEPS.get(exc.code)
        if step:
            raise Refused(exc.code, f"{exc.message.rstrip('.')}; {step}") from None
        raise


def register_payload(args: argparse.Namespace, environ: Mapping[str, str], caller: str | None) -> dict[str, Any]:
    """The ``register`` request (refused before any call when the external id is missing)."""
    external_id = args.external_id or environ.get(ENV_EXTERNAL_ID, "")
    if not external_id:
        raise Refused("InvalidArgument", f"give the edge stack's ExternalId with --external-id or {ENV_EXTERNAL_ID}")
    payload: dict[str, Any] = {
        "operation": "register",
        "name": args.name,
        "account_id": args.account_id,
        "role_arn": args.role_arn,
        "external_id": external_id,
        "kvs_arn": args.kvs_arn,
        "registered_by": args.registered_by or caller or "",
    }
    if args.trust_store_id:
        payload["trust_store_id"] = args.trust_store_id
    return payload


def _caller_arn(clients: AwsClients) -> str | None:
    try:
        return str(clients.sts.get_caller_identity()["Arn"])
    except Exception:  # a label only
        return None


def print_targets(info: Mapping[str, Any], out: IO[str]) -> None:
    rows = [[str(entry.get(c) or "") for c in COLUMNS] for entry in info["targets"]]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.upper().ljust(widths[i]) for i, c in enumerate(COLUMNS)), file=out)
    for row in rows:
        print("  ".join(v.ljust(widths[i]) for i, v in enumerate(row)), file=out)


def print_target(info: Mapping[str, Any], out: IO[str]) -> None:
    if "deregistered" in info:
        print(f"deregistered {info['deregistered']}", file=out)
        return
    print("registered:", file=out)
    for key, value in info["target"].items():
        print(f"  {key:<16} {value if value is not None else ''}", file=out)


def targets_main(
    argv: Sequence[str] | None,
    *,
    prog: str | None = None,
    clients: AwsClients | None = None,
    environ: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run ``edge-targets.py``. Exit 0 done, 1 failure (AWS, network), 2 refused (arguments, or the
    targets function refused: ``InvalidTarget``, ``EdgeRoleRefused``, ``EdgeRoleUnsafe``, ...)."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    out, err = stdout or sys.stdout, stderr or sys.stderr

    def action(args: argparse.Namespace) -> Outcome:
        aws = clients or clients_for(args)
        if args.command == "list":
            info = _invoke(args, aws, env, {"operation": "list"})
            return Outcome(info, lambda: print_targets(info, out))
        if args.command == "deregister":
            info = _invoke(args, aws, env, {"operation": "deregister", "name": args.name})
            return Outcome(info, lambda: print_target(info, out))
        payload = register_payload(args, env, None if args.registered_by else _caller_arn(aws))
        info = _invoke(args, aws, env, payload)
        return Outcome(info, lambda: print_target(info, out))

    return run_cli(
        build_targets_parser(prog),
        argv,
        action,
        interrupted="a registration may have completed; check with list",
        stdout=out,
        stderr=err,
    )


__all__ = ["ENV_EXTERNAL_ID", "ENV_TARGETS_FUNCTION_NAME", "build_targets_parser", "register_payload", "targets_main"]
