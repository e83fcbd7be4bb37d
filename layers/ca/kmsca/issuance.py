"""Issuance: an ordered pipeline of small checks, then one signature, then one write.

    parse (handler) -> profile -> subject key: CSR parses, its signature verifies, key policy
    (or, for cloudfront-origin, a key generated in memory) -> subject -> SANs -> profile names
    -> validity -> kms:Sign -> store (serial must be new)

For cloudfront-origin the store step is a small state machine, so that ACM never serves a
certificate the inventory does not know: record the certificate as ``pending_import`` (no key is
stored), import it into ACM, then record the ARN (with the idempotency record). If the import fails
the pending certificate is revoked (``cessationOfOperation``: it was never served); if the function
dies in between, the next rotation run finds the pending record and repairs it
(:mod:`kmsca.rotation`).

Each check raises a typed :class:`~kmsca.errors.CaError`; nothing is signed or stored unless
every check passed. AWS API calls per warm issuance: ``kms:Sign`` and ``dynamodb:PutItem``
(two), plus one ``dynamodb:GetItem`` when the request carries an ``idempotency_key`` (three),
where the PutItem becomes a ``TransactWriteItems`` of the certificate and the idempotency record;
plus, for the cloudfront-origin profile, one ``acm:ImportCertificate`` and one more
``dynamodb:PutItem`` (the certificate recorded as pending before the import).
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography import x509

from .acm import AcmImporter, OriginBundle, acm_tags, import_may_have_happened
from .acm_targets import AcmDestination, AcmTargets, account_of
from .ca import IssuingCa
from .caller_policy import UNRESTRICTED, Caller, Grant
from .certificates import BACKDATE, ISSUING, build_end_entity_certificate
from .errors import (
    AwsCallFailed,
    CaNotReady,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    InvalidCsr,
    InvalidLifetime,
    InvalidRequest,
    LifetimeExceeded,
)
from .models import IssueRequest
from .names import SanEntry, build_subject, general_name_to_san, sans_from_csr, validate_sans
from .profiles import (
    GeneratedPrivateKey,
    Profile,
    SubjectPublicKey,
    check_key_policy,
    check_profile_names,
    generate_key,
    origin_key_type,
    select_profile,
)
from .records import CertificateParts, CertificateRecord, IdempotencyRecord, iso, pem
from .renewal import RenewalPlan, plan_renewal
from .store import CertificateStore, IdempotencyKeyInUse, PendingImportGone, WriteConflict

IDEMPOTENCY_TTL = timedelta(hours=24)
#: Pauses before re-reading the idempotency record after losing a race for its key, seconds.
RACE_BACKOFF = (0.05, 0.2, 0.5)


@dataclass(frozen=True)
class IssuancePolicy:
    """Limits the issue function applies.

    Attributes:
        max_lifetime_days: longest lifetime, days; longer requests are refused.
        default_lifetime_days: lifetime when the request names none, days.
    """

    max_lifetime_days: int
    default_lifetime_days: int


def load_csr(csr_pem: str | None) -> x509.CertificateSigningRequest:
    """Parse a PEM PKCS#10 CSR and verify its self-signature (proof of possession).

    Raises:
        InvalidCsr: missing, not exactly one PEM CERTIFICATE REQUEST block, not parseable, or a
            signature that does not verify.
    """
    if csr_pem is None:
        raise InvalidCsr("csr is required and must be the PEM text of a PKCS#10 request")
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
        raise InvalidLifetime(f"lifetime_days must be at least 1, got {days}", lifetime_days=days)
    if days > policy.max_lifetime_days:
        raise LifetimeExceeded(
            f"lifetime_days {days} is above the maximum of {policy.max_lifetime_days} days",
            lifetime_days=days,
            max_lifetime_days=policy.max_lifetime_days,
        )
    not_after = now + timedelta(days=days)
    if not_after > issuer_not_after:
        raise LifetimeExceeded(
            f"a {days}-day certificate would outlive the issuing CA, which expires {iso(issuer_not_after)}",
            lifetime_days=days,
            issuer_not_after=iso(issuer_not_after),
        )
    return now - BACKDATE, not_after


def request_hash(request: IssueRequest) -> str:
    """SHA-256 of the request without its idempotency key (canonical JSON), hex."""
    body = request.model_dump(exclude={"idempotency_key"}, exclude_none=True)
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def key_hash(idempotency_key: str, caller: Caller | None = None) -> str:
    """SHA-256 hex of an idempotency key; a verified caller's key is scoped to its principal
    (:attr:`Caller.owner`), so one caller never gets another's response by reusing its key."""
    scoped = idempotency_key if caller is None else f"{caller.owner}\n{idempotency_key}"
    return hashlib.sha256(scoped.encode()).hexdigest()


def response_for(record: CertificateRecord, ca: IssuingCa) -> dict[str, str]:
    """The issue function's response for a stored certificate (never a private key)."""
    response = {
        "serial_number": record.serial_number,
        "certificate": record.certificate_pem,
        "certificate_chain": ca.chain_pem,
        "not_before": iso(record.not_before),
        "not_after": iso(record.not_after),
        "subject": record.subject,
        "profile": record.profile,
    }
    if record.acm_certificate_arn:
        response["acm_certificate_arn"] = record.acm_certificate_arn
        if record.acm_target:
            response["acm_target"] = record.acm_target
        if record.acm_account_id:
            response["acm_account_id"] = record.acm_account_id
    return response


@dataclass(frozen=True)
class IssueOutcome:
    """The response, and whether it is a replay of an earlier one (same idempotency key)."""

    response: dict[str, str]
    replayed: bool


@dataclass(frozen=True)
class SignedCertificate:
    """A signed, not yet stored certificate; ``private_key`` only when the CA generated the key
    (cloudfront-origin), kept in memory for the ACM import and then dropped."""

    certificate: x509.Certificate
    profile: Profile
    private_key: GeneratedPrivateKey | None = None
    key_type: str | None = None
    #: what the certificate was built from (its record needs no parsing of it)
    parts: CertificateParts | None = None
    acm: AcmDestination | None = None  # where the CA-generated key's certificate is imported


class Issuer:
    """Signs end-entity certificates.

    Args:
        ca: the loaded issuing CA.
        store: the certificate inventory.
        policy: lifetime limits.
        acm: ACM us-east-1 of each edge target (:class:`~kmsca.acm_targets.AcmTargets`; an
            :class:`AcmImporter` alone is the CA account's own, ``local``), for profiles whose key
            the CA generates; None where the function has no ACM access (such requests are then
            refused with ``CaNotReady``).
    """

    def __init__(
        self,
        ca: IssuingCa,
        store: CertificateStore,
        policy: IssuancePolicy,
        acm: AcmTargets | AcmImporter | None = None,
    ) -> None:
        self._ca = ca
        self._store = store
        self._policy = policy
        self._acm = acm if acm is None or isinstance(acm, AcmTargets) else AcmTargets(acm)

    def issue(
        self, request: IssueRequest, now: datetime, caller: Caller | None = None, grant: Grant = UNRESTRICTED
    ) -> IssueOutcome:
        """Run the pipeline and return the response (see :func:`response_for`).

        With an ``idempotency_key``: a second request with the same key and the same body gets the
        first response back; with the same key and another body, ``IdempotencyKeyReused``.

        Args:
            request: the parsed request.
            now: the time of issuance.
            caller: the verified caller (function URL), recorded as ``requested_by``; None for a
                direct Invoke, which records the request's ``requested_by`` label.
            grant: what the caller's issuance policy allows (:func:`kmsca.caller_policy.grant_for`),
                checked before anything is signed.

        Raises:
            NotAuthorized: the request is outside ``grant`` (nothing signed or stored).
            InvalidRequest, InvalidCsr, KeyPolicyViolation, UnknownProfile, InvalidSubject,
            InvalidSubjectAlternativeName, InvalidLifetime, LifetimeExceeded, IdempotencyKeyReused,
            SerialNumberCollision, RenewalRefused: see :mod:`kmsca.errors`; nothing was signed or
            stored.
        """
        if caller is not None and request.requested_by is not None:
            raise InvalidRequest(
                "requested_by is recorded from the verified caller of a function-URL request; do not send it"
            )
        idempotency: IdempotencyRecord | None = None
        idempotency_key = request.idempotency_key
        if idempotency_key is not None:
            previous = self._previous_response(idempotency_key, request, now, caller)
            if previous is not None:
                return IssueOutcome(previous, replayed=True)
            idempotency = IdempotencyRecord(
                key_hash(idempotency_key, caller), request_hash(request), {}, now + IDEMPOTENCY_TTL
            )

        plan = plan_renewal(request, self._store, now)
        if plan is not None:
            grant.check_renew(caller, plan.predecessor, revokes=request.revoke_renewed_after_hours is not None)
        signed = self.sign(request, now, plan, grant)
        record = CertificateRecord.from_certificate(
            signed.certificate,
            ca=ISSUING,
            profile=signed.profile.name,
            issued_at=now,
            key_type=signed.key_type,
            requested_by=caller.arn if caller is not None else request.requested_by,
            predecessor=plan.renewal.predecessor if plan else None,
            acm_target=signed.acm.target if signed.acm else None,
            acm_account_id=signed.acm.account_id if signed.acm else None,
            parts=signed.parts,
        )
        imports = signed.private_key is not None and signed.acm is not None
        try:
            if imports:
                record = self._import_pending(signed, record, now)
            response = response_for(record, self._ca)
            done = None if idempotency is None else replace(idempotency, response=response)
            if imports:
                self._store.finish_import(record, done, now)
            else:
                self._store.put_certificate(record, done, now, plan.renewal if plan else None)
        except (IdempotencyKeyInUse, WriteConflict):
            # A concurrent request with the same key won the race: its certificate is the one.
            self._abandon_import(record, now, signed.acm)
            if idempotency_key is None:  # only a write with an idempotency record can lose this race
                raise
            return IssueOutcome(self._winner_response(idempotency_key, request, now, caller), replayed=True)
        except PendingImportGone:
            raise  # revoked or failed meanwhile: neither ours to finish nor to undo
        except Exception:
            if self._abandon_import(record, now, signed.acm) == "recorded":
                return IssueOutcome(response, replayed=False)  # the write was applied; its reply was lost
            raise
        return IssueOutcome(response, replayed=False)

    def sign(
        self, request: IssueRequest, now: datetime, plan: RenewalPlan | None = None, grant: Grant = UNRESTRICTED
    ) -> SignedCertificate:
        """Every check, then the one ``kms:Sign``; returns the certificate (not yet stored).

        With a renewal ``plan`` the subject and SANs are the predecessor's (checked again). The
        caller's ``grant`` is checked on the final profile, subject, SANs and lifetime, after the
        name rules and before a key is generated or anything is signed."""
        profile = select_profile(request.profile)
        lifetime_days = self._policy.default_lifetime_days if request.lifetime_days is None else request.lifetime_days
        overrides = request.subject.overrides() if request.subject else {}
        requested_sans = plan.sans if plan else request.san_entries()
        if profile.generates_key:
            if request.csr is not None:
                raise InvalidRequest(
                    f"profile {profile.name!r} takes no csr: the CA generates the key, because ACM needs it"
                )
            if self._acm is None:
                raise CaNotReady(f"profile {profile.name!r} needs ACM access, which this function does not have")
            # Every refusal comes before the key is generated and long before anything is signed.
            key_type = origin_key_type(profile, request.key_type, self._ca.issuing.certificate.public_key())
            subject = build_subject(x509.Name([]), overrides)
            sans = validate_sans(requested_sans or [])
            check_profile_names(profile, subject, sans)
            grant.check_issue(profile.name, subject, sans, lifetime_days, request.target)
            destination = self._acm.resolve(request.target)  # TargetNotFound
            self._acm.prepare(destination)  # EdgeRoleRefused, EdgeTargetUnavailable: before signing
            private_key = generate_key(profile, key_type)
            generated = private_key.public_key()
            certificate, parts = self._build(generated, subject, sans, profile, request.lifetime_days, now)
            return SignedCertificate(certificate, profile, private_key, key_type, parts, destination)
        if request.key_type is not None:
            raise InvalidRequest("key_type applies only to profiles whose key the CA generates (cloudfront-origin)")
        if request.target is not None:
            raise InvalidRequest("target applies only to profiles imported into ACM (cloudfront-origin)")
        csr = load_csr(request.csr)
        public_key = check_key_policy(csr.public_key())
        subject = build_subject(plan.subject if plan else csr.subject, overrides)
        sans = validate_sans(requested_sans if requested_sans is not None else sans_from_csr(csr))
        check_profile_names(profile, subject, sans)
        grant.check_issue(profile.name, subject, sans, lifetime_days)
        certificate, parts = self._build(public_key, subject, sans, profile, request.lifetime_days, now)
        return SignedCertificate(certificate, profile, parts=parts)

    def reissue(self, previous: CertificateRecord, now: datetime) -> SignedCertificate:
        """A fresh certificate with a fresh key like ``previous`` (same profile, subject, SANs, key
        type and lifetime), for rotation. Names are checked again against today's rules."""
        profile = select_profile(previous.profile)
        old = previous.certificate
        try:
            san_extension = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            entries: list[SanEntry] = [general_name_to_san(name) for name in san_extension]
        except x509.ExtensionNotFound:
            entries = []
        private_key = generate_key(profile, previous.key_type)
        lifetime = old.not_valid_after_utc - old.not_valid_before_utc - BACKDATE
        lifetime_days = max(1, round(lifetime / timedelta(days=1)))
        certificate, parts = self._build(
            private_key.public_key(), old.subject, validate_sans(entries), profile, lifetime_days, now
        )
        return SignedCertificate(certificate, profile, private_key, previous.key_type or profile.key_types[0], parts)

    def origin_bundle(self, signed: SignedCertificate) -> OriginBundle:
        """Certificate, key and chain (issuing + root, never the leaf) for ACM."""
        return OriginBundle(pem(signed.certificate), signed.private_key, self._ca.chain_pem)

    def _build(
        self,
        public_key: SubjectPublicKey,
        subject: x509.Name,
        sans: list[x509.GeneralName],
        profile: Profile,
        lifetime_days: int | None,
        now: datetime,
    ) -> tuple[x509.Certificate, CertificateParts]:
        """The signed certificate and what it was built from (validity in whole seconds, as the
        DER encodes it)."""
        check_profile_names(profile, subject, sans)
        not_before, not_after = check_validity(
            lifetime_days, self._policy, self._ca.issuing.certificate.not_valid_after_utc, now
        )
        issuer = self._ca.issuing.certificate
        parts = CertificateParts(
            serial_number=x509.random_serial_number(),
            subject=subject,
            issuer=issuer.subject,
            sans=tuple(sans),
            not_before=not_before.replace(microsecond=0),
            not_after=not_after.replace(microsecond=0),
            public_key=public_key,
        )
        certificate = build_end_entity_certificate(
            self._ca.private_key,
            self._ca.scheme,
            issuer,
            public_key,
            subject,
            sans,
            profile.extended_key_usages,
            parts.serial_number,
            parts.not_before,
            parts.not_after,
            self._ca.urls,
        )
        return certificate, parts

    def _import_pending(self, signed: SignedCertificate, record: CertificateRecord, now: datetime) -> CertificateRecord:
        """Record the certificate as pending, then import it into its target's ACM; returns it with
        its ARN (and the account, read from the ARN when the target is the function's own)."""
        if signed.acm is None:
            raise CaNotReady("this function has no ACM access")
        self._store.put_pending_import(record, now)
        tags = acm_tags(record.serial_number, ca_tag_value(self._ca))
        try:
            arn = signed.acm.importer.import_new(self.origin_bundle(signed), tags)
        except Exception as exc:
            if not import_may_have_happened(exc):  # ACM refused: nothing was imported
                with suppress(AwsCallFailed):  # else the rotation run's repair fails it
                    self._store.fail_pending_import(record, now)
            raise
        return replace(record, acm_certificate_arn=arn, acm_account_id=record.acm_account_id or account_of(arn))

    def _abandon_import(self, record: CertificateRecord, now: datetime, acm: AcmDestination | None) -> str:
        """After a failed final write: if the certificate is still pending, revoke it and remove its
        ACM import ("abandoned"); if it was recorded after all ("recorded": the reply was lost)
        leave it. "unknown" when that cannot be told now (the rotation run's repair decides)."""
        if record.acm_certificate_arn is None or acm is None:
            return "abandoned"
        try:
            if not self._store.fail_pending_import(record, now):
                return "recorded"
            acm.importer.delete(record.acm_certificate_arn)
        except AwsCallFailed:
            return "unknown"
        return "abandoned"

    def _winner_response(
        self, idempotency_key: str, request: IssueRequest, now: datetime, caller: Caller | None
    ) -> dict[str, str]:
        """The response stored by the request that won the race for ``idempotency_key``."""
        for pause in (0.0, *RACE_BACKOFF):
            time.sleep(pause)
            previous = self._previous_response(idempotency_key, request, now, caller)
            if previous is not None:
                return previous
        raise IdempotencyKeyInProgress(
            "another request with this idempotency_key is still being processed; "
            "send the same request again in a few seconds to get its certificate"
        )

    def _previous_response(
        self, idempotency_key: str, request: IssueRequest, now: datetime, caller: Caller | None
    ) -> dict[str, str] | None:
        previous = self._store.get_idempotency(key_hash(idempotency_key, caller))
        if previous is None or previous.expires_at <= now:
            return None
        if previous.request_hash != request_hash(request):
            raise IdempotencyKeyReused(
                "this idempotency_key was used in the last 24 hours for a different request; use a new key"
            )
        return previous.response


def ca_tag_value(ca: IssuingCa) -> str:
    """The issuing CA's commonName, in the characters ACM tag values allow."""
    names = ca.issuing.certificate.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    text = str(names[0].value) if names else ca.issuing.serial_number
    return "".join(c if c.isalnum() or c in " _.:/=+-@" else "-" for c in text)[:256]
