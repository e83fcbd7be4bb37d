"""Certificate profiles and the subject-key policy.

A profile fixes what a certificate may be used for (EKU, RFC 5280 4.2.1.12) and which names
it needs. The key policy fixes which subject public keys the CA certifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from .errors import InvalidSubjectAlternativeName, KeyPolicyViolation, UnknownProfile

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
MIN_RSA_EXPONENT = 65537
ALLOWED_CURVES = ("secp256r1", "secp384r1", "secp521r1")
_MLDSA_KEYS = (mldsa.MLDSA44PublicKey, mldsa.MLDSA65PublicKey, mldsa.MLDSA87PublicKey)

SubjectPublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | mldsa.MLDSA44PublicKey


@dataclass(frozen=True)
class Profile:
    """A certificate profile.

    Attributes:
        name: the request's ``profile`` value.
        extended_key_usages: EKU OIDs the certificate carries.
        requires_san: refuse a request without at least one SAN.
        key_types: for a profile whose key the CA generates (no CSR), the key types it may
            generate, the first being the default; empty for CSR profiles.
    """

    name: str
    extended_key_usages: tuple[ObjectIdentifier, ...]
    requires_san: bool
    key_types: tuple[str, ...] = ()

    @property
    def generates_key(self) -> bool:
        return bool(self.key_types)


CLOUDFRONT_ORIGIN = "cloudfront-origin"
PROFILES: dict[str, Profile] = {
    "client": Profile("client", (ExtendedKeyUsageOID.CLIENT_AUTH,), requires_san=False),
    "server": Profile("server", (ExtendedKeyUsageOID.SERVER_AUTH,), requires_san=True),
    # CloudFront origin mTLS: ACM (us-east-1) needs the private key, and accepts RSA 2048 or P-256 only.
    CLOUDFRONT_ORIGIN: Profile(
        CLOUDFRONT_ORIGIN, (ExtendedKeyUsageOID.CLIENT_AUTH,), requires_san=False, key_types=("ec-p256", "rsa-2048")
    ),
}


def select_profile(name: str) -> Profile:
    """The profile called ``name``.

    Raises:
        UnknownProfile: no such profile.
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfile(
            f"profile {name[:64]!r} is not one of {', '.join(PROFILES)}"
        ) from None


def check_profile_names(profile: Profile, subject: x509.Name, sans: Sequence[x509.GeneralName]) -> None:
    """The names a profile needs: a SAN for ``server``; a subject or a SAN for every certificate.

    Raises:
        InvalidSubjectAlternativeName: the profile needs a SAN and there is none, or the
            certificate would have neither subject nor SAN (RFC 5280 4.1.2.6).
    """
    if profile.requires_san and not sans:
        raise InvalidSubjectAlternativeName(
            f"profile {profile.name!r} needs at least one subject alternative name (for example a DNS name)"
        )
    if not sans and not list(subject):
        raise InvalidSubjectAlternativeName("a certificate needs a subject or at least one subject alternative name")


def check_key_policy(public_key: object) -> SubjectPublicKey:
    """Accept RSA of 2048 to 8192 bits with exponent >= 65537, EC P-256/P-384/P-521, ML-DSA-44/65/87.

    Returns:
        The key, typed.

    Raises:
        KeyPolicyViolation: any other key type, curve (e.g. secp256k1), size or exponent.
    """
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        if not MIN_RSA_BITS <= public_key.key_size <= MAX_RSA_BITS:
            raise KeyPolicyViolation(
                f"RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, this one has {public_key.key_size}"
            )
        if numbers.e < MIN_RSA_EXPONENT or numbers.e % 2 == 0:
            raise KeyPolicyViolation(f"RSA public exponent must be odd and at least {MIN_RSA_EXPONENT}")
        return public_key
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ALLOWED_CURVES:
            raise KeyPolicyViolation(
                f"EC curve {public_key.curve.name} is not accepted; use P-256, P-384 or P-521"
            )
        return public_key
    if isinstance(public_key, _MLDSA_KEYS):
        return public_key  # type: ignore[return-value]
    raise KeyPolicyViolation(
        f"{type(public_key).__name__.removeprefix('_')} keys are not accepted; "
        "use RSA (2048 bits or more), EC P-256/P-384/P-521 or ML-DSA"
    )


def generate_key(profile: Profile, key_type: str | None) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """Generate the subject key for a profile whose key the CA makes (in memory, never stored).

    Args:
        key_type: one of ``profile.key_types``; None for the first (the default).

    Raises:
        KeyPolicyViolation: a key type the profile does not allow (e.g. rsa-4096, ec-p384 for
            cloudfront-origin, which ACM/CloudFront refuse).
    """
    chosen = key_type or profile.key_types[0]
    if chosen not in profile.key_types:
        raise KeyPolicyViolation(
            f"key_type {chosen[:32]!r} is not allowed for profile {profile.name!r}; use one of "
            + ", ".join(profile.key_types)
        )
    if chosen == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_usage_for(public_key: object) -> x509.KeyUsage:
    """keyUsage for an end entity (RFC 5280 4.2.1.3): digitalSignature, plus keyEncipherment for RSA
    (TLS 1.2 RSA key transport)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
