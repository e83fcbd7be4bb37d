"""Shared code of the operator command-line tools ``client-cert.py``, ``server-cert.py``,
``revoke-cert.py`` and ``cloudfront-origin-cert.py``.

``client-cert.py`` and ``server-cert.py`` make a key pair **locally**, build a PKCS#10 CSR
signed by that key, invoke the issue function with the caller's own AWS credentials (IAM is
the authentication), check that the certificate returned matches the key and chains to the CA,
and write the files a TLS client or server needs. The private key never leaves this machine and
is never printed. ``revoke-cert.py`` invokes the revoke function for a serial number or a
certificate file (see :func:`revoke_main`). ``cloudfront-origin-cert.py`` requests the
``cloudfront-origin`` profile: no CSR, the issue function generates the key and imports
certificate, key and chain into ACM in us-east-1; the tool prints the ACM ARN and the
``OriginMtlsConfig`` to paste into a distribution (see :func:`origin_main`).

Everything that talks to AWS goes through boto3 with the standard configuration chain
(``--profile``, ``--region``, ``AWS_*`` environment variables, ``AWS_ENDPOINT_URL`` for the
local sandbox), so the same command works against a real deployment and against the sandbox.
The function to call comes from ``--function-name`` or from the stack's outputs
(``IssueFunctionName``, ``RevokeFunctionName``); see :func:`add_aws_arguments`.

Exit codes (see :func:`main`, :func:`revoke_main`, :func:`origin_main`): 0 done; 1 failure (AWS call failed,
unexpected response, I/O error); 2 refused (bad arguments, files already exist, or the CA
function returned an error such as ``LifetimeExceeded`` or ``CertificateNotFound``). Every
error is printed to stderr as one line ``error: <Code>: <message>``; codes of the CA
functions are passed through unchanged (:func:`run_reporting`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import ipaddress
import json
import os
import re
import sys
import tomllib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

CLIENT = "client"
SERVER = "server"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_REFUSED = 2

#: Environment variables read as defaults (command-line options win).
ENV_STACK_NAME = "KMSCA_STACK_NAME"
ENV_FUNCTION_NAME = "KMSCA_FUNCTION_NAME"
ENV_PKCS12_PASSWORD = "KMSCA_PKCS12_PASSWORD"

#: Stack outputs the tools read (template.yaml ``Outputs``).
OUTPUT_FUNCTION_NAME = "IssueFunctionName"
OUTPUT_CA_BUNDLE_URI = "CaBundleS3Uri"
OUTPUT_REVOKE_FUNCTION_NAME = "RevokeFunctionName"

#: Environment variable naming the revoke function (``revoke-cert.py``; command-line options win).
ENV_REVOKE_FUNCTION_NAME = "KMSCA_REVOKE_FUNCTION_NAME"

#: RFC 5280 CRLReason names the revoke function accepts for end-entity certificates (default first).
REVOCATION_REASONS = (
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "privilegeWithdrawn",
)
#: Reasons RFC 5280 reserves for CA certificates; the revoke function refuses them for end entities.
CA_ONLY_REASONS = ("cACompromise", "aACompromise")

#: Default seconds to wait for the issue function's answer (its own timeout is 30 s).
DEFAULT_TIMEOUT_SECONDS = 90

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_EKU_BY_PROFILE = {CLIENT: ExtendedKeyUsageOID.CLIENT_AUTH, SERVER: ExtendedKeyUsageOID.SERVER_AUTH}
_SAN_TYPES = ("dns", "ip", "email", "uri")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SERIAL_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")


# --------------------------------------------------------------------------------------------
# Errors


class CliError(Exception):
    """A failure reported as ``error: <code>: <message>`` with exit code :attr:`exit_code`.

    Attributes:
        code: machine-readable code (the issue function's ``errorType`` when it refused).
        message: one sentence for a person; never contains key material.
    """

    exit_code = EXIT_FAILURE

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Refused(CliError):
    """The request was refused before or by the issue function; nothing was issued or written."""

    exit_code = EXIT_REFUSED


# --------------------------------------------------------------------------------------------
# Keys and CSR


@dataclass(frozen=True)
class KeyType:
    """A key type the tools can generate.

    Attributes:
        name: command-line name (``ec-p256``).
        description: for ``--help``.
        generate: makes a new private key.
        csr_hash: hash the CSR is signed with (matches the key strength).
    """

    name: str
    description: str
    generate: Callable[[], PrivateKey]
    csr_hash: Callable[[], hashes.HashAlgorithm]


def _ec(curve: ec.EllipticCurve) -> Callable[[], PrivateKey]:
    return lambda: ec.generate_private_key(curve)


def _rsa(bits: int) -> Callable[[], PrivateKey]:
    return lambda: rsa.generate_private_key(public_exponent=65537, key_size=bits)


KEY_TYPES: dict[str, KeyType] = {
    kt.name: kt
    for kt in (
        KeyType("ec-p256", "ECDSA P-256", _ec(ec.SECP256R1()), hashes.SHA256),
        KeyType("ec-p384", "ECDSA P-384", _ec(ec.SECP384R1()), hashes.SHA384),
        KeyType("rsa-2048", "RSA 2048 bits", _rsa(2048), hashes.SHA256),
        KeyType("rsa-3072", "RSA 3072 bits", _rsa(3072), hashes.SHA256),
        KeyType("rsa-4096", "RSA 4096 bits", _rsa(4096), hashes.SHA256),
    )
}
DEFAULT_KEY_TYPE = "ec-p256"


def generate_private_key(key_type: str) -> PrivateKey:
    """Generate a new private key of ``key_type`` (a key of :data:`KEY_TYPES`).

    Raises:
        Refused: unknown key type (code ``InvalidArgument``).
    """
    try:
        return KEY_TYPES[key_type].generate()
    except KeyError:
        raise Refused("InvalidArgument", f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}") from None


@dataclass(frozen=True)
class San:
    """One subject alternative name as the issue function's request spells it.

    Attributes:
        type: ``dns``, ``ip``, ``email`` or ``uri``.
        value: the name; for ``ip`` the canonical text of the address.
    """

    type: str
    value: str

    def to_request(self) -> dict[str, str]:
        """The request form ``{"type": ..., "value": ...}``."""
        return {"type": self.type, "value": self.value}

    def to_general_name(self) -> x509.GeneralName:
        """The X.509 ``GeneralName`` (RFC 5280 section 4.2.1.6) for the CSR's SAN extension."""
        if self.type == "dns":
            return x509.DNSName(self.value)
        if self.type == "ip":
            return x509.IPAddress(ipaddress.ip_address(self.value))
        if self.type == "email":
            return x509.RFC822Name(self.value)
        return x509.UniformResourceIdentifier(self.value)


def _san_error(text: str, why: str) -> Refused:
    return Refused("InvalidSubjectAlternativeName", f"--san {text!r}: {why}")


def parse_san(text: str) -> San:
    """Parse a ``--san`` argument: ``dns:NAME``, ``ip:ADDRESS``, ``email:ADDRESS``, ``uri:URI``.

    A value without a known ``type:`` prefix is a DNS name. Only the shape is checked here
    (the issue function applies the CA's full name rules, e.g. wildcards and public
    suffixes): DNS names are LDH labels with an optional ``*.`` first label and no trailing dot
    (non-ASCII names are converted to IDNA A-labels), IP addresses are IPv4 or IPv6, email
    addresses have one ``@`` with text on both sides, URIs have a scheme. Values are passed on
    as given, except IP addresses (canonical text) and IDNA conversion.

    Returns:
        The :class:`San`.

    Raises:
        Refused: code ``InvalidSubjectAlternativeName`` naming the argument and the reason.
    """
    san = _parse_san(text)
    try:
        san.to_general_name()
    except ValueError as exc:
        raise _san_error(text, str(exc)) from None
    return san


def _parse_san(text: str) -> San:
    raw = text.strip()
    prefix, sep, rest = raw.partition(":")
    if sep and prefix.lower() in _SAN_TYPES:
        san_type, value = prefix.lower(), rest.strip()
    else:
        san_type, value = "dns", raw
    if not value:
        raise _san_error(text, "empty value")
    if any(ch.isspace() for ch in value):
        raise _san_error(text, "contains white space")
    if not value.isprintable():
        raise _san_error(text, "contains control characters")
    if san_type in ("email", "uri", "ip") and not value.isascii():
        raise _san_error(text, "must be ASCII (write international domain names as IDNA A-labels, xn--...)")

    if san_type == "ip":
        if "%" in value:
            raise _san_error(text, "an IPv6 zone (%...) has no meaning in a certificate")
        try:
            return San("ip", str(ipaddress.ip_address(value)))
        except ValueError:
            raise _san_error(text, f"{value!r} is not an IPv4 or IPv6 address") from None
    if san_type == "email":
        local, at, domain = value.rpartition("@")
        if not at or not local or not domain or "@" in local:
            raise _san_error(text, "an email address needs exactly one '@' with text on both sides")
        return San("email", value)
    if san_type == "uri":
        try:
            parts = urlsplit(value)
        except ValueError as exc:
            raise _san_error(text, f"not a URI ({exc})") from None
        if not parts.scheme or not (parts.netloc or parts.path):
            raise _san_error(text, "a URI needs a scheme, e.g. spiffe://example.org/service")
        return San("uri", value)

    if _is_ip_address(value):
        raise _san_error(text, f"looks like an IP address; write ip:{value}")
    if "@" in value:
        raise _san_error(text, f"looks like an email address; write email:{value}")
    if ":" in value:
        raise _san_error(text, "unknown SAN type; write dns:, ip:, email: or uri: before the value")
    return San("dns", _check_dns_name(text, value))


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _check_dns_name(text: str, value: str) -> str:
    """LDH labels, ``*`` allowed only as the whole first label; IDNA A-label form for non-ASCII."""
    name = value
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise _san_error(text, "not a valid internationalised domain name") from None
    if len(name) > 253:
        raise _san_error(text, "DNS names are at most 253 characters")
    labels = name.split(".")
    for i, label in enumerate(labels):
        if label == "*" and i == 0 and len(labels) > 1:
            continue
        if not _DNS_LABEL.match(label):
            shown = "an empty label (or a trailing dot)" if not label else f"label {label!r}"
            raise _san_error(text, f"{value!r} is not a DNS name: {shown}")
    return name


@dataclass(frozen=True)
class SubjectFields:
    """Subject attributes of the request (RFC 5280 appendix A bounds apply).

    Attributes:
        common_name: commonName; at most 64 characters.
        organization, organizational_unit, state, locality: optional, at most 64/64/128/128.
        country: optional two-letter ISO 3166 code.
        email_address: optional emailAddress attribute.
    """

    common_name: str
    organization: str | None = None
    organizational_unit: str | None = None
    country: str | None = None
    state: str | None = None
    locality: str | None = None
    email_address: str | None = None

    def to_request(self) -> dict[str, str]:
        """The issue function's ``subject`` object: the attributes that are set, by field name."""
        return {k: v for k, v in vars(self).items() if v is not None}

    def to_name(self) -> x509.Name:
        """The X.509 subject name, most significant attribute first.

        Raises:
            Refused: code ``InvalidSubject`` when an attribute is empty, too long or malformed.
        """
        ordered = (
            (NameOID.COUNTRY_NAME, self.country, "--country"),
            (NameOID.STATE_OR_PROVINCE_NAME, self.state, "--state"),
            (NameOID.LOCALITY_NAME, self.locality, "--locality"),
            (NameOID.ORGANIZATION_NAME, self.organization, "--organization"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, self.organizational_unit, "--organizational-unit"),
            (NameOID.COMMON_NAME, self.common_name, "common name"),
            (NameOID.EMAIL_ADDRESS, self.email_address, "--email-address"),
        )
        attributes = []
        for oid, value, option in ordered:
            if value is None:
                continue
            if not value.strip():
                raise Refused("InvalidSubject", f"{option} is empty")
            try:
                attributes.append(x509.NameAttribute(oid, value))
            except ValueError as exc:
                raise Refused("InvalidSubject", f"{option} {value!r}: {exc}") from None
        return x509.Name(attributes)


def build_csr(
    key: PrivateKey, key_type: str, subject: SubjectFields, sans: Sequence[San]
) -> x509.CertificateSigningRequest:
    """Build a PKCS#10 CSR (RFC 2986) for ``key``, signed by ``key``.

    The CSR carries the subject and, when there are SANs, a subjectAltName extension. It asks
    for nothing else: key usage and EKU come from the CA's profile, not from the request.

    Raises:
        Refused: ``InvalidSubject`` for a malformed subject attribute.
    """
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject.to_name())
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([s.to_general_name() for s in sans]), critical=False
        )
    return builder.sign(key, KEY_TYPES[key_type].csr_hash())


# --------------------------------------------------------------------------------------------
# Request and response


@dataclass(frozen=True)
class IssueRequest:
    """The issue function's request (see README, "request/response contract").

    Attributes:
        csr: PEM text of the CSR.
        profile: ``client`` or ``server``.
        sans: requested SANs (also present in the CSR).
        lifetime_days: requested lifetime in days, or None for the CA's default.
        idempotency_key: retries with the same key return the same certificate.
    """

    csr: str
    profile: str
    sans: tuple[San, ...] = ()
    lifetime_days: int | None = None
    idempotency_key: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """The JSON object sent as the Lambda invoke payload."""
        payload: dict[str, Any] = {"csr": self.csr, "profile": self.profile}
        if self.sans:
            payload["sans"] = [s.to_request() for s in self.sans]
        if self.lifetime_days is not None:
            payload["lifetime_days"] = self.lifetime_days
        if self.idempotency_key is not None:
            payload["idempotency_key"] = self.idempotency_key
        return payload


@dataclass(frozen=True)
class Issued:
    """A certificate returned by the issue function and checked against the local key.

    Attributes:
        serial_number: canonical lowercase hex, even length.
        certificate: the leaf.
        chain: issuing CA first, root last.
        profile: as the function reported it.
    """

    serial_number: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    profile: str

    @property
    def subject(self) -> str:
        """RFC 4514 text of the leaf's subject."""
        return self.certificate.subject.rfc4514_string()

    @property
    def not_before(self) -> dt.datetime:
        """Start of validity, timezone-aware UTC."""
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        """End of validity, timezone-aware UTC."""
        return self.certificate.not_valid_after_utc


def serial_to_hex(serial_number: int) -> str:
    """Canonical serial text: lowercase hex, no colons, padded to an even number of digits."""
    text = format(serial_number, "x")
    return text if len(text) % 2 == 0 else "0" + text


def invoke_function(
    lambda_client: LambdaClient, function_name: str, payload: Mapping[str, Any], what: str = "issue function"
) -> dict[str, Any]:
    """Invoke a CA function synchronously (Lambda ``Invoke``, ``RequestResponse``) with a JSON payload.

    Args:
        what: the function's role, for messages ("issue function", "revoke function").

    Returns:
        The decoded response object.

    Raises:
        Refused: the function returned an error (``FunctionError``); code and message are the
            payload's ``errorType`` and ``errorMessage``.
        CliError: the payload is not a JSON object (code ``UnexpectedResponse``).
        botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError: the call failed.
    """
    response = lambda_client.invoke(
        FunctionName=function_name,
        InvocationType="RequestResponse",
        Payload=json.dumps(payload).encode(),
    )
    raw = response["Payload"].read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if response.get("FunctionError"):
        if isinstance(body, dict) and body.get("errorType"):
            raise Refused(str(body["errorType"]), str(body.get("errorMessage", "")).strip() or "(no message)")
        raise Refused(str(response["FunctionError"]), f"the {what} failed without an error message")
    if not isinstance(body, dict):
        raise CliError("UnexpectedResponse", f"the {what} did not return a JSON object")
    return body


def invoke_issue(lambda_client: LambdaClient, function_name: str, request: IssueRequest) -> dict[str, Any]:
    """Invoke the issue function with ``request`` (see :func:`invoke_function`)."""
    return invoke_function(lambda_client, function_name, request.to_payload(), "issue function")


def check_issued(response: Mapping[str, Any], key: PrivateKey, profile: str) -> Issued:
    """Check the function's response against the local key and the requested profile.

    Checks: the leaf and the chain parse; the leaf's public key is ``key``'s; ``serial_number``
    is the leaf's serial in canonical form; the leaf is signed by the first chain certificate
    and each chain certificate by the next; the leaf's EKU has the profile's purpose
    (clientAuth or serverAuth, RFC 5280 section 4.2.1.12).

    Raises:
        CliError: code ``UnexpectedResponse`` naming the failed check.
    """
    leaf, chain = _load_issued(response)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise CliError("UnexpectedResponse", "the certificate's public key is not the key generated for this request")
    return _check_issued_certificate(response, leaf, chain, profile)


def _load_issued(response: Mapping[str, Any]) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    """The leaf and the chain of an issue response.

    Raises:
        CliError: code ``UnexpectedResponse`` when either is missing or unreadable.
    """
    try:
        leaf = x509.load_pem_x509_certificate(str(response["certificate"]).encode())
        chain = tuple(x509.load_pem_x509_certificates(str(response["certificate_chain"]).encode()))
    except (KeyError, ValueError) as exc:
        raise CliError("UnexpectedResponse", f"the response has no readable certificate and chain ({exc})") from None
    return leaf, chain


def _check_issued_certificate(
    response: Mapping[str, Any], leaf: x509.Certificate, chain: tuple[x509.Certificate, ...], profile: str
) -> Issued:
    """The checks of :func:`check_issued` that need no local key: serial, signatures, EKU."""

    def bad(why: str) -> CliError:
        return CliError("UnexpectedResponse", why)

    serial = str(response.get("serial_number", ""))
    if not _SERIAL_HEX.match(serial) or serial != serial_to_hex(leaf.serial_number):
        raise bad(f"serial_number {serial[:48]!r} does not match the certificate's serial")
    for child, parent in zip((leaf, *chain), chain, strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, InvalidSignature):
            raise bad(
                f"{child.subject.rfc4514_string()!r} is not signed by {parent.subject.rfc4514_string()!r}"
            ) from None
        except (TypeError, UnsupportedAlgorithm):
            pass  # an algorithm this cryptography build cannot verify (ML-DSA): left to openssl and peers
    try:
        ekus = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise bad("the certificate has no extended key usage") from None
    if _EKU_BY_PROFILE[profile] not in ekus:
        raise bad(f"the certificate's extended key usage does not allow {profile} authentication")
    return Issued(serial, leaf, chain, str(response.get("profile", profile)))


# --------------------------------------------------------------------------------------------
# Where the function and the CA bundle are


@dataclass(frozen=True)
class Target:
    """The issue function to call and where the published CA bundle is.

    Attributes:
        function_name: name or ARN of the issue function.
        ca_bundle_uri: ``s3://bucket/key`` of the CA bundle, or None when unknown.
        stack_name: the stack the values came from, or None.
    """

    function_name: str
    ca_bundle_uri: str | None
    stack_name: str | None = None


def default_stack_name(samconfig: Path | None, config_env: str) -> str | None:
    """``stack_name`` of ``[<config_env>.global.parameters]`` (or ``.deploy.``) in samconfig.toml.

    Looks at ``samconfig`` when given, else ``./samconfig.toml``, else the one next to this
    tool's directory (the project root). Returns None when none is found.

    Raises:
        Refused: code ``InvalidArgument`` when the file exists but is not valid TOML.
    """
    config = _read_samconfig(samconfig)
    env = config.get(config_env, {})
    for command in ("global", "deploy"):
        name = env.get(command, {}).get("parameters", {}).get("stack_name")
        if isinstance(name, str) and name:
            return name
    return None


def samconfig_region(samconfig: Path | None, config_env: str) -> str | None:
    """``region`` of ``[<config_env>.deploy.parameters]`` (or ``.global.``) in samconfig.toml, or None."""
    env = _read_samconfig(samconfig).get(config_env, {})
    for command in ("deploy", "global"):
        region = env.get(command, {}).get("parameters", {}).get("region")
        if isinstance(region, str) and region:
            return region
    return None


def _read_samconfig(samconfig: Path | None) -> dict[str, Any]:
    candidates = (
        [samconfig]
        if samconfig
        else [Path("samconfig.toml"), Path(__file__).resolve().parent.parent / "samconfig.toml"]
    )
    for path in candidates:
        if path.is_file():
            try:
                return tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise Refused("InvalidArgument", f"{path} is not valid TOML: {exc}") from None
    if samconfig:
        raise Refused("InvalidArgument", f"{samconfig} does not exist")
    return {}


def stack_outputs(cloudformation: CloudFormationClient, stack_name: str) -> dict[str, str]:
    """Outputs of ``stack_name`` as ``{OutputKey: OutputValue}`` (CloudFormation ``DescribeStacks``).

    Raises:
        botocore.exceptions.ClientError: the stack does not exist or is not readable.
    """
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", []) if "OutputKey" in o}


def find_function(
    cloudformation: Callable[[], CloudFormationClient],
    *,
    function_name: str | None,
    stack_name: str | None,
    output: str,
    what: str,
    env_var: str,
) -> tuple[str, dict[str, str]]:
    """Decide which function to invoke: ``function_name``, else the stack's ``output``.

    The stack is read (``DescribeStacks``) only when ``stack_name`` is given.

    Args:
        output: the stack output naming the function (``IssueFunctionName``, ``RevokeFunctionName``).
        what: the function's role, for messages.
        env_var: the environment variable that names the function, for messages.

    Returns:
        ``(function name or ARN, the stack's outputs)`` (outputs empty without a stack).

    Raises:
        Refused: neither a function name nor a stack name, or the stack lacks the output.
        botocore.exceptions.ClientError: the stack does not exist or is not readable.
    """
    outputs: dict[str, str] = {}
    if stack_name:
        outputs = stack_outputs(cloudformation(), stack_name)
    name = function_name or outputs.get(output)
    if not name:
        if stack_name:
            raise Refused(
                "InvalidArgument", f"stack {stack_name!r} has no {output} output; is it this project's stack?"
            )
        raise Refused(
            "InvalidArgument",
            f"no {what}: pass --function-name or --stack-name (or set "
            f"{env_var}, {ENV_STACK_NAME}, or samconfig.toml stack_name)",
        )
    return name, outputs


def resolve_target(
    cloudformation: Callable[[], CloudFormationClient],
    *,
    function_name: str | None,
    stack_name: str | None,
    ca_bundle_uri: str | None,
) -> Target:
    """Decide which issue function to invoke and where the CA bundle is.

    ``function_name`` wins over the stack's ``IssueFunctionName`` output; ``ca_bundle_uri``
    over its ``CaBundleS3Uri``. The stack is read only when ``stack_name`` is given.

    Raises:
        Refused: neither a function name nor a stack name, or the stack lacks the output.
    """
    name, outputs = find_function(
        cloudformation,
        function_name=function_name,
        stack_name=stack_name,
        output=OUTPUT_FUNCTION_NAME,
        what="issue function",
        env_var=ENV_FUNCTION_NAME,
    )
    return Target(name, ca_bundle_uri or outputs.get(OUTPUT_CA_BUNDLE_URI), stack_name)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``.

    Raises:
        Refused: code ``InvalidArgument`` when it is not of that form.
    """
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        raise Refused("InvalidArgument", f"{uri!r} is not an s3://bucket/key URI")
    return parts.netloc, parts.path.lstrip("/")


def download_ca_bundle(s3: S3Client, uri: str) -> bytes:
    """Read the published CA bundle (S3 ``GetObject``) and check it is PEM certificates.

    Returns:
        The bundle's bytes, unchanged.

    Raises:
        CliError: code ``InvalidCaBundle`` when it holds no readable certificate.
        botocore.exceptions.ClientError: the object is not readable.
    """
    bucket, key = parse_s3_uri(uri)
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        if not x509.load_pem_x509_certificates(data):
            raise ValueError("no certificate")
    except ValueError:
        raise CliError("InvalidCaBundle", f"{uri} is not a PEM certificate bundle") from None
    return data


def bundle_from_chain(chain: Sequence[x509.Certificate]) -> bytes:
    """A CA bundle (root first, then the issuing CA; PEM, no blank lines) built from a chain."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in reversed(chain))


def check_bundle_trusts(bundle: bytes, chain: Sequence[x509.Certificate], uri: str) -> None:
    """Check the CA bundle holds every CA certificate of ``chain``.

    Raises:
        CliError: code ``InvalidCaBundle`` naming the CA missing from the bundle.
    """
    held = {c.fingerprint(hashes.SHA256()) for c in x509.load_pem_x509_certificates(bundle)}
    for ca in chain:
        if ca.fingerprint(hashes.SHA256()) not in held:
            raise CliError("InvalidCaBundle", f"the CA bundle {uri} does not contain {ca.subject.rfc4514_string()!r}")


# --------------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class OutputFile:
    """One file to write.

    Attributes:
        kind: summary key (``key``, ``certificate``, ``chain``, ``fullchain``, ``ca_bundle``, ``pkcs12``).
        path: destination.
        description: for the summary.
        secret: created with mode 0600 (private key, PKCS#12), else 0644 minus the umask.
        shared: an existing file with identical content is not a conflict (the CA bundle).
    """

    kind: str
    path: Path
    description: str
    secret: bool = False
    shared: bool = False


@dataclass
class OutputPlan:
    """The files of one issuance, and their content once known."""

    files: list[OutputFile]
    content: dict[str, bytes] = field(default_factory=dict)

    def path(self, kind: str) -> Path:
        """Destination of ``kind``."""
        return next(f.path for f in self.files if f.kind == kind)


def default_name(common_name: str) -> str:
    """File stem from a common name, safe characters only (``*.example.com`` -> ``wildcard.example.com``)."""
    text = common_name.strip().replace("*", "wildcard")
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text)
    text = re.sub(r"_+", "_", text).strip("._-")
    return text[:128] or "certificate"


def plan_outputs(out_dir: Path, name: str, *, pkcs12_file: bool) -> OutputPlan:
    """The files an issuance writes into ``out_dir``, named ``<name>.*`` plus ``ca-bundle.pem``.

    Raises:
        Refused: code ``InvalidArgument`` when ``name`` has characters other than letters,
            digits, ``.``, ``_`` and ``-`` (or starts with a punctuation character).
    """
    if not _SAFE_NAME.match(name):
        raise Refused(
            "InvalidArgument",
            f"--name {name!r}: use letters, digits, '.', '_' and '-' (not first), at most 128",
        )
    files = [
        OutputFile("key", out_dir / f"{name}.key", "private key (PKCS#8 PEM, mode 0600)", secret=True),
        OutputFile("certificate", out_dir / f"{name}.crt", "certificate (PEM)"),
        OutputFile("chain", out_dir / f"{name}.chain.pem", "CA chain: issuing, root (PEM)"),
        OutputFile("fullchain", out_dir / f"{name}.fullchain.pem", "full chain: leaf, issuing, root (PEM)"),
        OutputFile("ca_bundle", out_dir / "ca-bundle.pem", "CA bundle: root, issuing (PEM, trust store)", shared=True),
    ]
    if pkcs12_file:
        files.append(
            OutputFile("pkcs12", out_dir / f"{name}.p12", "PKCS#12: key, certificate, chain (mode 0600)", secret=True)
        )
    return OutputPlan(files)


def conflicts(plan: OutputPlan, *, include_shared: bool = True) -> list[Path]:
    """Files of ``plan`` that exist and would be overwritten.

    A shared file (the CA bundle) whose content is known and identical is not a conflict;
    ``include_shared=False`` leaves shared files out (their content is not known yet).
    """
    found = []
    for f in plan.files:
        if (f.shared and not include_shared) or not os.path.lexists(f.path):
            continue
        if f.shared and f.kind in plan.content and _same_content(f.path, plan.content[f.kind]):
            continue
        found.append(f.path)
    return found


def _same_content(path: Path, data: bytes) -> bool:
    try:
        return path.is_file() and path.read_bytes() == data
    except OSError:
        return False


def _stage(f: OutputFile, data: bytes) -> Path:
    """Write ``data`` to a new temporary file next to ``f.path``; mode 0600 from creation if secret."""
    tmp = f.path.with_name(f".{f.path.name}.{uuid.uuid4().hex[:12]}.tmp")
    mode = 0o600 if f.secret else 0o644
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        if f.secret:
            os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def _link_no_clobber(tmp: Path, dest: Path) -> None:
    """Move ``tmp`` to ``dest`` unless ``dest`` exists (atomically where hard links work).

    Raises:
        FileExistsError: ``dest`` exists.
    """
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(dest):
            raise FileExistsError(dest) from None
        os.replace(tmp, dest)
        return
    tmp.unlink()


def write_outputs(plan: OutputPlan, *, force: bool) -> list[OutputFile]:
    """Write every file of ``plan`` atomically (temporary file in the same directory, then rename).

    Secret files are created with mode 0600 (``os.open``), so they are never readable by others,
    not even for a moment. Without ``force`` no existing file is replaced: a file that appeared
    since the check makes the whole write fail and removes the files this call created. A shared
    file with identical content is left as it is.

    Returns:
        The files written (shared files left untouched are not listed).

    Raises:
        Refused: code ``FileExists`` (without ``force``); nothing written.
        OSError: the directory is not writable; no temporary file left behind.
    """
    if not force and (found := conflicts(plan)):
        raise _exists_error(found)
    todo = [f for f in plan.files if not (f.shared and _same_content(f.path, plan.content[f.kind]))]
    for f in todo:
        f.path.parent.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[OutputFile, Path]] = []
    created: list[Path] = []
    try:
        for f in todo:
            staged.append((f, _stage(f, plan.content[f.kind])))
        for f, tmp in staged:
            if force:
                os.replace(tmp, f.path)
                continue
            try:
                _link_no_clobber(tmp, f.path)
            except FileExistsError:
                for path in created:
                    path.unlink(missing_ok=True)
                raise _exists_error([f.path]) from None
            created.append(f.path)
    finally:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
    _fsync_dir(plan.files[0].path.parent)
    return todo


def _fsync_dir(directory: Path) -> None:
    """Make the renames durable (best effort; not every platform can open a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exists_error(paths: Sequence[Path]) -> Refused:
    listed = ", ".join(str(p) for p in paths)
    verb = "exists" if len(paths) == 1 else "exist"
    return Refused("FileExists", f"{listed} already {verb}; pass --force to overwrite, or choose --name / --out-dir")


def render_files(
    plan: OutputPlan,
    key: PrivateKey,
    issued: Issued,
    ca_bundle: bytes,
    pkcs12_password: bytes | None,
    *,
    legacy_pkcs12: bool,
) -> None:
    """Fill ``plan.content`` with the PEM (and PKCS#12) encodings of the key and certificates."""
    pem = serialization.Encoding.PEM
    leaf = issued.certificate.public_bytes(pem)
    chain = b"".join(c.public_bytes(pem) for c in issued.chain)
    plan.content.update(
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        certificate=leaf,
        chain=chain,
        fullchain=leaf + chain,
        ca_bundle=ca_bundle,
    )
    if any(f.kind == "pkcs12" for f in plan.files):
        if pkcs12_password is None:
            raise Refused("InvalidArgument", "a PKCS#12 file needs a password")
        plan.content["pkcs12"] = make_pkcs12(
            plan.path("pkcs12").stem, key, issued, pkcs12_password, legacy=legacy_pkcs12
        )


def make_pkcs12(friendly_name: str, key: PrivateKey, issued: Issued, password: bytes, *, legacy: bool) -> bytes:
    """PKCS#12 (RFC 7292) with the key, the leaf and the chain, encrypted with ``password``.

    ``legacy`` uses PBE-SHA1-3DES and a SHA-1 MAC for old importers (Windows before 2019,
    older macOS); otherwise AES-256-CBC with PBKDF2 and HMAC-SHA256.
    """
    if legacy:
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(50000)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())
            .build(password)
        )
    else:
        encryption = serialization.BestAvailableEncryption(password)
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode(), key, issued.certificate, list(issued.chain), encryption
    )


def read_pkcs12_password(password_file: str | None, env_var: str, environ: Mapping[str, str], stdin: IO[str]) -> bytes:
    """The PKCS#12 password: from ``password_file`` (first line; ``-`` is stdin), else the
    environment variable ``env_var``, else a prompt (twice) when stdin is a terminal.

    Raises:
        Refused: code ``InvalidArgument`` when there is no password, it is empty, or the two
            prompted entries differ.
    """
    if password_file:
        try:
            text = stdin.readline() if password_file == "-" else Path(password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise Refused("InvalidArgument", f"cannot read --pkcs12-password-file: {exc.strerror}") from None
        password = text.splitlines()[0] if text else ""
        source = "--pkcs12-password-file"
    elif environ.get(env_var):
        password, source = environ[env_var], env_var
    elif stdin.isatty():
        password = getpass.getpass("PKCS#12 password: ")
        if getpass.getpass("PKCS#12 password (again): ") != password:
            raise Refused("InvalidArgument", "the two passwords differ")
        source = "the prompt"
    else:
        raise Refused(
            "InvalidArgument",
            f"--pkcs12 needs a password: --pkcs12-password-file, or the {env_var} environment variable",
        )
    if not password:
        raise Refused("InvalidArgument", f"the PKCS#12 password from {source} is empty")
    return password.encode("utf-8")


# --------------------------------------------------------------------------------------------
# AWS clients


class AwsClients:
    """Lazily created boto3 clients of one session; tests pass ready-made (stubbed) clients.

    The session follows the standard configuration chain, including ``AWS_ENDPOINT_URL`` for
    the local sandbox.
    """

    def __init__(
        self,
        *,
        profile: str | None = None,
        region: str | None = None,
        fallback_region: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        lambda_client: LambdaClient | None = None,
        cloudformation_client: CloudFormationClient | None = None,
        s3_client: S3Client | None = None,
    ) -> None:
        self._profile, self._region, self._fallback_region, self._timeout = (
            profile,
            region,
            fallback_region,
            timeout,
        )
        self._clients: dict[str, Any] = {
            "lambda": lambda_client,
            "cloudformation": cloudformation_client,
            "s3": s3_client,
        }
        self._session: Any = None

    def _client(self, service: str) -> Any:
        if self._clients.get(service) is None:
            import boto3
            from botocore.config import Config

            if self._session is None:
                self._session = boto3.Session(profile_name=self._profile, region_name=self._region)
            region = self._session.region_name or self._fallback_region
            if not region:
                raise Refused(
                    "InvalidArgument",
                    "no AWS region: pass --region or set AWS_REGION (or region in samconfig.toml)",
                )
            # Retries follow the standard AWS configuration (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE); they
            # are safe because every issue request carries an idempotency key and revocation is
            # idempotent.
            config = Config(read_timeout=self._timeout)
            self._clients[service] = self._session.client(service, region_name=region, config=config)
        return self._clients[service]

    @property
    def lambda_(self) -> LambdaClient:
        """Lambda client (Invoke)."""
        return self._client("lambda")

    @property
    def cloudformation(self) -> CloudFormationClient:
        """CloudFormation client (DescribeStacks)."""
        return self._client("cloudformation")

    @property
    def s3(self) -> S3Client:
        """S3 client (GetObject of the CA bundle)."""
        return self._client("s3")


# --------------------------------------------------------------------------------------------
# Options and error reporting shared by the CLIs


def add_aws_arguments(
    parser: argparse.ArgumentParser, *, what: str, output: str, env_var: str, stack_help: str | None = None
) -> argparse._ArgumentGroup:
    """Add the options every CLI shares to find and call a CA function: ``--profile``,
    ``--region``, ``--stack-name``, ``--function-name``, ``--config-env``, ``--samconfig``,
    ``--timeout``.

    Args:
        what: the function's role ("issue function"), for the help text.
        output: the stack output naming the function.
        env_var: the environment variable naming the function.
        stack_help: help of ``--stack-name`` before its default.

    Returns:
        The "AWS" argument group, for options of one tool only.
    """
    aws = parser.add_argument_group("AWS")
    aws.add_argument("--profile", help="AWS named profile (default: the standard credential chain)")
    aws.add_argument("--region", help="AWS region (default: AWS_REGION / profile, else samconfig.toml deploy region)")
    aws.add_argument(
        "--stack-name",
        help=f"{stack_help or f'stack whose {output} output names the function'} (default: {ENV_STACK_NAME}, "
        "else samconfig.toml stack_name)",
    )
    aws.add_argument(
        "--function-name",
        help=f"{what} name or ARN; overrides the stack output {output} (default: {env_var})",
    )
    aws.add_argument(
        "--config-env",
        default="default",
        help="samconfig.toml environment to read defaults from (default 'default')",
    )
    aws.add_argument(
        "--samconfig",
        type=Path,
        metavar="FILE",
        help="samconfig.toml to read (default ./samconfig.toml, else the project's)",
    )
    aws.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"how long to wait for the {what} (default {DEFAULT_TIMEOUT_SECONDS})",
    )
    return aws


def function_and_stack(
    args: argparse.Namespace, environ: Mapping[str, str], env_var: str
) -> tuple[str | None, str | None]:
    """``(function_name, stack_name)`` from the options, else the environment, else samconfig.toml.

    The stack name comes from samconfig.toml only when neither a function nor a stack was given.

    Raises:
        Refused: ``--timeout`` not positive, or an unreadable ``--samconfig``.
    """
    if args.timeout <= 0:
        raise Refused("InvalidArgument", "--timeout must be positive")
    function_name = args.function_name or environ.get(env_var) or None
    stack_name = args.stack_name or environ.get(ENV_STACK_NAME) or None
    if not stack_name and not function_name:
        stack_name = default_stack_name(args.samconfig, args.config_env)
    return function_name, stack_name


def clients_for(args: argparse.Namespace) -> AwsClients:
    """boto3 clients for the parsed AWS options (region falls back to samconfig.toml's)."""
    fallback_region = None if args.region else samconfig_region(args.samconfig, args.config_env)
    return AwsClients(profile=args.profile, region=args.region, fallback_region=fallback_region, timeout=args.timeout)


def run_reporting(action: Callable[[], int], stderr: IO[str], *, interrupted: str) -> int:
    """Run a CLI's ``action`` and turn its errors into one stderr line and an exit status.

    Every error is printed as ``error: <Code>: <message>``: a :class:`CliError` with its own code
    and exit status (2 for :class:`Refused`), an AWS ``ClientError`` with the service's code,
    other botocore errors and ``OSError`` with their class name (exit 1). Ctrl-C prints
    ``error: Interrupted: <interrupted>`` and exits 130.

    Returns:
        ``action``'s exit status, or the error's.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return action()
    except CliError as exc:
        print(f"error: {exc.code}: {exc.message}", file=stderr)
        return exc.exit_code
    except ClientError as exc:
        err = exc.response.get("Error", {})
        print(f"error: {err.get('Code', 'ClientError')}: {err.get('Message') or exc}", file=stderr)
        return EXIT_FAILURE
    except BotoCoreError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=stderr)
        return EXIT_FAILURE
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {type(exc).__name__}: {exc.strerror or exc}{where}", file=stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"error: Interrupted: {interrupted}", file=stderr)
        return 130


# --------------------------------------------------------------------------------------------
# Command line


def add_subject_arguments(group: argparse._ArgumentGroup) -> None:
    """The subject attribute options other than the common name (``--organization`` and friends)."""
    group.add_argument("--organization", "-O", metavar="O", help="subject organizationName")
    group.add_argument("--organizational-unit", "--ou", metavar="OU", help="subject organizationalUnitName")
    group.add_argument("--country", "-C", metavar="CC", help="subject countryName (two letters)")
    group.add_argument("--state", metavar="ST", help="subject stateOrProvinceName")
    group.add_argument("--locality", "-L", metavar="L", help="subject localityName")
    group.add_argument(
        "--email-address", metavar="EMAIL", help="subject emailAddress attribute (prefer --san email:...)"
    )


def subject_from_args(args: argparse.Namespace, common_name: str) -> SubjectFields:
    """The subject of the parsed options, checked.

    Raises:
        Refused: ``InvalidSubject`` for an empty, too long or malformed attribute.
    """
    subject = SubjectFields(
        common_name=common_name,
        organization=args.organization,
        organizational_unit=args.organizational_unit,
        country=args.country,
        state=args.state,
        locality=args.locality,
        email_address=args.email_address,
    )
    subject.to_name()  # refuse a malformed attribute now
    return subject


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
    cert.add_argument(
        "common_name",
        nargs="?",
        metavar="COMMON_NAME",
        help="subject common name" + (" (default: the first --san)" if profile == SERVER else ""),
    )
    cert.add_argument("--common-name", "--cn", dest="common_name_option", metavar="CN", help="same as COMMON_NAME")
    cert.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="TYPE:VALUE",
        help="subject alternative name, repeatable: dns:NAME, ip:ADDRESS, email:ADDRESS, uri:URI "
        "(a bare value is a DNS name)",
    )
    cert.add_argument(
        "--lifetime-days",
        type=int,
        metavar="DAYS",
        help="certificate lifetime in days (default: the CA's default; longer than its maximum is refused)",
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
    subject: SubjectFields
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
    request = IssueRequest(
        csr=csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        profile=opts.profile,
        sans=opts.sans,
        lifetime_days=opts.lifetime_days,
        idempotency_key=opts.idempotency_key,
    )
    issued = check_issued(invoke_issue(clients.lambda_, target.function_name, request), key, opts.profile)
    if bundle is None:
        bundle, source = bundle_from_chain(issued.chain), "the returned chain"
    else:
        check_bundle_trusts(bundle, issued.chain, str(target.ca_bundle_uri))
        source = str(target.ca_bundle_uri)
    try:
        render_files(opts.plan, key, issued, bundle, opts.pkcs12_password, legacy_pkcs12=opts.pkcs12_legacy)
        written = write_outputs(opts.plan, force=opts.force)
    except Refused as exc:
        raise Refused(
            exc.code, f"{exc.message} (certificate {issued.serial_number} was issued but not saved)"
        ) from None
    return issued, target, source, written


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary(
    opts: Options, issued: Issued, target: Target, bundle_source: str, written: Sequence[OutputFile]
) -> dict[str, Any]:
    """The ``--json`` summary: certificate facts and file paths (never key material).

    Shape: ``{serial_number, subject, profile, not_before, not_after (ISO 8601 UTC), key_type,
    function_name, stack_name (or null), ca_bundle_source, files: {kind: path}, written: [path, ...]}``.
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
    }


def print_summary(info: Mapping[str, Any], opts: Options, written: Sequence[OutputFile], out: IO[str]) -> None:
    """Human-readable summary: what was written, the serial and the expiry."""
    not_after = dt.datetime.fromisoformat(info["not_after"])
    days = (not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400
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
    args = build_parser(profile, prog).parse_args(argv)

    def warn(message: str) -> None:
        print(f"warning: {message}", file=stderr)

    done: list[tuple[Options, Issued, Target, str, list[OutputFile]]] = []

    def action() -> int:
        opts = parse_options(args, profile, environ, stdin)
        done.append((opts, *issue(opts, clients or clients_for(args), warn)))
        return EXIT_OK

    code = run_reporting(action, stderr, interrupted="stopped before the files were written")
    if not done:
        return code
    opts, issued, target, source, written = done[0]
    info = summary(opts, issued, target, source, written)
    if opts.json:
        json.dump(info, stdout, indent=2)
        stdout.write("\n")
    else:
        print_summary(info, opts, written, stdout)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# Revocation (revoke-cert.py)


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
    any case, with or without colons or ``0x``; None when it is not a positive hex number (the
    revoke function then refuses it with its own message)."""
    cleaned = text.strip().lower().replace(":", "").removeprefix("0x")
    if not cleaned or not re.fullmatch(r"[0-9a-f]+", cleaned) or int(cleaned, 16) <= 0:
        return None
    return serial_to_hex(int(cleaned, 16))


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
        ``(checked response, function name)``.

    Raises:
        Refused, CliError, botocore errors: see :func:`revoke_main`.
    """
    function_name, _ = find_function(
        lambda: clients.cloudformation,
        function_name=opts.function_name,
        stack_name=opts.stack_name,
        output=OUTPUT_REVOKE_FUNCTION_NAME,
        what="revoke function",
        env_var=ENV_REVOKE_FUNCTION_NAME,
    )
    response = invoke_function(clients.lambda_, function_name, opts.to_payload(), "revoke function")
    return check_revoked(response, opts), function_name


def revoke_summary(response: Mapping[str, Any], opts: RevokeOptions, function_name: str) -> dict[str, Any]:
    """The ``--json`` output: the function's response (``serial_number``, ``revoked_at``, ``reason``,
    ``already_revoked``, ``invalidity_date`` when recorded) plus ``requested_reason``,
    ``function_name``, ``stack_name`` and, with ``--cert``, ``subject`` and ``certificate_file``."""
    info = dict(response)
    info.update(requested_reason=opts.reason, function_name=function_name, stack_name=opts.stack_name)
    if opts.certificate is not None:
        info.update(subject=opts.certificate.subject.rfc4514_string(), certificate_file=str(opts.certificate_file))
    return info


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
    args = build_revoke_parser(prog).parse_args(argv)
    done: list[dict[str, Any]] = []

    def action() -> int:
        opts = parse_revoke_options(args, environ)
        response, function_name = revoke(opts, clients or clients_for(args))
        done.append(revoke_summary(response, opts, function_name))
        return EXIT_OK

    code = run_reporting(action, stderr, interrupted="the revocation may or may not have been recorded; run again")
    if not done:
        return code
    if args.json:
        json.dump(done[0], stdout, indent=2)
        stdout.write("\n")
    else:
        print_revocation(done[0], stdout, stderr)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# CloudFront origin client certificates (cloudfront-origin-cert.py)

CLOUDFRONT_ORIGIN = "cloudfront-origin"
#: Key types CloudFront origin mTLS (through ACM) accepts; the issue function refuses others.
ORIGIN_KEY_TYPES = ("ec-p256", "rsa-2048")
#: The region whose ACM CloudFront reads certificates from, whatever region the stack is in.
ACM_REGION = "us-east-1"

_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[A-Za-z0-9-]+$")
_KEY_OF_TYPE: dict[str, tuple[type, int]] = {
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

    subject: SubjectFields
    sans: tuple[San, ...]
    key_type: str
    lifetime_days: int | None
    idempotency_key: str
    plan: OutputPlan | None
    force: bool
    json: bool
    function_name: str | None
    stack_name: str | None

    def to_payload(self) -> dict[str, Any]:
        """The issue function's request: profile ``cloudfront-origin``, no ``csr`` (the function
        generates the key for ACM), ``key_type``, ``subject``, and ``sans`` / ``lifetime_days``
        when given."""
        payload: dict[str, Any] = {
            "profile": CLOUDFRONT_ORIGIN,
            "key_type": self.key_type,
            "subject": self.subject.to_request(),
            "idempotency_key": self.idempotency_key,
        }
        if self.sans:
            payload["sans"] = [s.to_request() for s in self.sans]
        if self.lifetime_days is not None:
            payload["lifetime_days"] = self.lifetime_days
        return payload


@dataclass(frozen=True)
class OriginIssued:
    """A ``cloudfront-origin`` certificate as the issue function returned it, checked.

    Attributes:
        issued: serial, leaf, chain (issuing, root) and profile.
        acm_certificate_arn: where the function imported certificate, key and chain (ACM us-east-1).
    """

    issued: Issued
    acm_certificate_arn: str


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
    cert.add_argument(
        "common_name", nargs="?", metavar="COMMON_NAME", help="subject common name (default: the first --san)"
    )
    cert.add_argument("--common-name", "--cn", dest="common_name_option", metavar="CN", help="same as COMMON_NAME")
    cert.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="TYPE:VALUE",
        help="subject alternative name, repeatable: dns:NAME, ip:ADDRESS, email:ADDRESS, uri:URI "
        "(a bare value is a DNS name)",
    )
    cert.add_argument(
        "--lifetime-days",
        type=int,
        metavar="DAYS",
        help="certificate lifetime in days (default: the profile's, 90; longer than the CA's maximum is refused)",
    )
    cert.add_argument(
        "--key-type",
        default=ORIGIN_KEY_TYPES[0],
        metavar="TYPE",
        help=f"key pair the issue function generates: {' or '.join(ORIGIN_KEY_TYPES)} (default {ORIGIN_KEY_TYPES[0]}); "
        "CloudFront origin mTLS accepts no other",
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
    subject = subject_from_args(args, common_name)
    key_type = check_origin_key_type(args.key_type)
    if args.idempotency_key is not None and not args.idempotency_key.strip():
        raise Refused("InvalidArgument", "--idempotency-key is empty")
    if args.name and args.out_dir is None:
        raise Refused("InvalidArgument", "--name needs --out-dir (without it no file is written)")
    plan = None
    if args.out_dir is not None:
        plan = plan_origin_outputs(args.out_dir, args.name or default_name(common_name))
        if not args.force and (found := conflicts(plan)):
            raise _exists_error(found)
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
    )


def check_origin_issued(response: Mapping[str, Any], key_type: str) -> OriginIssued:
    """Check the issue function's answer to a ``cloudfront-origin`` request.

    Checks: no private key in the response; the checks of :func:`check_issued` that need no local
    key (serial, chain signatures, EKU clientAuth); the leaf's key is of ``key_type``; the
    response names an ACM certificate ARN in us-east-1.

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
    cls, size = _KEY_OF_TYPE[key_type]
    public_key = leaf.public_key()
    if not isinstance(public_key, cls) or public_key.key_size != size:
        raise CliError(
            "UnexpectedResponse",
            f"certificate {issued.serial_number} does not carry an {key_type} key as requested",
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
    return OriginIssued(issued, arn)


def issue_origin(opts: OriginOptions, clients: AwsClients) -> tuple[OriginIssued, str, list[OutputFile]]:
    """Find the issue function, request the certificate, check it and write the optional files.

    Returns:
        ``(checked result, function name, files written)``.

    Raises:
        Refused, CliError, botocore errors, OSError: see :func:`origin_main`.
    """
    function_name, _ = find_function(
        lambda: clients.cloudformation,
        function_name=opts.function_name,
        stack_name=opts.stack_name,
        output=OUTPUT_FUNCTION_NAME,
        what="issue function",
        env_var=ENV_FUNCTION_NAME,
    )
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
        except Refused as exc:
            raise Refused(
                exc.code,
                f"{exc.message} (certificate {result.issued.serial_number} was issued and imported into "
                f"{result.acm_certificate_arn})",
            ) from None
    return result, function_name, written


def origin_summary(
    opts: OriginOptions, result: OriginIssued, function_name: str, written: Sequence[OutputFile]
) -> dict[str, Any]:
    """The ``--json`` output (never key material).

    Shape: ``{serial_number, subject, profile, not_before, not_after, key_type, acm_certificate_arn,
    acm_region, origin_mtls_config, function_name, stack_name, files: {kind: path}, written: [...]}``;
    ``files`` is empty without ``--out-dir``.
    """
    issued = result.issued
    return {
        "serial_number": issued.serial_number,
        "subject": issued.subject,
        "profile": issued.profile,
        "not_before": _iso(issued.not_before),
        "not_after": _iso(issued.not_after),
        "key_type": opts.key_type,
        "acm_certificate_arn": result.acm_certificate_arn,
        "acm_region": ACM_REGION,
        "origin_mtls_config": origin_mtls_config(result.acm_certificate_arn),
        "function_name": function_name,
        "stack_name": opts.stack_name,
        "files": {f.kind: str(f.path) for f in opts.plan.files} if opts.plan else {},
        "written": [str(f.path) for f in written],
    }


def print_origin_summary(info: Mapping[str, Any], out: IO[str]) -> None:
    """Human-readable result: the certificate, the ACM ARN and the snippet to paste."""
    not_after = dt.datetime.fromisoformat(info["not_after"])
    days = (not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    print(f"Issued {info['profile']} certificate {info['subject']} and imported it into ACM", file=out)
    print(f"  serial number  {info['serial_number']}", file=out)
    print(f"  valid          {info['not_before']} .. {info['not_after']} ({days:.0f} days)", file=out)
    print(f"  key type       {info['key_type']} (generated by the issue function; it exists only in ACM)", file=out)
    print(f"  ACM ARN        {info['acm_certificate_arn']}", file=out)
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
    args = build_origin_parser(prog).parse_args(argv)
    done: list[dict[str, Any]] = []

    def action() -> int:
        opts = parse_origin_options(args, environ)
        result, function_name, written = issue_origin(opts, clients or clients_for(args))
        done.append(origin_summary(opts, result, function_name, written))
        return EXIT_OK

    code = run_reporting(
        action,
        stderr,
        interrupted="the certificate may or may not have been imported; look in ACM us-east-1 for the tag "
        "managed-by=kmsca",
    )
    if not done:
        return code
    if args.json:
        json.dump(done[0], stdout, indent=2)
        stdout.write("\n")
    else:
        print_origin_summary(done[0], stdout)
    return EXIT_OK
