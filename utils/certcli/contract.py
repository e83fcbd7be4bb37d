"""The issue function's request/response contract: profiles, the request, the checked response."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from kmsca.request_values import CLIENT, SERVER
from kmsca.serial import serial_to_hex  # the CA's own canonical serial form

from .errors import CliError
from .keys import PrivateKey
from .names import San

_EKU_BY_PROFILE = {CLIENT: ExtendedKeyUsageOID.CLIENT_AUTH, SERVER: ExtendedKeyUsageOID.SERVER_AUTH}


@dataclass(frozen=True)
class CliIssueRequest:
    """What ``client-cert.py`` / ``server-cert.py`` send to the issue function (see README,
    "request/response contract"): a CSR-based subset of the function's request. The function
    parses it into ``kmsca.models.IssueRequest`` (pydantic, Python 3.11+), which checks it.

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
    if serial != serial_to_hex(leaf.serial_number):  # the canonical form of the certificate's serial
        raise bad(f"serial_number {serial[:48]!r} does not match the certificate's serial")
    for child, parent in zip((leaf, *chain), chain):
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


#: UTC (``datetime.UTC`` is 3.11+; the CLIs run on 3.9+).
UTC = dt.timezone.utc


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    """An ISO 8601 time such as ``2026-11-20T10:00:00Z`` (``fromisoformat`` accepts ``Z`` only on 3.11+).

    Raises:
        ValueError: not an ISO 8601 time.
    """
    value = text.strip()
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    return dt.datetime.fromisoformat(value)
