"""CRL building and publication (RFC 5280 section 5).

One publication of one CA's CRL:

1. reserve the next CRL number (atomic DynamoDB counter; never reused, strictly increasing);
2. query the CA's revoked certificates from the sparse ``RevokedByCa`` index (never a Scan), plus
   the revocations the triggering stream records carry (the index is eventually consistent);
3. build the CRL with cryptography: issuer = the CA certificate's subject (same DER), thisUpdate,
   nextUpdate = thisUpdate + validity, CRL number, AKI = the CA's SKI, one entry per revoked
   certificate with its revocationDate, a reasonCode unless the reason is ``unspecified``
   (RFC 5280 5.3.1) and an invalidityDate when known (5.3.2);
4. one ``kms:Sign`` (a digest, so any size);
5. archive it in the internal bucket (``crl/<ca>/<number>.crl``), then write ``<ca>.crl`` (DER,
   ``application/pkix-crl``) and ``<ca>.crl.pem`` to the public bucket with S3 conditional writes
   that only ever replace a lower CRL number, so racing publications can never roll a CRL back.

A failure at any step leaves the previous CRL in place; nothing partial or unsigned is written.

Entries are kept until one full validity period after the certificate's notAfter, so each
appears on at least one regularly scheduled CRL issued after it expired (RFC 5280 3.3), then
dropped to keep the CRL small.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .ca import CaSigner
from .certificates import sign
from .publish import Artefact, archive, publish
from .records import REASONS, RevokedEntry, UnreadableRecord
from .store import CrlNumbers, Revocations

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CRL_CONTENT_TYPE = "application/pkix-crl"


def revoked_certificate(entry: RevokedEntry) -> x509.RevokedCertificate:
    """One CRL entry (RFC 5280 5.1.2.6, 5.3.1, 5.3.2)."""
    builder = x509.RevokedCertificateBuilder().serial_number(int(entry.serial_number, 16))
    builder = builder.revocation_date(entry.revoked_at)
    if entry.reason != "unspecified":
        builder = builder.add_extension(x509.CRLReason(REASONS[entry.reason]), critical=False)
    if entry.invalidity_date is not None:
        builder = builder.add_extension(x509.InvalidityDate(entry.invalidity_date), critical=False)
    return builder.build()


def build_crl(
    signer: CaSigner,
    entries: Iterable[RevokedEntry],
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    """Build and sign (one ``kms:Sign``) a CRL. The entry list is passed to the builder whole,
    so building is linear in the number of entries."""
    certificate = signer.record.certificate
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=certificate.subject,
        last_update=this_update,
        next_update=next_update,
        revoked_certificates=[revoked_certificate(entry) for entry in entries],
    )
    builder = builder.add_extension(x509.CRLNumber(crl_number), critical=False)
    builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    return sign(builder, signer.private_key, signer.scheme)


def merge_revocations(
    indexed: Iterable[RevokedEntry], carried: Iterable[RevokedEntry], not_after_from: datetime
) -> list[RevokedEntry]:
    """The index's entries plus the carried ones (those whose notAfter is at or after
    ``not_after_from``, like the Query's), one per serial number; a carried entry replaces an
    indexed one of the same serial (the index may be stale)."""
    merged = {entry.serial_number: entry for entry in indexed}
    merged.update({entry.serial_number: entry for entry in carried if entry.not_after >= not_after_from})
    return list(merged.values())


class CrlStore(Revocations, CrlNumbers, Protocol):
    """What CRL publication reads and writes: the revoked certificates of a CA and its CRL numbers."""


@dataclass(frozen=True)
class CrlPublication:
    """What one publication did.

    Attributes:
        ca: CA name.
        crl_number: the number of the CRL built.
        entries: number of revoked certificates listed.
        this_update, next_update: the CRL's validity.
        der_size: bytes of the DER CRL.
        published: False when a newer CRL had been published meanwhile (this one was archived only).
        crl: the CRL.
        unreadable: records of the index that could not be read whole (skipped, or listed without
            their invalidity date); they did not stop this publication.
    """

    ca: str
    crl_number: int
    entries: int
    this_update: datetime
    next_update: datetime
    der_size: int
    published: bool
    crl: x509.CertificateRevocationList
    unreadable: tuple[UnreadableRecord, ...] = ()


class CrlPublisher:
    """Builds and publishes CRLs.

    Args:
        store: inventory (CRL numbers, revoked certificates).
        s3: S3 client.
        public_bucket: bucket for ``<ca>.crl`` and ``<ca>.crl.pem``.
        internal_bucket: bucket for the archive of every CRL (``crl/<ca>/<number>.crl``).
        validity: nextUpdate - thisUpdate.
    """

    def __init__(
        self, store: CrlStore, s3: S3Client, public_bucket: str, internal_bucket: str, validity: timedelta
    ) -> None:
        self._store = store
        self._s3 = s3
        self._public_bucket = public_bucket
        self._internal_bucket = internal_bucket
        self._validity = validity

    def publish(self, signer: CaSigner, now: datetime, carried: Iterable[RevokedEntry] = ()) -> CrlPublication:
        """Reserve a number, query, build, sign, archive and publish one CA's CRL.

        Args:
            carried: revocations of this CA that the triggering event carries (the ``NewImage`` of
                the stream records). The ``RevokedByCa`` index is updated asynchronously, so the
                Query may not show them yet; they are merged by serial number (the carried entry
                wins), so the CRL published for a revocation always lists it.

        Raises:
            AwsCallFailed: DynamoDB, KMS or S3 failed (the adapters' translation): the previous
                CRL stays in place.
            PublicationConflict: the CRL object kept changing under every conditional write
                (:func:`kmsca.publish.publish`); the previous CRL stays in place.
        """
        ca = signer.record.name
        crl_number = self._store.next_crl_number(ca)
        this_update = now.replace(microsecond=0)
        problems: list[UnreadableRecord] = []
        entries = merge_revocations(
            self._store.list_revoked(ca, this_update - self._validity, problems), carried, this_update - self._validity
        )
        crl = build_crl(signer, entries, crl_number, this_update, this_update + self._validity)
        der = crl.public_bytes(serialization.Encoding.DER)
        archive(self._s3, self._internal_bucket, Artefact(f"crl/{ca}/{crl_number:010d}.crl", der, CRL_CONTENT_TYPE))
        published = publish(self._s3, self._public_bucket, Artefact(f"{ca}.crl", der, CRL_CONTENT_TYPE), crl_number)
        pem = crl.public_bytes(serialization.Encoding.PEM)
        published_pem = publish(
            self._s3, self._public_bucket, Artefact(f"{ca}.crl.pem", pem, "application/x-pem-file"), crl_number
        )
        return CrlPublication(
            ca=ca,
            crl_number=crl_number,
            entries=len(entries),
            this_update=this_update,
            next_update=this_update + self._validity,
            der_size=len(der),
            published=published or published_pem,
            crl=crl,
            unreadable=tuple(problems),
        )
