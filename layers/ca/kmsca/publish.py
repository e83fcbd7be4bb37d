"""Publication of public artefacts to S3: CA certificates (DER and PEM) and the CA bundle.

Object keys in the public bucket (relying parties and CloudFront trust stores read them):

- ``root.crt``, ``issuing.crt``: DER, ``application/pkix-cert`` (RFC 2585 / RFC 5280 4.2.2.1)
- ``root.pem``, ``issuing.pem``: PEM, ``application/x-pem-file``
- ``ca-bundle.pem``: root then issuing PEM, no blank lines, ``text/plain`` (CloudFront trust store)

Writes are idempotent: an object whose stored SHA-256 (user metadata) equals the new body's is
left alone, so re-running publication changes nothing. CRLs (:mod:`kmsca.crl`) go through the same
:func:`publish`, which then also refuses to replace a higher CRL number.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .aws_errors import translating
from .certificates import ISSUING, ROOT
from .errors import AwsCallFailed, PublicationConflict

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CA_BUNDLE_KEY = "ca-bundle.pem"


@dataclass(frozen=True)
class Artefact:
    """One object to publish: ``key`` in the bucket, ``body`` bytes, ``content_type``."""

    key: str
    body: bytes
    content_type: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def ca_bundle(certificates: list[x509.Certificate]) -> bytes:
    """PEM certificates concatenated with no blank lines (CloudFront trust-store format)."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def ca_artefacts(root: x509.Certificate, issuing: x509.Certificate) -> list[Artefact]:
    """Every public artefact of the CA hierarchy."""
    artefacts = []
    for name, certificate in ((ROOT, root), (ISSUING, issuing)):
        artefacts.append(
            Artefact(f"{name}.crt", certificate.public_bytes(serialization.Encoding.DER), "application/pkix-cert")
        )
        artefacts.append(
            Artefact(f"{name}.pem", certificate.public_bytes(serialization.Encoding.PEM), "application/x-pem-file")
        )
    artefacts.append(Artefact(CA_BUNDLE_KEY, ca_bundle([root, issuing]), "text/plain"))
    return artefacts


#: Conditional writes of one artefact before giving up. A refused write means another writer
#: succeeded in between; for a CRL each such writer held a lower CRL number (a writer that finds the
#: same or a higher number stops), so a publication is refused at most once per concurrent
#: publication. 25 exceeds the publications that can run at once (the stream's one batch per shard,
#: the schedule, the bootstrap; tests/handlers/test_revocation.py runs 20 at once).
CONDITIONAL_WRITE_ATTEMPTS = 25
#: HeadObject's codes for a missing object (S3 API Reference, HeadObject: 404 with no body, which
#: botocore reports as code ``404``; ``NoSuchKey``/``NotFound`` where a body names it).
_ABSENT = ("404", "NoSuchKey", "NotFound")
#: PutObject's codes for a failed ``If-Match``/``If-None-Match`` (S3 API Reference, PutObject:
#: 412 Precondition Failed; 409 ConditionalRequestConflict for a concurrent conditional write).
_CONDITION_FAILED = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


def publish(s3: S3Client, bucket: str, artefact: Artefact, crl_number: int | None = None) -> bool:
    """Put ``artefact`` unless the object already holds it (HeadObject, then a conditional PutObject).

    "Already holds it": the same bytes (SHA-256 in the object's metadata), or, for a CRL
    (``crl_number`` given), the same or a higher CRL number, so a slow publication never rolls a
    CRL back. The write is conditional on what was read (``If-Match`` on the ETag, or
    ``If-None-Match: *`` for a new object); a concurrent writer makes it re-read and try again, at
    most :data:`CONDITIONAL_WRITE_ATTEMPTS` times.

    Returns:
        True when the object was written, False when it was already up to date.

    Raises:
        AwsCallFailed: S3 refused or failed (the botocore exception is its ``__cause__``); a 403 on
            HeadObject is a denial, never taken for "absent". Nothing was overwritten.
        PublicationConflict: the object changed under every attempt (nothing overwritten).
    """
    metadata = {"sha256": artefact.sha256}
    if crl_number is not None:
        metadata["crl-number"] = str(crl_number)
    for _ in range(CONDITIONAL_WRITE_ATTEMPTS):
        condition: dict[str, str] = {"IfNoneMatch": "*"}
        try:
            with translating("s3", "HeadObject"):
                head = s3.head_object(Bucket=bucket, Key=artefact.key)
        except AwsCallFailed as exc:
            if exc.error_code not in _ABSENT:
                raise
        else:
            current = head.get("Metadata", {})
            if current.get("sha256") == artefact.sha256:
                return False
            if crl_number is not None and int(current.get("crl-number", "0")) >= crl_number:
                return False
            condition = {"IfMatch": head["ETag"]}
        try:
            with translating("s3", "PutObject"):
                s3.put_object(
                    Bucket=bucket,
                    Key=artefact.key,
                    Body=artefact.body,
                    ContentType=artefact.content_type,
                    CacheControl="max-age=60" if crl_number is not None else "max-age=300",
                    Metadata=metadata,
                    **condition,  # type: ignore[arg-type]
                )
            return True
        except AwsCallFailed as exc:
            if exc.error_code not in _CONDITION_FAILED:
                raise
            time.sleep(random.uniform(0.01, 0.1))  # noqa: S311 - jitter, not security
    raise PublicationConflict(
        f"{artefact.key}: gave up after {CONDITIONAL_WRITE_ATTEMPTS} conflicting writes",
        key=artefact.key,
        attempts=CONDITIONAL_WRITE_ATTEMPTS,
    )


def archive(s3: S3Client, bucket: str, artefact: Artefact) -> None:
    """Put ``artefact`` unconditionally (the internal bucket's CRL archive, whose keys carry the
    CRL number, so each is written by one publication only).

    Raises:
        AwsCallFailed: S3 refused or failed.
    """
    with translating("s3", "PutObject"):
        s3.put_object(Bucket=bucket, Key=artefact.key, Body=artefact.body, ContentType=artefact.content_type)
