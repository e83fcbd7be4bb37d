"""``certs.py``: list and show what the CA issued, and renew a certificate.

- ``list``: the inventory function's ``list`` operation (filters, ``--page-size``, ``--all`` to
  follow ``next_token``), as a table or ``--json``.
- ``show SERIAL``: one certificate (any serial form): validity, status, fingerprints, requested
  by, ACM ARN, predecessor and successor.
- ``renew --cert FILE``: a new certificate with the same subject, SANs and profile (the CA copies
  them from its record), a **new key** by default (``--reuse-key --key FILE`` to keep the old
  one), linked to the old one; ``--revoke-old-after-hours N`` has the CA revoke the old one as
  ``superseded`` N hours later (default: never). The output directory and every file are checked
  **before** the CA is called; if writing still fails, the serial number, the certificate and the
  ``show`` command to fetch it again are printed, and the exit status is 1.

``requested_by`` is a label the CLI sends (``--requested-by``, default the caller's STS ARN),
not a verified identity: direct Lambda Invoke does not tell the function who called.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .aws import AwsClients, add_aws_arguments, clients_for, find_function, function_and_stack, invoke_function
from .errors import EXIT_FAILURE, CliError, Refused
from .files import OutputFile, OutputPlan, key_in_git_warning
from .function_url import is_function_url
from .keys import build_csr, generate_private_key
from .names import RequestedSubject
from .report import Outcome, run_cli
from .revoke import load_certificate_file

ENV_INVENTORY_FUNCTION_NAME = "KMSCA_INVENTORY_FUNCTION_NAME"
OUTPUT_INVENTORY_FUNCTION_NAME = "InventoryFunctionName"
COLUMNS = ("serial_number", "status", "profile", "not_after", "subject")


def build_certs_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="List, show and renew certificates of the CA.")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="list certificates, earliest expiry first")
    listing.add_argument("--status", choices=("issued", "revoked"))
    listing.add_argument("--profile-name", dest="profile_name", help="certificate profile (client, server, ...)")
    listing.add_argument("--name", help="case-insensitive substring of the subject or of a SAN")
    listing.add_argument("--requested-by", help="exact requested-by label")
    listing.add_argument("--expiring-before", help="ISO 8601 time with an offset (e.g. 2026-12-31T00:00:00Z)")
    listing.add_argument("--expiring-after", help="ISO 8601 time with an offset")
    listing.add_argument("--acm-arn", help="exact ACM certificate ARN")
    listing.add_argument("--page-size", type=int, default=50, help="1-100 (default 50)")
    listing.add_argument("--next-token", help="continue a listing")
    listing.add_argument("--all", action="store_true", help="follow next_token to the end")
    show = sub.add_parser("show", help="one certificate by serial number (hex, any case, colons allowed)")
    show.add_argument("serial")
    renew = sub.add_parser("renew", help="renew a certificate: same subject, SANs and profile, new key")
    renew.add_argument("--cert", type=Path, required=True, help="the certificate to renew (PEM or DER)")
    renew.add_argument("--key", type=Path, help="its private key (PEM), with --reuse-key")
    renew.add_argument("--reuse-key", action="store_true", help="keep the old key (default: a new one)")
    renew.add_argument(
        "--out-dir", type=Path, help="where to write NAME.renewed.{key,crt,chain.pem} (default: --cert's)"
    )
    renew.add_argument("--lifetime-days", type=int, help="default: the CA's DefaultLifetimeDays")
    renew.add_argument("--revoke-old-after-hours", type=int, help="revoke the old certificate N hours later")
    renew.add_argument("--requested-by", help="label stored with the certificate (default: your STS ARN)")
    renew.add_argument(
        "--no-git-warning",
        action="store_true",
        help="do not warn when the new private key goes into a git work tree (default: warn, naming .gitignore)",
    )
    for sub_parser in (listing, show, renew):
        sub_parser.add_argument("--json", action="store_true", help="print JSON")
        add_aws_arguments(
            sub_parser,
            what="inventory function",
            output=OUTPUT_INVENTORY_FUNCTION_NAME,
            env_var=ENV_INVENTORY_FUNCTION_NAME,
        )
    return parser


def _inventory(args: argparse.Namespace, clients: AwsClients, environ: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    function_name, stack_name = function_and_stack(args, environ, ENV_INVENTORY_FUNCTION_NAME)
    return find_function(
        lambda: clients.cloudformation,
        function_name=function_name,
        stack_name=stack_name,
        output=OUTPUT_INVENTORY_FUNCTION_NAME,
        what="inventory function",
        env_var=ENV_INVENTORY_FUNCTION_NAME,
    )


def list_certificates(args: argparse.Namespace, clients: AwsClients, environ: Mapping[str, str]) -> dict[str, Any]:
    """Invoke ``list`` (and follow ``next_token`` with ``--all``)."""
    name, _ = _inventory(args, clients, environ)
    filters = {
        "status": args.status,
        "profile": args.profile_name,
        "name_contains": args.name,
        "requested_by": args.requested_by,
        "expiring_before": args.expiring_before,
        "expiring_after": args.expiring_after,
        "acm_certificate_arn": args.acm_arn,
        "page_size": args.page_size,
        "next_token": args.next_token,
    }
    payload: dict[str, Any] = {"operation": "list", **{k: v for k, v in filters.items() if v is not None}}
    found: list[dict[str, Any]] = []
    while True:
        page = invoke_function(clients.lambda_, name, payload, "inventory function")
        found += page.get("certificates", [])
        token = page.get("next_token")
        if not (args.all and token):
            break
        payload["next_token"] = token
    return {"certificates": found, **({"next_token": token} if token else {})}


def print_list(info: Mapping[str, Any], out: IO[str]) -> None:
    rows = [[str(entry.get(c, "")) for c in COLUMNS] for entry in info["certificates"]]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.upper().ljust(widths[i]) for i, c in enumerate(COLUMNS)), file=out)
    for row in rows:
        print("  ".join(v.ljust(widths[i]) for i, v in enumerate(row)), file=out)
    if info.get("next_token"):
        print(f"(more: --next-token {info['next_token']}, or --all)", file=out)


def show_certificate(
    args: argparse.Namespace, clients: AwsClients, environ: Mapping[str, str], serial: str
) -> dict[str, Any]:
    name, _ = _inventory(args, clients, environ)
    return invoke_function(clients.lambda_, name, {"operation": "show", "serial_number": serial}, "inventory function")


def print_show(info: Mapping[str, Any], out: IO[str]) -> None:
    for key, value in info.items():
        if key != "certificate":
            print(f"  {key:<20} {', '.join(value) if isinstance(value, list) else value}", file=out)


def _key_type_of(certificate: x509.Certificate) -> str:
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1"):
        return "ec-p256" if key.curve.name == "secp256r1" else "ec-p384"
    if isinstance(key, rsa.RSAPublicKey) and key.key_size in (2048, 3072, 4096):
        return f"rsa-{key.key_size}"
    raise Refused("InvalidArgument", "the certificate's key type has no matching --key-type; request a new certificate")


def _check_writable(paths: Sequence[Path]) -> None:
    """Refuse before the CA is called: a missing or read-only directory, or a file already there."""
    for path in paths:
        directory = path.parent
        if not directory.is_dir():
            raise Refused("InvalidArgument", f"output directory {directory} does not exist; create it first")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise Refused("InvalidArgument", f"output directory {directory} is not writable; choose another --out-dir")
        if path.exists():
            raise Refused("FilesExist", f"{path} exists; move it away or choose another --out-dir")


def renew_certificate(
    args: argparse.Namespace, clients: AwsClients, environ: Mapping[str, str], err: IO[str]
) -> dict[str, Any]:
    """Renew ``--cert``; see the module docstring. Raises Refused/CliError; exit 1 on a write failure."""
    old = load_certificate_file(args.cert)
    serial = format(old.serial_number, "x")
    serial = serial if len(serial) % 2 == 0 else "0" + serial
    shown = show_certificate(args, clients, environ, serial)
    if args.reuse_key:
        if args.key is None:
            raise Refused("InvalidArgument", "--reuse-key needs --key FILE (the old private key)")
        key: Any = serialization.load_pem_private_key(args.key.read_bytes(), password=None)
    elif args.key is not None:
        raise Refused("InvalidArgument", "--key is only read with --reuse-key; a renewal makes a new key by default")
    else:
        key = generate_private_key(_key_type_of(old))
    out_dir = args.out_dir or args.cert.parent
    stem = args.cert.name.split(".")[0]
    files = {
        kind: out_dir / f"{stem}.renewed.{kind}"
        for kind in (("crt", "chain.pem") + (() if args.reuse_key else ("key",)))
    }
    _check_writable(list(files.values()))
    if "key" in files and not args.no_git_warning:
        in_git = key_in_git_warning(OutputPlan([OutputFile("key", files["key"], "private key", secret=True)]))
        if in_git:
            print(f"warning: {in_git}", file=err)
    issue_name, _ = find_function(
        lambda: clients.cloudformation,
        function_name=environ.get("KMSCA_FUNCTION_NAME"),
        stack_name=function_and_stack(args, environ, ENV_INVENTORY_FUNCTION_NAME)[1],
        output="IssueFunctionName",
        what="issue function",
        env_var="KMSCA_FUNCTION_NAME",
        url_output="IssueFunctionUrl",
    )
    if is_function_url(issue_name) and args.requested_by:
        raise Refused(
            "InvalidArgument",
            "--requested-by is a label for a direct Invoke (KMSCA_FUNCTION_NAME=<name>, administrators); through the "
            "issue function URL the CA records your verified IAM ARN",
        )
    csr = build_csr(key, _key_type_of(old), RequestedSubject(common_name="renewal"), [])  # the CA keeps the old names
    payload: dict[str, Any] = {
        "csr": csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "profile": shown["profile"],
        "renews": serial,
        "idempotency_key": uuid.uuid4().hex,  # botocore's retries of the Invoke get the same certificate
    }
    optional = {
        "lifetime_days": args.lifetime_days,
        "revoke_renewed_after_hours": args.revoke_old_after_hours,
        # Through the function URL the CA records the verified caller itself (and refuses a label).
        "requested_by": None if is_function_url(issue_name) else args.requested_by or _caller_arn(clients),
    }
    payload.update({k: v for k, v in optional.items() if v is not None})
    issued = invoke_function(clients.lambda_, issue_name, payload, "issue function")
    contents = {"crt": issued["certificate"], "chain.pem": issued["certificate_chain"]}
    if "key" in files:
        contents["key"] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")
    try:
        for kind, path in files.items():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            with os.fdopen(os.open(path, flags, 0o600 if kind == "key" else 0o644), "w") as handle:
                handle.write(contents[kind])
    except OSError as exc:
        print(issued["certificate"], file=err)
        raise CliError(
            "WriteFailed",
            f"certificate {issued['serial_number']} was issued but {exc.filename or 'a file'} could not be written "
            f"({exc.strerror or exc}); the certificate is printed above and can be fetched again with "
            f"'certs.py show {issued['serial_number']} --json'",
        ) from None
    return {
        "serial_number": issued["serial_number"],
        "renews": serial,
        "not_after": issued["not_after"],
        "files": {kind: str(path) for kind, path in files.items()},
        "revoke_old_after_hours": args.revoke_old_after_hours,
    }


def _caller_arn(clients: AwsClients) -> str | None:
    try:
        return str(clients.sts.get_caller_identity()["Arn"])
    except Exception:  # a label only: issuance does not depend on it
        return None


def certs_main(
    argv: Sequence[str] | None,
    *,
    prog: str | None = None,
    clients: AwsClients | None = None,
    environ: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run ``certs.py``. Exit 0 done, 1 failure (AWS, network, a file not written after issuance),
    2 refused (arguments, files in the way, or the CA refused: ``CertificateNotFound``,
    ``RenewalRefused``, ...)."""
    environ = os.environ if environ is None else environ
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr

    def action(args: argparse.Namespace) -> Outcome:
        aws = clients or clients_for(args)
        if args.command == "list":
            info = list_certificates(args, aws, environ)
            return Outcome(info, lambda: print_list(info, stdout))
        if args.command == "show":
            info = show_certificate(args, aws, environ, args.serial)
            return Outcome(info, lambda: print_show(info, stdout))
        info = renew_certificate(args, aws, environ, stderr)
        return Outcome(info, lambda: print_show(info, stdout))

    return run_cli(
        build_certs_parser(prog),
        argv,
        action,
        interrupted="a renewal may have been issued; check with list",
        stdout=stdout,
        stderr=stderr,
    )


__all__ = ["EXIT_FAILURE", "certs_main"]
