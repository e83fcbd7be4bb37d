"""``client-cert.py`` and ``server-cert.py``: make a key pair locally, send a CSR to the issue
function, check the certificate returned and write the files a TLS client or server needs."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization

from .aws import (
    ENV_FUNCTION_NAME,
    OUTPUT_FUNCTION_NAME,
    AwsClients,
    Target,
    add_aws_arguments,
    clients_for,
    function_and_stack,
    invoke_function,
    resolve_target,
)
from .bundle import bundle_from_chain, check_bundle_trusts, download_ca_bundle, parse_s3_uri
from .contract import CLIENT, SERVER, UTC, CliIssueRequest, Issued, _iso, check_issued, parse_iso
from .errors import Refused
from .files import (
    OutputFile,
    OutputPlan,
    _exists_error,
    check_writable,
    conflicts,
    default_name,
    key_in_git_warning,
    not_saved,
    plan_outputs,
    read_pkcs12_password,
    render_files,
    write_outputs,
)
from .keys import DEFAULT_KEY_TYPE, KEY_TYPES, build_csr, generate_private_key
from .names import (
    RequestedSubject,
    San,
    add_name_arguments,
    add_subject_arguments,
    idn_notes,
    parse_san,
    subject_from_args,
)
from .report import Outcome, run_cli

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

#: Environment variable holding the PKCS#12 password (default of ``--pkcs12-password-env``).
ENV_PKCS12_PASSWORD = "KMSCA_PKCS12_PASSWORD"


def build_parser(profile: str, prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``client-cert.py`` (``profile="client"``) or ``server-cert.py``."""
    purpose = "TLS client (EKU clientAuth)" if profile == CLIENT else "TLS server (EKU serverAuth; at least one --san)"
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            f"Issue a {purpose} certificate from the KMS-backed private CA. The key pair is generated "
            "locally and never leaves this machine; a CSR is sent to the issue function with your AWS "
            "credentials. Writes NAME.key (0600), NAME.crt, NAME.chain.pem, NAME.fullchain.pem, "
            "ca-bundle.pem and, with --pkcs12, NAME.p12."
        ),
        epilog=(
            "Exit status: 0 issued; 1 failure (AWS, network, unexpected response); 2 refused "
            "(bad arguments, files exist, or the CA refused: 'error: <Code>: <message>' on stderr). "
            "Set AWS_ENDPOINT_URL to use the local sandbox."
        ),
    )
    cert = parser.add_argument_group("certificate")
    add_name_arguments(
        cert,
        common_name_help="subject common name" + (" (default: the first --san)" if profile == SERVER else ""),
        lifetime_help="certificate lifetime in days (default: the CA's default; longer than its maximum is refused)",
    )
    cert.add_argument(
        "--key-type",
        choices=list(KEY_TYPES),
        default=DEFAULT_KEY_TYPE,
        help=f"key pair to generate locally (default {DEFAULT_KEY_TYPE}): "
        + ", ".join(f"{k.name} = {k.description}" for k in KEY_TYPES.values())
        + " (ACM, for CloudFront origin mTLS, takes only ec-p256 and rsa-2048)",
    )
    add_subject_arguments(cert)
    cert.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="a retried call with the same key returns the same certificate (default: a random key per "
        "run, so automatic retries never issue twice); a new run makes a new key pair, so the CA refuses "
        "a key reused across runs (IdempotencyKeyReused)",
    )

    out = parser.add_argument_group("output")
    out.add_argument(
        "--out-dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="directory for the files (default: current directory; created if missing)",
    )
    out.add_argument("--name", metavar="STEM", help="file name stem (default: derived from the common name)")
    out.add_argument("--force", action="store_true", help="overwrite existing files (default: refuse, write nothing)")
    out.add_argument(
        "--no-git-warning",
        action="store_true",
        help="do not warn when the private key goes into a git work tree (default: warn, naming .gitignore)",
    )
    out.add_argument(
        "--pkcs12",
        action="store_true",
        help="also write NAME.p12 (key, certificate and chain, password-protected)",
    )
    out.add_argument(
        "--pkcs12-password-file",
        metavar="FILE",
        help="read the PKCS#12 password from the first line of FILE ('-' for stdin)",
    )
    out.add_argument(
        "--pkcs12-password-env",
        default=ENV_PKCS12_PASSWORD,
        metavar="VAR",
        help=f"environment variable holding the PKCS#12 password (default {ENV_PKCS12_PASSWORD}); "
        "else prompted on a terminal",
    )
    out.add_argument(
        "--pkcs12-legacy",
        action="store_true",
        help="PKCS#12 with SHA-1/3DES for old importers (default AES-256/SHA-256)",
    )
    out.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")

    aws = add_aws_arguments(
        parser,
        what="issue function",
        output=OUTPUT_FUNCTION_NAME,
        env_var=ENV_FUNCTION_NAME,
        stack_help="stack whose outputs name the function and the CA bundle",
    )
    aws.add_argument(
        "--ca-bundle-uri",
        metavar="S3_URI",
        help="s3://bucket/key of the published CA bundle (default: the stack's CaBundleS3Uri output; "
        "without one, ca-bundle.pem is built from the returned chain)",
    )
    return parser


@dataclass(frozen=True)
class Options:
    """Validated command-line options (everything checked before any AWS call)."""

    profile: str
    subject: RequestedSubject
    sans: tuple[San, ...]
    key_type: str
    lifetime_days: int | None
    idempotency_key: str
    plan: OutputPlan
    force: bool
    pkcs12_password: bytes | None
    pkcs12_legacy: bool
    json: bool
    function_name: str | None
    stack_name: str | None
    ca_bundle_uri: str | None


def parse_options(args: argparse.Namespace, profile: str, environ: Mapping[str, str], stdin: IO[str]) -> Options:
    """Check the parsed arguments; everything that can be refused locally is refused here.

    Raises:
        Refused: with the code of the first problem (``InvalidArgument``, ``InvalidSubject``,
            ``InvalidSubjectAlternativeName``, ``FileExists``).
    """
    if args.common_name and args.common_name_option and args.common_name != args.common_name_option:
        raise Refused("InvalidArgument", "give the common name once (positional or --common-name)")
    sans = tuple(parse_san(s) for s in args.san)
    if len(set(sans)) != len(sans):
        raise Refused("InvalidSubjectAlternativeName", "the same --san is given twice")
    if profile == SERVER and not sans:
        raise Refused(
            "InvalidSubjectAlternativeName",
            "a server certificate needs at least one --san (e.g. --san dns:www.example.com)",
        )
    common_name = args.common_name or args.common_name_option
    if not common_name and profile == SERVER:
        common_name = sans[0].value
    if not common_name:
        raise Refused("InvalidArgument", "a common name is required")
    subject = subject_from_args(args, common_name)
    if args.ca_bundle_uri:
        parse_s3_uri(args.ca_bundle_uri)
    if args.idempotency_key is not None and not args.idempotency_key.strip():
        raise Refused("InvalidArgument", "--idempotency-key is empty")

    plan = plan_outputs(args.out_dir, args.name or default_name(common_name), pkcs12_file=args.pkcs12)
    if not args.force and (found := conflicts(plan, include_shared=False)):
        raise _exists_error(found)
    check_writable(plan)
    if (args.pkcs12_password_file or args.pkcs12_legacy) and not args.pkcs12:
        raise Refused("InvalidArgument", "--pkcs12-password-file and --pkcs12-legacy need --pkcs12")
    password = (
        read_pkcs12_password(args.pkcs12_password_file, args.pkcs12_password_env, environ, stdin)
        if args.pkcs12
        else None
    )

    function_name, stack_name = function_and_stack(args, environ, ENV_FUNCTION_NAME)
    return Options(
        profile=profile,
        subject=subject,
        sans=sans,
        key_type=args.key_type,
        lifetime_days=args.lifetime_days,
        idempotency_key=args.idempotency_key or uuid.uuid4().hex,
        plan=plan,
        force=args.force,
        pkcs12_password=password,
        pkcs12_legacy=args.pkcs12_legacy,
        json=args.json,
        function_name=function_name,
        stack_name=stack_name,
        ca_bundle_uri=args.ca_bundle_uri,
    )


def invoke_issue(lambda_client: LambdaClient, function_name: str, request: CliIssueRequest) -> dict[str, Any]:
    """Invoke the issue function with ``request`` (see :func:`invoke_function`)."""
    return invoke_function(lambda_client, function_name, request.to_payload(), "issue function")


def issue(
    opts: Options, clients: AwsClients, warn: Callable[[str], None]
) -> tuple[Issued, Target, str, list[OutputFile]]:
    """Resolve the target, generate the key, request the certificate, check it and write the files.

    Returns:
        ``(issued, target, ca_bundle_source, files_written)``.

    Raises:
        Refused, CliError, botocore errors, OSError: see :func:`main`.
    """
    target = resolve_target(
        lambda: clients.cloudformation,
        function_name=opts.function_name,
        stack_name=opts.stack_name,
        ca_bundle_uri=opts.ca_bundle_uri,
    )
    bundle: bytes | None = None
    if target.ca_bundle_uri:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            bundle = download_ca_bundle(clients.s3, target.ca_bundle_uri)
        except (ClientError, BotoCoreError) as exc:
            warn(f"cannot read {target.ca_bundle_uri} ({exc}); ca-bundle.pem will be built from the returned chain")
        else:
            opts.plan.content["ca_bundle"] = bundle
            if not opts.force and (found := conflicts(opts.plan)):
                raise _exists_error(found)

    key = generate_private_key(opts.key_type)
    csr = build_csr(key, opts.key_type, opts.subject, opts.sans)
    request = CliIssueRequest(
        csr=csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        profile=opts.profile,
        sans=opts.sans,
        lifetime_days=opts.lifetime_days,
        idempotency_key=opts.idempotency_key,
    )
    issued = check_issued(invoke_issue(clients.lambda_, target.callee, request), key, opts.profile)
    if bundle is None:
        bundle, source = bundle_from_chain(issued.chain), "the returned chain"
    else:
        check_bundle_trusts(bundle, issued.chain, str(target.ca_bundle_uri))
        source = str(target.ca_bundle_uri)
    try:
        render_files(opts.plan, key, issued, bundle, opts.pkcs12_password, legacy_pkcs12=opts.pkcs12_legacy)
        written = write_outputs(opts.plan, force=opts.force)
    except (Refused, OSError) as exc:
        key_file = opts.plan.path("key")
        key_saved = "key" in opts.plan.content and _holds(key_file, opts.plan.content["key"])
        pem = issued.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        raise not_saved(issued.serial_number, pem, exc, key_lost=not key_saved) from None
    return issued, target, source, written


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def summary(
    opts: Options, issued: Issued, target: Target, bundle_source: str, written: Sequence[OutputFile]
) -> dict[str, Any]:
    """The ``--json`` summary: certificate facts and file paths (never key material).

    Shape: ``{serial_number, subject, profile, not_before, not_after (ISO 8601 UTC), key_type,
    function_name, stack_name (or null), ca_bundle_source, files: {kind: path}, written: [path, ...],
    function_url (only when the function URL was called)}``.
    """
    return {
        "serial_number": issued.serial_number,
        "subject": issued.subject,
        "profile": issued.profile,
        "not_before": _iso(issued.not_before),
        "not_after": _iso(issued.not_after),
        "key_type": opts.key_type,
        "function_name": target.function_name,
        "stack_name": target.stack_name,
        "ca_bundle_source": bundle_source,
        "files": {f.kind: str(f.path) for f in opts.plan.files},
        "written": [str(f.path) for f in written],
        **({"function_url": target.function_url} if target.function_url else {}),
    }


def print_summary(info: Mapping[str, Any], opts: Options, written: Sequence[OutputFile], out: IO[str]) -> None:
    """Human-readable summary: what was written, the serial and the expiry."""
    not_after = parse_iso(info["not_after"])
    days = (not_after - dt.datetime.now(UTC)).total_seconds() / 86400
    print(f"Issued {info['profile']} certificate {info['subject']}", file=out)
    print(f"  serial number  {info['serial_number']}", file=out)
    print(f"  valid          {info['not_before']} .. {info['not_after']} ({days:.0f} days)", file=out)
    print(f"  key type       {opts.key_type} (generated locally)", file=out)
    print(f"  CA bundle from {info['ca_bundle_source']}", file=out)
    written_paths = {f.path for f in written}
    width = max(len(str(f.path)) for f in opts.plan.files)
    for f in opts.plan.files:
        verb = "wrote" if f.path in written_paths else "kept "
        print(f"  {verb} {f.path!s:<{width}}  {f.description}", file=out)


def main(
    argv: Sequence[str] | None,
    *,
    profile: str,
    prog: str | None = None,
    clients: AwsClients | None = None,
    environ: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run ``client-cert.py`` (``profile="client"``) or ``server-cert.py`` (``profile="server"``).

    Returns:
        0 issued and written; 1 failure (AWS error, network, unexpected response, I/O);
        2 refused (bad arguments, files exist, or the issue function refused). Errors are
        printed to ``stderr`` as ``error: <Code>: <message>``; argparse usage errors exit 2.
    """
    environ = os.environ if environ is None else environ
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr

    def warn(message: str) -> None:
        print(f"warning: {message}", file=stderr)

    def action(args: argparse.Namespace) -> Outcome:
        opts = parse_options(args, profile, environ, stdin)
        for note in idn_notes(opts.sans):
            print(f"note: {note}", file=stderr)
        if not args.no_git_warning and (in_git := key_in_git_warning(opts.plan)):
            warn(in_git)
        issued, target, source, written = issue(opts, clients or clients_for(args), warn)
        info = summary(opts, issued, target, source, written)
        return Outcome(info, lambda: print_summary(info, opts, written, stdout))

    return run_cli(
        build_parser(profile, prog),
        argv,
        action,
        interrupted="stopped before the files were written",
        stdout=stdout,
        stderr=stderr,
    )
