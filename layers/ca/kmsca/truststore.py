"""CloudFront viewer-mTLS trust stores: readiness of the CA bundle, and updating a trust store.

CloudFront reads a trust store's CA bundle from S3 once, at ``CreateTrustStore`` /
``UpdateTrustStore``; it is not synced. Limits (CloudFront Developer Guide, viewer mTLS): PEM
bundle of at most 64 KB and 25 certificates; keys RSA 2048/3072/4096 or ECDSA P-256/P-384
(no P-521, no Ed25519, no ML-DSA); signatures with SHA-256/384/512 (RSA, ECDSA, RSASSA-PSS).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID

from .aws_errors import translating
from .errors import TrustStoreOcspUnavailable

MAX_BUNDLE_BYTES = 64 * 1024
MAX_CERTIFICATES = 25
RSA_SIZES = (2048, 3072, 4096)
EC_CURVES = ("secp256r1", "secp384r1")
HASHES = ("sha256", "sha384", "sha512")


def trust_store_problems(bundle: bytes) -> list[str]:
    """Why CloudFront would refuse this CA bundle as a trust store (empty list: it is ready).

    Args:
        bundle: the PEM bundle as published (``ca-bundle.pem``).
    """
    problems = []
    if len(bundle) > MAX_BUNDLE_BYTES:
        problems.append(f"the bundle has {len(bundle)} bytes; CloudFront accepts at most {MAX_BUNDLE_BYTES}")
    certificates = x509.load_pem_x509_certificates(bundle)
    if len(certificates) > MAX_CERTIFICATES:
        problems.append(
            f"the bundle has {len(certificates)} certificates; CloudFront accepts at most {MAX_CERTIFICATES}"
        )
    for certificate in certificates:
        name = certificate.subject.rfc4514_string()
        key = certificate.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size not in RSA_SIZES:
                problems.append(f"{name}: RSA-{key.key_size} keys are not accepted by CloudFront")
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in EC_CURVES:
                problems.append(f"{name}: EC curve {key.curve.name} is not accepted by CloudFront (P-256, P-384 only)")
        else:
            problems.append(f"{name}: {type(key).__name__.lstrip('_')} keys are not accepted by CloudFront")
        try:
            hash_algorithm = certificate.signature_hash_algorithm  # None for ML-DSA
        except UnsupportedAlgorithm:
            hash_algorithm = None
        if hash_algorithm is None or hash_algorithm.name not in HASHES:
            problems.append(f"{name}: its signature algorithm is not accepted by CloudFront")
    return problems


def ocsp_url_problems(chain: Sequence[x509.Certificate]) -> list[str]:
    """Why CloudFront's OCSP checking (``UseClientCertificateOCSPEndpoint``) would refuse chains
    through these CA certificates (empty list: every non-root one has an AIA OCSP URL).

    CloudFront queries the OCSP URL of every certificate of the client chain except the root, and
    refuses a chain with a certificate that has none.

    Args:
        chain: the CA certificates clients chain to (issuing CAs and the root; the root is skipped).
    """
    problems = []
    for certificate in chain:
        if certificate.subject == certificate.issuer:
            continue  # the root: CloudFront does not ask about it
        try:
            aia = list(certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value)
        except x509.ExtensionNotFound:
            aia = []
        if not any(d.access_method == AuthorityInformationAccessOID.OCSP for d in aia):
            problems.append(f"{certificate.subject.rfc4514_string()} has no AIA OCSP URL")
    return problems


def require_ocsp_urls(chain: Sequence[x509.Certificate]) -> None:
    """Refuse OCSP checking for a trust store when the chain lacks the OCSP URLs.

    Raises:
        TrustStoreOcspUnavailable: naming the certificates and the parameters to change.
    """
    problems = ocsp_url_problems(chain)
    if problems:
        raise TrustStoreOcspUnavailable(
            "TrustStoreOcsp asks CloudFront to check client certificates by OCSP, but "
            + "; ".join(problems)
            + ": set EnableOcsp=true (the issuing CA certificate is re-issued with the URL) or TrustStoreOcsp=false"
        )


def update_trust_store(
    cloudfront: Any, trust_store_id: str, bucket: str, key: str, region: str, *, use_ocsp: bool | None = None
) -> str:
    """Point a trust store at the CA bundle again (``GetTrustStore`` for the ETag, then
    ``UpdateTrustStore``), so CloudFront re-reads it. Returns the new ETag.

    Args:
        use_ocsp: ``UseClientCertificateOCSPEndpoint`` (a top-level boolean of UpdateTrustStore);
            None leaves the trust store's setting as it is.

    Raises:
        AwsCallFailed: CloudFront refused (unknown id, invalid bundle, no permission) or failed.
    """
    with translating("cloudfront", "GetTrustStore"):
        etag = cloudfront.get_trust_store(Identifier=trust_store_id)["ETag"]
    extra = {} if use_ocsp is None else {"UseClientCertificateOCSPEndpoint": use_ocsp}
    location = {"Bucket": bucket, "Key": key, "Region": region}
    with translating("cloudfront", "UpdateTrustStore"):
        response = cloudfront.update_trust_store(
            Id=trust_store_id,
            IfMatch=etag,
            CaCertificatesBundleSource={"CaCertificatesBundleS3Location": location},
            **extra,
        )
    return str(response.get("ETag", ""))
