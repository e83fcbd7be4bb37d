"""The published CA bundle (``ca-bundle.pem``): read from S3, checked against a chain, or built from one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from .errors import CliError, Refused

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


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
