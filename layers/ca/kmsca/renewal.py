"""Renewal: a new certificate for the same subject, SANs and profile as an issued one.

A renewal is an issue request with ``renews`` = the predecessor's serial number. It passes every
check of the issuance pipeline (key policy, names re-checked against today's rules, lifetime), and
is refused with :class:`~kmsca.errors.RenewalRefused` when the predecessor cannot be renewed. The
new record carries ``predecessor``; ``RENEWAL#<predecessor>`` carries ``successor`` (written in the
same transaction, only once per predecessor) and, when asked, the time the predecessor is to be
revoked as ``superseded`` by the daily expiry job's sweep (:mod:`kmsca.expiry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from .errors import CaError, InvalidRequest, RenewalRefused
from .models import IssueRequest
from .names import SanEntry, general_name_to_san
from .records import STATUS_ISSUED, CertificateRecord, iso
from .serial import canonical_serial
from .store import Certificates, Renewal

#: Profiles whose certificates the CA renews by itself (ACM rotation into the same ARN).
SELF_RENEWING = ("cloudfront-origin",)


@dataclass(frozen=True)
class RenewalPlan:
    """What a renewal keeps from its predecessor, and the link to store.

    Attributes:
        predecessor: the stored certificate renewed.
        subject: its subject (re-encoded and re-checked by the pipeline).
        sans: its SANs as requested entries (re-validated by the pipeline).
        renewal: the link the store writes with the new certificate.
    """

    predecessor: CertificateRecord
    subject: x509.Name
    sans: list[SanEntry]
    renewal: Renewal


def plan_renewal(request: IssueRequest, store: Certificates, now: datetime) -> RenewalPlan | None:
    """Check a request's ``renews`` against the inventory (one GetItem); None when it renews nothing.

    Raises:
        InvalidRequest: ``subject`` or ``sans`` given with ``renews``, ``revoke_renewed_after_hours``
            without ``renews``, or a malformed serial number.
        RenewalRefused: the predecessor is unknown, revoked, expired, of another profile than the
            request's, or of a profile the CA renews itself (``cloudfront-origin``).
    """
    if request.renews is None:
        if request.revoke_renewed_after_hours is not None:
            raise InvalidRequest("revoke_renewed_after_hours applies only to a renewal (renews)")
        return None
    if request.subject is not None or request.sans is not None:
        raise InvalidRequest(
            "a renewal keeps the renewed certificate's subject and SANs: send neither subject nor sans"
        )
    try:
        serial_number = canonical_serial(request.renews)
    except CaError as exc:
        raise InvalidRequest(f"renews: {exc.message}", **exc.details) from None
    predecessor = store.get_certificate(serial_number)
    if predecessor is None:
        raise RenewalRefused(
            f"no certificate with serial number {serial_number} was issued by this CA", serial_number=serial_number
        )
    if predecessor.profile in SELF_RENEWING:
        raise RenewalRefused(
            f"{predecessor.profile} certificates are renewed by the ACM rotation job into the same ARN; "
            "revoke the current one to have it rotated at the next run",
            serial_number=serial_number,
            profile=predecessor.profile,
        )
    if predecessor.profile != request.profile:
        raise RenewalRefused(
            f"certificate {serial_number} has profile {predecessor.profile!r}, the request {request.profile!r}",
            serial_number=serial_number,
            profile=predecessor.profile,
            requested_profile=request.profile,
        )
    if predecessor.status != STATUS_ISSUED:
        raise RenewalRefused(
            f"certificate {serial_number} is {predecessor.status}; request a new certificate",
            serial_number=serial_number,
            status=predecessor.status,
        )
    if predecessor.not_after <= now:
        raise RenewalRefused(
            f"certificate {serial_number} expired at {iso(predecessor.not_after)}; request a new one",
            serial_number=serial_number,
            not_after=iso(predecessor.not_after),
        )
    hours = request.revoke_renewed_after_hours
    revoke_at = None if hours is None else now + timedelta(hours=hours)
    certificate = predecessor.certificate
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [general_name_to_san(name) for name in extension]
    except x509.ExtensionNotFound:
        sans = []
    return RenewalPlan(predecessor, certificate.subject, sans, Renewal(serial_number, revoke_at))
