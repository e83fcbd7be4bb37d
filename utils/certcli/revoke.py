"""``revoke-cert.py``: revoke a certificate, given by serial number or file, with an RFC 5280 reason."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from kmsca.errors import InvalidRequest
from kmsca.reasons import CA_ONLY_REASONS, REVOCATION_REASONS  # the CA's own list (RFC 5280 5.3.1)
from kmsca.serial import canonical_serial as core_canonical_serial

from .aws import (
    ENV_REVOKE_FUNCTION_NAME,
    OUTPUT_REVOKE_FUNCTION_NAME,
    OUTPUT_REVOKE_FUNCTION_URL,
    OUTPUT_ROTATE_FUNCTION_NAME,
    AwsClients,
    add_aws_arguments,
    clients_for,
    find_function,
    function_and_stack,
    invoke_function,
    reported_name,
)
from .contract import serial_to_hex
from .errors import CliError, Refused
from .function_url import is_function_url
from .report import Outcome, run_cli


def parse_reason(text: str) -> str:
    """The RFC 5280 CRLReason name for ``--reason``.

    Case, ``-``, ``_`` and spaces are ignored, so ``key-compromise`` and ``KEY_COMPROMISE`` mean
    ``keyCompromise``.

    Raises:
        Refused: code ``InvalidRevocationReason`` for a CA-only reason (``cACompromise``,
            ``aACompromise``) or a name that is not one of :data:`REVOCATION_REASONS`.
    """
    folded = re.sub(r"[\s_-]", "", text).lower()
    for name in REVOCATION_REASONS:
        if name.lower() == folded:
            return name
    for name in CA_ONLY_REASONS:
        if name.lower() == folded:
            raise Refused(
                "InvalidRevocationReason",
                f"{name} applies to CA certificates, not to end-entity certificates; use keyCompromise",
            )
    raise Refused("InvalidRevocationReason", f"--reason {text[:64]!r} is not one of {', '.join(REVOCATION_REASONS)}")


def parse_invalidity_date(text: str) -> str:
    """Check ``--invalidity-date``: ISO 8601 with a UTC offset (``2026-11-20T10:00:00Z``).

    Returns:
        The text as given (stripped); the revoke function parses it and refuses a future time.

    Raises:
        Refused: code ``InvalidRequest`` when it is not an ISO 8601 time with an offset.
    """
    value = text.strip()
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Refused(
            "InvalidRequest",
            f"--invalidity-date {text[:64]!r} is not an ISO 8601 time with a UTC offset, e.g. 2026-11-20T10:00:00Z",
        )
    return value


def canonical_serial(text: str) -> str | None:
    """The canonical form (lowercase hex, no colons, even length) of a serial number written in
    any case, with or without colons or ``0x``; None when the CA would refuse it (the revoke
    function then refuses it with its own message). The rule is the CA's (``kmsca.serial``)."""
    try:
        return core_canonical_serial(text)
    except InvalidRequest:
        return None


def load_certificate_file(path: Path) -> x509.Certificate:
    """The leaf of a certificate file: PEM (the first certificate, so a full chain works) or DER.

    Raises:
        Refused: code ``InvalidArgument`` when the file cannot be read or holds no certificate,
            or when the certificate is a CA certificate (this tool revokes end entities).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Refused("InvalidArgument", f"cannot read --cert {path}: {exc.strerror or exc}") from None
    try:
        if b"-----BEGIN" in data:
            certificates = x509.load_pem_x509_certificates(data)
            certificate = certificates[0]
        else:
            certificate = x509.load_der_x509_certificate(data)
    except (ValueError, IndexError):
        raise Refused("InvalidArgument", f"--cert {path} holds no PEM or DER certificate") from None
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, ValueError):
        is_ca = False
    if is_ca:
        raise Refused(
            "InvalidArgument",
            f"--cert {path}: {certificate.subject.rfc4514_string()!r} is a CA certificate; "
            "revoke-cert.py revokes end-entity certificates",
        )
    return certificate


@dataclass(frozen=True)
class RevokeOptions:
    """Validated options of ``revoke-cert.py`` (everything checked before any AWS call).

    Attributes:
        serial_number: as sent to the function (``--serial`` as typed, or the certificate's
            serial in canonical form); the function normalises it.
        expected_serial: the canonical form, when it can be computed here; the response must
            name the same certificate.
        certificate: the certificate read from ``--cert``, if that was the source.
        certificate_file: its path.
        reason: the RFC 5280 name.
        invalidity_date: ISO 8601 text, or None.
    """

    serial_number: str
    expected_serial: str | None
    certificate: x509.Certificate | None
    certificate_file: Path | None
    reason: str
    invalidity_date: str | None
    json: bool
    function_name: str | None
    stack_name: str | None

    def to_payload(self) -> dict[str, Any]:
        """The revoke function's request: ``serial_number``, ``reason`` and ``invalidity_date`` if given."""
        payload: dict[str, Any] = {"serial_number": self.serial_number, "reason": self.reason}
        if self.invalidity_date is not None:
            payload["invalidity_date"] = self.invalidity_date
        return payload


def build_revoke_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``revoke-cert.py``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Revoke a certificate issued by the KMS-backed private CA. The revoke function records the "
            "revocation with an RFC 5280 reason code; the table stream then republishes the issuing CA's "
            "CRL (and the CloudFront KeyValueStore) within seconds. Revoking a revoked certificate again "
            "changes nothing and reports the first revocation."
        ),
        epilog=(
            "Exit status: 0 revoked (or already revoked); 1 failure (AWS, network, unexpected response); "
            "2 refused (bad arguments, or the CA refused: 'error: <Code>: <message>' on stderr, e.g. "
            "CertificateNotFound). Set AWS_ENDPOINT_URL to use the local sandbox."
        ),
    )
    which = parser.add_argument_group("certificate (one of)").add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--serial",
        metavar="HEX",
        help="serial number in hex, any case, colons allowed (4A:3F:05 or 4a3f05, as openssl and CloudFront show it)",
    )
    which.add_argument(
        "--cert",
        type=Path,
        metavar="FILE",
        help="the certificate to revoke, PEM (the first certificate of the file, so NAME.fullchain.pem works) or DER",
    )
    rev = parser.add_argument_group("revocation")
    rev.add_argument(
        "--reason",
        default=REVOCATION_REASONS[0],
        metavar="REASON",
        help="RFC 5280 reason code (default unspecified): "
        + ", ".join(REVOCATION_REASONS)
        + "; case and '-'/'_' are ignored (key-compromise = keyCompromise)",
    )
    rev.add_argument(
        "--invalidity-date",
        metavar="TIME",
        help="when the key was (or is suspected to have been) compromised, ISO 8601 with a UTC offset, "
        "e.g. 2026-11-20T10:00:00Z; not in the future (RFC 5280 5.3.2)",
    )
    rev.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    add_aws_arguments(
        parser, what="revoke function", output=OUTPUT_REVOKE_FUNCTION_NAME, env_var=ENV_REVOKE_FUNCTION_NAME
    )
    return parser


def parse_revoke_options(args: argparse.Namespace, environ: Mapping[str, str]) -> RevokeOptions:
    """Check the parsed arguments of ``revoke-cert.py``; read the certificate file.

    Raises:
        Refused: ``InvalidArgument`` (empty serial, unreadable or CA certificate file, bad
            ``--timeout``), ``InvalidRevocationReason``, ``InvalidRequest`` (bad invalidity date).
    """
    certificate = None
    if args.cert is not None:
        certificate = load_certificate_file(args.cert)
        serial = serial_to_hex(certificate.serial_number)
    else:
        serial = args.serial.strip()
        if not serial:
            raise Refused("InvalidArgument", "--serial is empty")
    reason = parse_reason(args.reason)
    invalidity_date = parse_invalidity_date(args.invalidity_date) if args.invalidity_date is not None else None
    function_name, stack_name = function_and_stack(args, environ, ENV_REVOKE_FUNCTION_NAME)
    return RevokeOptions(
        serial_number=serial,
        expected_serial=canonical_serial(serial),
        certificate=certificate,
        certificate_file=args.cert,
        reason=reason,
        invalidity_date=invalidity_date,
        json=args.json,
        function_name=function_name,
        stack_name=stack_name,
    )


def check_revoked(response: Mapping[str, Any], opts: RevokeOptions) -> dict[str, Any]:
    """Check the revoke function's response.

    Checks: ``serial_number`` is the certificate asked for (canonical form), ``reason`` is an
    RFC 5280 name, ``revoked_at`` is an ISO 8601 time, ``already_revoked`` is a boolean.

    Returns:
        The response as a plain dict.

    Raises:
        CliError: code ``UnexpectedResponse`` naming the failed check.
    """
    serial = response.get("serial_number")
    if not isinstance(serial, str) or (opts.expected_serial is not None and serial != opts.expected_serial):
        raise CliError(
            "UnexpectedResponse", f"the revoke function answered for serial {str(serial)[:48]!r}, not the one asked for"
        )
    if response.get("reason") not in REVOCATION_REASONS:
        raise CliError("UnexpectedResponse", f"the revoke function returned reason {response.get('reason')!r}")
    try:
        parse_invalidity_date(str(response.get("revoked_at")))
    except Refused:
        raise CliError(
            "UnexpectedResponse", f"the revoke function returned revoked_at {response.get('revoked_at')!r}"
        ) from None
    if not isinstance(response.get("already_revoked"), bool):
        raise CliError("UnexpectedResponse", "the revoke function's answer has no already_revoked flag")
    return dict(response)


def revoke(opts: RevokeOptions, clients: AwsClients) -> tuple[dict[str, Any], str]:
    """Find the revoke function and invoke it.

    Returns:
        ``(checked response, function name)``; for a certificate imported into ACM the response
        also has ``rotate_function_name``: the stack's ``RotateAcmFunctionName`` output, or None.

    Raises:
        Refused, CliError, botocore errors: see :func:`revoke_main`.
    """
    function_name, outputs = find_function(
        lambda: clients.cloudformation,
        function_name=opts.function_name,
        stack_name=opts.stack_name,
        output=OUTPUT_REVOKE_FUNCTION_NAME,
        what="revoke function",
        env_var=ENV_REVOKE_FUNCTION_NAME,
        url_output=OUTPUT_REVOKE_FUNCTION_URL,
    )
    response = invoke_function(clients.lambda_, function_name, opts.to_payload(), "revoke function")
    checked = check_revoked(response, opts)
    if is_function_url(function_name):
        checked["function_url"] = function_name
        function_name = reported_name(function_name, outputs, OUTPUT_REVOKE_FUNCTION_NAME)
    if checked.get("acm_certificate_arn"):
        checked["rotate_function_name"] = outputs.get(OUTPUT_ROTATE_FUNCTION_NAME)
    return checked, function_name


def revoke_summary(response: Mapping[str, Any], opts: RevokeOptions, function_name: str) -> dict[str, Any]:
    """The ``--json`` output: the function's response (``serial_number``, ``revoked_at``, ``reason``,
    ``already_revoked``, ``invalidity_date`` when recorded) plus ``requested_reason``,
    ``function_name``, ``stack_name`` and, with ``--cert``, ``subject`` and ``certificate_file``."""
    info = dict(response)
    info.update(requested_reason=opts.reason, function_name=function_name, stack_name=opts.stack_name)
    if opts.certificate is not None:
        info.update(subject=opts.certificate.subject.rfc4514_string(), certificate_file=str(opts.certificate_file))
    return info


def acm_rotation_note(arn: str, rotate_function_name: str | None) -> str:
    """What a revoked CloudFront origin certificate means: ACM (and CloudFront) keep presenting it
    until the rotation function re-imports a new one into the same ARN, and how to run it now."""
    name = rotate_function_name or f"<the stack's {OUTPUT_ROTATE_FUNCTION_NAME} output>"
    return (
        f"note: this certificate is imported into ACM as {arn}; CloudFront keeps presenting it to your origin "
        "until the ACM rotation runs (RotateAcmFunction, on the AcmRotationSchedule, default daily), which "
        "re-issues it and re-imports the new one into the same ARN. To rotate now: "
        f"aws lambda invoke --function-name {name} rotation.json (as an identity allowed to invoke it, e.g. an "
        "administrator: the requester and reader policies are not)"
    )


def print_revocation(info: Mapping[str, Any], out: IO[str], err: IO[str]) -> None:
    """Human-readable result; a warning on ``err`` when an earlier revocation kept its reason."""
    who = f" ({info['subject']})" if info.get("subject") else ""
    if info["already_revoked"]:
        print(
            f"Certificate {info['serial_number']}{who} was already revoked; that revocation stands unchanged", file=out
        )
    else:
        print(f"Revoked certificate {info['serial_number']}{who}", file=out)
    print(f"  reason           {info['reason']}", file=out)
    print(f"  revoked at       {info['revoked_at']}", file=out)
    if info.get("invalidity_date"):
        print(f"  invalidity date  {info['invalidity_date']}", file=out)
    if not info["already_revoked"]:
        print("  The CRLs are republished within seconds; relying parties see it at their next CRL download.", file=out)
    elif info["reason"] != info["requested_reason"]:
        print(
            f"warning: already revoked as {info['reason']}; --reason {info['requested_reason']} was not applied",
            file=err,
        )
    if info.get("acm_certificate_arn") and info["reason"] != "superseded":  # superseded: ACM serves its successor
        print(acm_rotation_note(str(info["acm_certificate_arn"]), info.get("rotate_function_name")), file=err)


def revoke_main(
    argv: Sequence[str] | None,
    *,
    prog: str | None = None,
    clients: AwsClients | None = None,
    environ: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run ``revoke-cert.py``.

    Returns:
        0 revoked, or already revoked (idempotent; the output says so); 1 failure (AWS error,
        network, unexpected response); 2 refused (bad arguments, or the revoke function refused:
        ``InvalidRequest``, ``CertificateNotFound``, ``InvalidRevocationReason``). Errors are
        printed to ``stderr`` as ``error: <Code>: <message>``; argparse usage errors exit 2.
    """
    environ = os.environ if environ is None else environ
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr

    def action(args: argparse.Namespace) -> Outcome:
        opts = parse_revoke_options(args, environ)
        response, function_name = revoke(opts, clients or clients_for(args))
        info = revoke_summary(response, opts, function_name)
        return Outcome(info, lambda: print_revocation(info, stdout, stderr))

    return run_cli(
        build_revoke_parser(prog),
        argv,
        action,
        interrupted="the revocation may or may not have been recorded; run again",
        stdout=stdout,
        stderr=stderr,
    )
