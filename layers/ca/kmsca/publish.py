"""Publication of public artefacts to S3: CA certificates (DER and PEM) and the CA bundle.

Object keys in the public bucket (relying parties and CloudFront trust stores read them):

- ``root.crt``, ``issuing.crt``: DER, ``application/pkix-cert`` (RFC 2585 / RFC 5280 4.2.2.1)
- ``root.pem``, ``issuing.pem``: PEM, ``application/x-pem-file``
- ``ca-bundle.pem``: root then issuing PEM, no blank lines, ``text/plain`` (CloudFront trust store)

Writes are idempotent: an object whose stored SHA-256 (user metadata) equals the new body's is
left alone, so re-running publication changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .certificates import ISSUING, ROOT

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


def publish(s3: S3Client, bucket: str, artefact: Artefact) -> bool:
    """Put ``artefact`` unless the same bytes are already there (HeadObject, then PutObject).

    Returns:
        True when the object was written, False when it was already up to date.
    """
    try:
        head = s3.head_object(Bucket=bucket, Key=artefact.key)
        if head.get("Metadata", {}).get("sha256") == artefact.sha256:
            return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(
        Bucket=bucket,
        Key=artefact.key,
        Body=artefact.body,
        ContentType=artefact.content_type,
        CacheControl="max-age=300",
        Metadata={"sha256": artefact.sha256},
    )
    return True
