"""ACM (us-east-1) import of CloudFront origin client certificates.

CloudFront presents an origin client certificate only from ACM in us-east-1, whatever region
the CA runs in (CloudFront Developer Guide, origin mTLS). The key is RSA 2048 or ECDSA P-256,
unencrypted PEM; the chain is the issuing then the root certificate, never the leaf; a renewal is
re-imported into the same ARN so the distribution keeps working. Tags are set on first import
only (``ImportCertificate`` refuses tags with ``CertificateArn``; ACM API reference).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient

ACM_REGION = "us-east-1"
MANAGED_BY = "kmsca"


class AcmCertificateGone(Exception):
    """The ARN does not exist any more (deleted outside this CA)."""


@dataclass(frozen=True)
class OriginBundle:
    """What ACM imports: the leaf (PEM), its private key, the chain (issuing + root PEM).

    ``private_key`` is the in-memory key object; it is serialised (unencrypted, traditional
    PKCS#1 / SEC1 PEM) only into the ACM request and is never stored or returned.
    """

    certificate_pem: str
    private_key: Any
    chain_pem: str

    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )


class AcmImporter:
    """Imports into ACM. ``acm`` must be a client for :data:`ACM_REGION`.

    Raises (every method): ``botocore.exceptions.ClientError`` for ACM refusals other than a
    missing ARN.
    """

    def __init__(self, acm: ACMClient) -> None:
        if acm.meta.region_name != ACM_REGION:
            raise ValueError(f"CloudFront reads certificates from ACM in {ACM_REGION}, not {acm.meta.region_name}")
        self._acm = acm

    def import_new(self, bundle: OriginBundle, tags: Mapping[str, str]) -> str:
        """First import (one ``acm:ImportCertificate`` with tags). Returns the new ARN."""
        response = self._acm.import_certificate(
            Certificate=bundle.certificate_pem.encode("ascii"),
            PrivateKey=bundle.private_key_pem(),
            CertificateChain=bundle.chain_pem.encode("ascii"),
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
        return response["CertificateArn"]

    def reimport(self, arn: str, bundle: OriginBundle) -> None:
        """Replace the certificate behind ``arn`` (no tags: ACM refuses them on re-import).

        Raises:
            AcmCertificateGone: ACM has no certificate with this ARN.
        """
        try:
            self._acm.import_certificate(
                CertificateArn=arn,
                Certificate=bundle.certificate_pem.encode("ascii"),
                PrivateKey=bundle.private_key_pem(),
                CertificateChain=bundle.chain_pem.encode("ascii"),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise AcmCertificateGone(arn) from exc
            raise

    def tag(self, arn: str, tags: Mapping[str, str]) -> None:
        """Update tags of an imported certificate (``acm:AddTagsToCertificate``)."""
        self._acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def delete(self, arn: str) -> None:
        """Delete a certificate this CA just imported but could not record (compensation)."""
        self._acm.delete_certificate(CertificateArn=arn)


def acm_tags(serial_number: str, ca_name: str) -> dict[str, str]:
    """Tags of an imported certificate: serial number, CA name, managed-by."""
    return {"kmsca:serial-number": serial_number, "kmsca:ca": ca_name, "managed-by": MANAGED_BY}
