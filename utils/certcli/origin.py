"""``cloudfront-origin-cert.py``: the client certificate CloudFront presents to an origin.

The ``cloudfront-origin`` profile sends no CSR: the issue function generates the key and imports
certificate, key and chain into ACM in us-east-1; the tool prints the ACM ARN and the
``OriginMtlsConfig`` to paste into a distribution.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from kmsca.request_values import ACM_REGION, CLOUDFRONT_ORIGIN, ORIGIN_KEY_TYPES, TARGET_NAME  # the CA's own values

from .aws import (
    ENV_FUNCTION_NAME,
    OUTPUT_FUNCTION_NAME,
    OUTPUT_FUNCTION_URL,
    AwsClients,
    add_aws_arguments,
    clients_for,
    find_function,
    function_and_stack,
    invoke_function,
    reported_name,
)
from .contract import CLIENT, UTC, Issued, _check_issued_certificate, _iso, _load_issued, parse_iso
from .errors import CliError, Refused
from .files import (
    _SAFE_NAME,
    OutputFile,
    OutputPlan,
    _exists_error,
    check_writable,
    conflicts,
    default_name,
    not_saved,
    write_outputs,
)
from .inventory import ENV_INVENTORY_FUNCTION_NAME
from .names import (
    RequestedSubject,
    San,
    add_name_arguments,
    add_subject_arguments,
    idn_notes,
    parse_san,
    subject_from_args,
)
from .origin_existing import check_no_origin_certificate, inventory_function
from .report import Outcome, run_cli

_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[A-Za-z0-9-]+$")
_KEY_OF_TYPE: dict[str, tuple[type[ec.EllipticCurvePublicKey] | type[rsa.RSAPublicKey], int]] = {
    "ec-p256": (ec.EllipticCurvePublicKey, 256),
    "rsa-2048": (rsa.RSAPublicKey, 2048),
}


def origin_mtls_config(certificate_arn: str) -> dict[str, Any]:
    """The CloudFront ``OriginMtlsConfig`` for ``certificate_arn``, as it goes into an origin's
    ``CustomOriginConfig`` (``DistributionConfig.Origins.Items[].CustomOriginConfig``)."""
    return {"OriginMtlsConfig": {"ClientCertificateArn": certificate_arn}}


def check_origin_key_type(key_type: str) -> str:
    """Check ``--key-type`` before any call, with the issue function's own code.

    Raises:
        Refused: code ``KeyPolicyViolation`` for a key type CloudFront origin mTLS does not accept.
    """
    if key_type not in ORIGIN_KEY_TYPES:
        raise Refused(
            "KeyPolicyViolation",
            f"--key-type {key_type[:32]!r}: CloudFront origin mTLS (ACM) accepts only {', '.join(ORIGIN_KEY_TYPES)}",
        )
    return key_type


@dataclass(frozen=True)
class OriginOptions:
    """Validated options of ``cloudfront-origin-cert.py`` (everything checked before any AWS call).

    Attributes:
        plan: the certificate and chain files to write, or None without ``--out-dir``.
    """

    subject: RequestedSubject
    sans: tuple[San, ...]
    key_type: str | None
    lifetime_days: int | None
    idempotency_key: str
    plan: OutputPlan | None
    force: bool
    json: bool
    function_name: str | None
    stack_name: str | None
    allow_second: bool = False
    inventory_function_name: str | None = None
    target: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """The issue function's request: profile ``cloudfront-origin``, no ``csr`` (the function
        generates the key for ACM), ``subject``, and ``key_type`` / ``sans`` / ``lifetime_days``
        when given (without ``key_type`` the function picks the one matching its issuing CA)."""
        payload: dict[str, Any] = {
            "profile": CLOUDFRONT_ORIGIN,
            "subject": self.subject.to_request(),
            "idempotency_key": self.idempotency_key,
        }
        if self.key_type is not None:
            payload["key_type"] = self.key_type
        if self.sans:
            payload["sans"] = [s.to_request() for s in self.sans]
        if self.lifetime_days is not None:
            payload["lifetime_days"] = self.lifetime_days
        if self.target is not None:
            payload["target"] = self.target
        return payload


@dataclass(frozen=True)
class OriginIssued:
    """A ``cloudfront-origin`` certificate as the issue function returned it, checked.

    Attributes:
        issued: serial, leaf, chain (issuing, root) and profile.
        acm_certificate_arn: where the function imported certificate, key and chain (ACM us-east-1).
        key_type: the leaf's key type (``ec-p256`` or ``rsa-2048``).
    """

    issued: Issued
    acm_certificate_arn: str
    key_type: str
    acm_target: str = "local"


def build_origin_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``cloudfront-origin-cert.py``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Issue the client certificate CloudFront presents to your origin (origin mutual TLS). The issue "
            "function generates the key pair itself (ACM needs the private key), issues a certificate with EKU "
            "clientAuth and imports certificate, key and chain into ACM in us-east-1, where CloudFront reads it; "
            "the key is never returned, stored or written here. Prints the ACM ARN and the OriginMtlsConfig "
            "to paste into the origin's CustomOriginConfig. The CA re-imports a fresh certificate into the "
            "same ARN before this one expires, so the distribution never needs editing."
        ),
        epilog=(
            "Exit status: 0 issued and imported; 1 failure (AWS, network, unexpected response); 2 refused "
            "(bad arguments, files exist, or the CA refused: 'error: <Code>: <message>' on stderr). "
            "Set AWS_ENDPOINT_URL to use the local sandbox."
        ),
    )
    cert = parser.add_argument_group("certificate")
    add_name_arguments(
        cert,
        common_name_help="subject common name (default: the first --san); without --san it is also the "
        "certificate's DNS name (ACM and CloudFront need one)",
        lifetime_help=(
            "certificate lifetime in days (default: the profile's, 90; longer than the CA's maximum is refused)"
        ),
    )
    cert.add_argument(
        "--key-type",
        default=None,
        metavar="TYPE",
        help=f"key pair the issue function generates: {' or '.join(ORIGIN_KEY_TYPES)} (default: the one of the "
        "issuing CA's algorithm, as ACM requires); CloudFront origin mTLS accepts no other",
    )
    add_subject_arguments(cert)
    cert.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="a call with the same key and the same request returns the same certificate and ARN instead of "
        "importing another one (default: a random key per run, so automatic retries never import twice)",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--out-dir",
        type=Path,
        metavar="DIR",
        help="also write NAME.crt and NAME.chain.pem (PEM) there; there is no key file: the key lives only in ACM",
    )
    out.add_argument("--name", metavar="STEM", help="file name stem (default: derived from the common name)")
    out.add_argument("--force", action="store_true", help="overwrite existing files (default: refuse before issuing)")
    out.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    cert.add_argument(
        "--target",
        metavar="NAME",
        help="edge target (workload account, see edge-targets.py list) whose ACM us-east-1 receives the "
        "certificate: CloudFront uses only certificates of its own account (default: local, the CA stack's "
        "own account)",
    )
    cert.add_argument(
        "--allow-second",
        action="store_true",
        help="import a second certificate for a name that already has one in ACM (default: refuse, naming its ARN)",
    )
    add_aws_arguments(parser, what="issue function", output=OUTPUT_FUNCTION_NAME, env_var=ENV_FUNCTION_NAME)
    return parser


def plan_origin_outputs(out_dir: Path, name: str) -> OutputPlan:
    """The files ``cloudfront-origin-cert.py --out-dir`` writes: certificate and chain, no key.

    Raises:
        Refused: code ``InvalidArgument`` for a ``name`` with unsafe characters.
    """
    if not _SAFE_NAME.match(name):
        raise Refused(
            "InvalidArgument",
            f"--name {name!r}: use letters, digits, '.', '_' and '-' (not first), at most 128",
        )
    return OutputPlan(
        [
            OutputFile("certificate", out_dir / f"{name}.crt", "certificate (PEM; also in ACM)"),
            OutputFile("chain", out_dir / f"{name}.chain.pem", "CA chain: issuing, root (PEM; as imported into ACM)"),
        ]
    )


def parse_origin_options(args: argparse.Namespace, environ: Mapping[str, str]) -> OriginOptions:
    """Check the parsed arguments of ``cloudfront-origin-cert.py``.

    Raises:
        Refused: ``InvalidArgument``, ``InvalidSubject``, ``InvalidSubjectAlternativeName``,
            ``KeyPolicyViolation`` (a key type other than ec-p256 / rsa-2048), ``FileExists``.
    """
    if args.common_name and args.common_name_option and args.common_name != args.common_name_option:
        raise Refused("InvalidArgument", "give the common name once (positional or --common-name)")
    sans = tuple(parse_san(s) for s in args.san)
    if len(set(sans)) != len(sans):
        raise Refused("InvalidSubjectAlternativeName", "the same --san is given twice")
    common_name = args.common_name or args.common_name_option or (sans[0].value if sans else None)
    if not common_name:
        raise Refused("InvalidArgument", "a common name (or a --san) is required")
    if not sans:
        # ACM imports only a certificate that names an FQDN; CloudFront origin mTLS needs one anyway.
        sans = (parse_san(f"dns:{common_name}"),)
    subject = subject_from_args(args, common_name)
    key_type = None if args.key_type is None else check_origin_key_type(args.key_type)
    if args.idempotency_key is not None and not args.idempotency_key.strip():
        raise Refused("InvalidArgument", "--idempotency-key is empty")
    if args.name and args.out_dir is None:
        raise Refused("InvalidArgument", "--name needs --out-dir (without it no file is written)")
    plan = None
    if args.out_dir is not None:
        plan = plan_origin_outputs(args.out_dir, args.name or default_name(common_name))
        if not args.force and (found := conflicts(plan)):
            raise _exists_error(found)
        check_writable(plan)
    if args.target is not None and not TARGET_NAME.match(args.target):
        raise Refused(
            "InvalidTarget", f"--target {args.target[:64]!r}: 1-63 of a-z, 0-9 and '-', not starting with '-'"
        )
    function_name, stack_name = function_and_stack(args, environ, ENV_FUNCTION_NAME)
    return OriginOptions(
        subject=subject,
        sans=sans,
        key_type=key_type,
        lifetime_days=args.lifetime_days,
        idempotency_key=args.idempotency_key or uuid.uuid4().hex,
        plan=plan,
        force=args.force,
        json=args.json,
        function_name=function_name,
        stack_name=stack_name,
        # an explicit idempotency key is a retry by design: the first attempt may have imported already
        allow_second=args.allow_second or args.idempotency_key is not None,
        inventory_function_name=environ.get(ENV_INVENTORY_FUNCTION_NAME) or None,
        target=args.target,
    )


def check_origin_issued(response: Mapping[str, Any], key_type: str | None) -> OriginIssued:
    """Check the issue function's answer to a ``cloudfront-origin`` request.

    Checks: no private key in the response; the checks of :func:`check_issued` that need no local
    key (serial, chain signatures, EKU clientAuth); the leaf's key is of ``key_type`` (when None:
    one of the types CloudFront origin mTLS accepts); the response names an ACM certificate ARN
    in us-east-1.

    Raises:
        CliError: code ``UnexpectedResponse`` naming the failed check (the certificate may have
            been issued and imported: the message names the serial when known).
    """
    if any("PRIVATE KEY" in str(value) for value in response.values()) or "private_key" in response:
        raise CliError(
            "UnexpectedResponse", "the issue function returned a private key; nothing was written or printed"
        )
    leaf, chain = _load_issued(response)
    issued = _check_issued_certificate(response, leaf, chain, CLIENT)
    public_key = leaf.public_key()
    found = next(
        (
            name
            for name, (cls, size) in _KEY_OF_TYPE.items()
            if isinstance(public_key, cls) and public_key.key_size == size
        ),
        None,
    )
    if found is None or (key_type is not None and found != key_type):
        wanted = key_type or " or ".join(ORIGIN_KEY_TYPES)
        raise CliError(
            "UnexpectedResponse",
            f"certificate {issued.serial_number} does not carry an {wanted} key as requested",
        )
    arn = str(response.get("acm_certificate_arn") or "")
    match = _ACM_ARN.match(arn)
    if not match:
        raise CliError(
            "UnexpectedResponse",
            f"certificate {issued.serial_number} was issued but the response has no ACM certificate ARN "
            f"(acm_certificate_arn {arn[:96]!r})",
        )
    if match["region"] != ACM_REGION:
        raise CliError(
            "UnexpectedResponse",
            f"certificate {issued.serial_number} was imported into ACM in {match['region']}, "
            f"but CloudFront reads origin certificates only from {ACM_REGION}: {arn}",
        )
    return OriginIssued(issued, arn, found, str(response.get("acm_target") or "local"))


def issue_origin(
    opts: OriginOptions, clients: AwsClients, warn: Callable[[str], None] | None = None
) -> tuple[OriginIssued, str, list[OutputFile]]:
    """Find the issue function, refuse a second certificate for a name already in ACM (unless
    ``allow_second``), request the certificate, check it and write the optional files.

    Returns:
        ``(checked result, function name, files written)``.

    Raises:
        Refused, CliError, botocore errors, OSError: see :func:`origin_main`.
    """
    function_name, outputs = find_function(
        lambda: clients.cloudformation,
        function_name=opts.function_name,
        stack_name=opts.stack_name,
        output=OUTPUT_FUNCTION_NAME,
        what="issue function",
        env_var=ENV_FUNCTION_NAME,
        url_output=OUTPUT_FUNCTION_URL,
    )
    if not opts.allow_second:
        inventory = opts.inventory_function_name or inventory_function({}, outputs)
        check_no_origin_certificate(clients.lambda_, inventory, opts.sans, outputs, warn or (lambda _: None))
    response = invoke_function(clients.lambda_, function_name, opts.to_payload(), "issue function")
    result = check_origin_issued(response, opts.key_type)
    written: list[OutputFile] = []
    if opts.plan is not None:
        pem = serialization.Encoding.PEM
        opts.plan.content.update(
            certificate=result.issued.certificate.public_bytes(pem),
            chain=b"".join(c.public_bytes(pem) for c in result.issued.chain),
        )
        try:
            written = write_outputs(opts.plan, force=opts.force)
        except (Refused, OSError) as exc:
            cert_pem = opts.plan.content["certificate"].decode("ascii")
            raise not_saved(
                result.issued.serial_number, cert_pem, exc, key_lost=False, acm_arn=result.acm_certificate_arn
            ) from None
    return result, reported_name(function_name, outputs, OUTPUT_FUNCTION_NAME), written


def origin_summary(
    opts: OriginOptions, result: OriginIssued, function_name: str, written: Sequence[OutputFile]
) -> dict[str, Any]:
    """The ``--json`` output (never key material).

    Shape: ``{serial_number, subject, profile, not_before, not_after, key_type, acm_certificate_arn,
    acm_region, acm_target, acm_account_id, origin_mtls_config, function_name, stack_name,
    files: {kind: path}, written: [...]}``;
    ``files`` is empty without ``--out-dir``.
    """
    issued = result.issued
    return {
        "serial_number": issued.serial_number,
        "subject": issued.subject,
        "profile": issued.profile,
        "not_before": _iso(issued.not_before),
        "not_after": _iso(issued.not_after),
        "key_type": result.key_type,
        "acm_certificate_arn": result.acm_certificate_arn,
        "acm_region": ACM_REGION,
        "acm_target": result.acm_target,
        "acm_account_id": result.acm_certificate_arn.split(":")[4],
        "origin_mtls_config": origin_mtls_config(result.acm_certificate_arn),
        "function_name": function_name,
        "stack_name": opts.stack_name,
        "files": {f.kind: str(f.path) for f in opts.plan.files} if opts.plan else {},
        "written": [str(f.path) for f in written],
    }


def print_origin_summary(info: Mapping[str, Any], out: IO[str]) -> None:
    """Human-readable result: the certificate, the ACM ARN and the snippet to paste."""
    not_after = parse_iso(info["not_after"])
    days = (not_after - dt.datetime.now(UTC)).total_seconds() / 86400
    print(f"Issued {info['profile']} certificate {info['subject']} and imported it into ACM", file=out)
    print(f"  serial number  {info['serial_number']}", file=out)
    print(f"  valid          {info['not_before']} .. {info['not_after']} ({days:.0f} days)", file=out)
    print(f"  key type       {info['key_type']} (generated by the issue function; it exists only in ACM)", file=out)
    print(f"  ACM ARN        {info['acm_certificate_arn']}", file=out)
    if info.get("acm_target", "local") != "local":
        print(f"  edge target    {info['acm_target']} (account {info['acm_account_id']})", file=out)
    for path in info["written"]:
        print(f"  wrote          {path}", file=out)
    print("", file=out)
    print(
        f"The certificate, its key and the chain are in ACM in {info['acm_region']}, the region CloudFront "
        "reads origin client certificates from (whatever region the CA runs in).",
        file=out,
    )
    print(
        "Paste this into the origin's CustomOriginConfig in the distribution config "
        "(DistributionConfig.Origins.Items[].CustomOriginConfig):",
        file=out,
    )
    print(json.dumps(info["origin_mtls_config"], indent=2), file=out)
    print(
        "The CA re-imports a fresh certificate into the same ARN before this one expires; "
        "the distribution needs no change then.",
        file=out,
    )


def origin_main(
    argv: Sequence[str] | None,
    *,
    prog: str | None = None,
    clients: AwsClients | None = None,
    environ: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run ``cloudfront-origin-cert.py``.

    Returns:
        0 issued and imported into ACM; 1 failure (AWS error, network, unexpected response, I/O);
        2 refused (bad arguments, files exist, or the issue function refused, e.g.
        ``KeyPolicyViolation``, ``LifetimeExceeded``). Errors are printed to ``stderr`` as
        ``error: <Code>: <message>``; argparse usage errors exit 2.
    """
    environ = os.environ if environ is None else environ
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr

    def action(args: argparse.Namespace) -> Outcome:
        opts = parse_origin_options(args, environ)
        for note in idn_notes(opts.sans):
            print(f"note: {note}", file=stderr)
        result, function_name, written = issue_origin(
            opts, clients or clients_for(args), lambda message: print(f"warning: {message}", file=stderr)
        )
        info = origin_summary(opts, result, function_name, written)
        return Outcome(info, lambda: print_origin_summary(info, stdout))

    return run_cli(
        build_origin_parser(prog),
        argv,
        action,
        interrupted="the certificate may or may not have been imported; look in ACM us-east-1 for the tag "
        "managed-by=kmsca",
        stdout=stdout,
        stderr=stderr,
    )
