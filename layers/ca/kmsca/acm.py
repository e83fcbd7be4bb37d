"""ACM (us-east-1) import of CloudFront origin client certificates.

CloudFront presents an origin client certificate only from ACM in us-east-1, whatever region
the CA runs in (CloudFront Developer Guide, origin mTLS). The key is RSA 2048 or ECDSA P-256,
unencrypted PEM; the chain is the issuing then the root certificate, never the leaf; a renewal is
re-imported into the same ARN so the distribution keeps working. Tags are set on first import
only (``ImportCertificate`` refuses tags with ``CertificateArn``; ACM API reference).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import serialization

from .aws_errors import aws_error_code, http_status_code, translated
from .errors import AcmCertificateGone, AwsCallFailed
from .request_values import ACM_REGION
from .serial import canonical_serial

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient

#: ACM key algorithms of CloudFront origin certificates (ListCertificates lists RSA_2048 only by default).
ORIGIN_KEY_ALGORITHMS = ("EC_prime256v1", "RSA_2048")
MANAGED_BY = "kmsca"


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


@translated("acm")
class AcmImporter:
    """Imports into ACM. ``acm`` must be a client for :data:`ACM_REGION`.

    Raises (every public method): :class:`~kmsca.errors.AwsCallFailed` for ACM refusals other than a
    missing ARN, and for failures without an answer (timeouts, connection errors).
    """

    def __init__(self, acm: ACMClient | Callable[[], ACMClient], *, cache_client: bool = True) -> None:
        # A factory defers the client to the first import: only cloudfront-origin requests need ACM,
        # and a client costs its service model and endpoint rules at cold start. ``cache_client``
        # False asks the factory every time (an edge target's client, renewed with its credentials).
        self._client: ACMClient | None = None
        self._cache = cache_client
        if hasattr(acm, "meta"):
            client = self._checked(acm)  # type: ignore[arg-type]
            self._client, self._factory = client, lambda: client
        else:
            self._factory = acm  # type: ignore[assignment]

    @staticmethod
    def _checked(acm: ACMClient) -> ACMClient:
        if acm.meta.region_name != ACM_REGION:
            raise ValueError(f"CloudFront reads certificates from ACM in {ACM_REGION}, not {acm.meta.region_name}")
        return acm

    @property
    def _acm(self) -> ACMClient:
        if not self._cache:
            return self._checked(self._factory())
        if self._client is None:
            self._client = self._checked(self._factory())
        return self._client

    def client(self) -> ACMClient:
        """The ACM client (made now if it was deferred; errors of the factory propagate)."""
        return self._acm

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
            if aws_error_code(exc) == "ResourceNotFoundException":
                raise AcmCertificateGone(arn) from exc
            raise

    def tag(self, arn: str, tags: Mapping[str, str]) -> None:
        """Update tags of an imported certificate (``acm:AddTagsToCertificate``)."""
        self._acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def served_serial(self, arn: str) -> str:
        """Serial number (canonical hex) of the certificate ACM serves behind ``arn``
        (``acm:DescribeCertificate``).

        Raises:
            AcmCertificateGone: ACM has no certificate with this ARN.
        """
        try:
            details = self._acm.describe_certificate(CertificateArn=arn)["Certificate"]
        except ClientError as exc:
            if aws_error_code(exc) == "ResourceNotFoundException":
                raise AcmCertificateGone(arn) from exc
            raise
        return canonical_serial(details["Serial"])

    def find_import(self, serial_number: str, not_after: datetime) -> str | None:
        """The ARN of the imported certificate with this serial number, or None: for a first import
        whose ARN was never recorded. ``acm:ListCertificates`` (origin key types), narrowed to imported
        certificates with this notAfter, then ``acm:DescribeCertificate`` of each candidate."""
        paginator = self._acm.get_paginator("list_certificates")
        pages = paginator.paginate(Includes={"keyTypes": list(ORIGIN_KEY_ALGORITHMS)})
        for page in pages:
            for summary in page.get("CertificateSummaryList", []):
                if summary.get("Type", "IMPORTED") != "IMPORTED":
                    continue
                listed_not_after = summary.get("NotAfter")
                if listed_not_after is not None and abs((listed_not_after - not_after).total_seconds()) > 1:
                    continue
                arn = summary["CertificateArn"]
                try:
                    if self.served_serial(arn) == serial_number:
                        return arn
                except (AcmCertificateGone, AwsCallFailed):
                    continue  # deleted meanwhile, or not ours (describe is limited to managed-by=kmsca)
        return None

    def delete(self, arn: str) -> None:
        """Delete a certificate this CA just imported but could not record (compensation)."""
        self._acm.delete_certificate(CertificateArn=arn)


def import_may_have_happened(exc: BaseException) -> bool:
    """After a failed ImportCertificate (``exc``: what :meth:`AcmImporter.import_new` raised): could
    ACM have imported it anyway? Yes for a lost reply (timeout, connection error) or a server error
    (5xx); no for a refusal (an answer of 4xx, or without a status: validation, limits) or an error
    of the CA's own."""
    if isinstance(exc, AwsCallFailed):
        return not exc.answered or (exc.http_status_code or 400) >= 500
    if isinstance(exc, ClientError):
        return (http_status_code(exc) or 400) >= 500
    return isinstance(exc, BotoCoreError)


def acm_tags(serial_number: str, ca_name: str) -> dict[str, str]:
    """Tags of an imported certificate: serial number, CA name, managed-by."""
    return {"kmsca:serial-number": serial_number, "kmsca:ca": ca_name, "managed-by": MANAGED_BY}
