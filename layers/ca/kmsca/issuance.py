"""Issuance: an ordered pipeline of small checks, then one signature, then one write.

    parse (handler) -> CSR parses and its signature verifies -> key policy -> profile
    -> subject -> SANs -> profile names -> validity -> kms:Sign -> store (serial must be new)

Each check raises a typed :class:`~kmsca.errors.CaError`; nothing is signed or stored unless
every check passed. AWS API calls per warm issuance: ``kms:Sign`` and ``dynamodb:PutItem``
(two), plus one ``dynamodb:GetItem`` when the request carries an ``idempotency_key`` (three),
where the PutItem becomes a ``TransactWriteItems`` of the certificate and the idempotency record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from .ca import IssuingCa
from .certificates import ISSUING, build_end_entity_certificate
from .errors import IdempotencyKeyReused, InvalidCsr, InvalidLifetime, LifetimeExceeded
from .models import IssueRequest
from .names import build_subject, sans_from_csr, validate_sans
from .profiles import check_key_policy, check_profile_names, select_profile
from .records import CertificateRecord, IdempotencyRecord, iso
from .store import CertificateStore, IdempotencyKeyInUse

# Clock skew allowance: not_before is this much before the moment of issuance.
BACKDATE = timedelta(minutes=5)
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class IssuancePolicy:
    """Limits the issue function applies.

    Attributes:
        max_lifetime_days: longest lifetime, days; longer requests are refused.
        default_lifetime_days: lifetime when the request names none, days.
    """

    max_lifetime_days: int
    default_lifetime_days: int


def load_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    """Parse a PEM PKCS#10 CSR and verify its self-signature (proof of possession).

    Raises:
        InvalidCsr: not exactly one PEM CERTIFICATE REQUEST block, not parseable, or a signature
            that does not verify.
    """
    text = csr_pem.strip()
    if not text.startswith("-----BEGIN CERTIFICATE REQUEST-----") or text.count("-----BEGIN ") != 1:
        raise InvalidCsr("csr must be one PEM block starting with -----BEGIN CERTIFICATE REQUEST-----")
    try:
        csr = x509.load_pem_x509_csr(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidCsr(f"csr is not a valid PKCS#10 request: {str(exc)[:200]}") from None
    try:
        valid = csr.is_signature_valid
    except Exception as exc:  # unsupported signature algorithm, malformed key
        raise InvalidCsr(f"the CSR signature cannot be checked: {str(exc)[:200]}") from None
    if not valid:
        raise InvalidCsr("the CSR signature does not verify with its own public key")
    return csr


def check_validity(
    lifetime_days: int | None, policy: IssuancePolicy, issuer_not_after: datetime, now: datetime
) -> tuple[datetime, datetime]:
    """Validity period (RFC 5280 4.1.2.5): not_before = now - 5 minutes, not_after = now + lifetime.

    Raises:
        InvalidLifetime: ``lifetime_days`` below 1.
        LifetimeExceeded: above the maximum, or ending after the issuing CA certificate.
    """
    days = policy.default_lifetime_days if lifetime_days is None else lifetime_days
    if days < 1:
        raise InvalidLifetime(f"lifetime_days must be at least 1, got {days}")
    if days > policy.max_lifetime_days:
        raise LifetimeExceeded(
            f"lifetime_days {days} is above the maximum of {policy.max_lifetime_days} days"
        )
    not_after = now + timedelta(days=days)
    if not_after > issuer_not_after:
        raise LifetimeExceeded(
            f"a {days}-day certificate would outlive the issuing CA, which expires {iso(issuer_not_after)}"
        )
    return now - BACKDATE, not_after


def request_hash(request: IssueRequest) -> str:
    """SHA-256 of the request without its idempotency key (canonical JSON), hex."""
    body = request.model_dump(exclude={"idempotency_key"}, exclude_none=True)
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def key_hash(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


def response_for(record: CertificateRecord, ca: IssuingCa) -> dict[str, str]:
    """The issue function's response for a stored certificate."""
    return {
        "serial_number": record.serial_number,
        "certificate": record.certificate_pem,
        "certificate_chain": ca.chain_pem,
        "not_before": iso(record.not_before),
        "not_after": iso(record.not_after),
        "subject": record.subject,
        "profile": record.profile,
    }


@dataclass(frozen=True)
class IssueOutcome:
    """The response, and whether it is a replay of an earlier one (same idempotency key)."""

    response: dict[str, str]
    replayed: bool


class Issuer:
    """Signs end-entity certificates for CSRs.

    Args:
        ca: the loaded issuing CA.
        store: the certificate inventory.
        policy: lifetime limits.
    """

    def __init__(self, ca: IssuingCa, store: CertificateStore, policy: IssuancePolicy) -> None:
        self._ca = ca
        self._store = store
        self._policy = policy

    def issue(self, request: IssueRequest, now: datetime) -> IssueOutcome:
        """Run the pipeline and return the response (see :func:`response_for`).

        With an ``idempotency_key``: a second request with the same key and the same body gets the
        first response back; with the same key and another body, ``IdempotencyKeyReused``.

        Raises:
            InvalidCsr, KeyPolicyViolation, UnknownProfile, InvalidSubject,
            InvalidSubjectAlternativeName, InvalidLifetime, LifetimeExceeded, IdempotencyKeyReused,
            SerialNumberCollision: see :mod:`kmsca.errors`; nothing was signed or stored.
        """
        idempotency: IdempotencyRecord | None = None
        idempotency_key = request.idempotency_key
        if idempotency_key is not None:
            previous = self._previous_response(idempotency_key, request, now)
            if previous is not None:
                return IssueOutcome(previous, replayed=True)
            idempotency = IdempotencyRecord(
                key_hash=key_hash(request.idempotency_key),
                request_hash=request_hash(request),
                response={},
                expires_at=now + IDEMPOTENCY_TTL,
            )

        certificate = self.sign(request, now)
        record = CertificateRecord.from_certificate(certificate, ca=ISSUING, profile=request.profile, issued_at=now)
        response = response_for(record, self._ca)
        if idempotency is None or idempotency_key is None:
            self._store.put_certificate(record)
            return IssueOutcome(response, replayed=False)
        try:
            self._store.put_certificate(
                record,
                IdempotencyRecord(idempotency.key_hash, idempotency.request_hash, response, idempotency.expires_at),
            )
        except IdempotencyKeyInUse:
            # A concurrent request with the same key won the race: its certificate is the one.
            previous = self._previous_response(idempotency_key, request, now)
            if previous is None:
                raise
            return IssueOutcome(previous, replayed=True)
        return IssueOutcome(response, replayed=False)

    def sign(self, request: IssueRequest, now: datetime) -> x509.Certificate:
        """Every check, then the one ``kms:Sign``; returns the certificate (not yet stored)."""
        csr = load_csr(request.csr)
        public_key = check_key_policy(csr.public_key())
        profile = select_profile(request.profile)
        subject = build_subject(csr.subject, request.subject.overrides() if request.subject else {})
        requested = request.san_entries()
        sans = validate_sans(requested if requested is not None else sans_from_csr(csr))
        check_profile_names(profile, subject, sans)
        not_before, not_after = check_validity(
            request.lifetime_days, self._policy, self._ca.issuing.certificate.not_valid_after_utc, now
        )
        return build_end_entity_certificate(
            self._ca.private_key,
            self._ca.scheme,
            self._ca.issuing.certificate,
            public_key,
            subject,
            sans,
            profile.extended_key_usages,
            x509.random_serial_number(),
            not_before,
            not_after,
            self._ca.urls,
        )

    def _previous_response(
        self, idempotency_key: str, request: IssueRequest, now: datetime
    ) -> dict[str, str] | None:
        previous = self._store.get_idempotency(key_hash(idempotency_key))
        if previous is None or previous.expires_at <= now:
            return None
        if previous.request_hash != request_hash(request):
            raise IdempotencyKeyReused(
                "this idempotency_key was used in the last 24 hours for a different request; use a new key"
            )
        return previous.response
