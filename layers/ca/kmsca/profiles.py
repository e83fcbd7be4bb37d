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
from .request_values import CLIENT, CLOUDFRONT_ORIGIN, ORIGIN_KEY_TYPES, SERVER

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
MIN_RSA_EXPONENT = 65537
ALLOWED_CURVES = ("secp256r1", "secp384r1", "secp521r1")
_MLDSA_KEYS = (mldsa.MLDSA44PublicKey, mldsa.MLDSA65PublicKey, mldsa.MLDSA87PublicKey)

#: A subject public key the key policy accepts (:func:`check_key_policy`).
SubjectPublicKey = (
    rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | mldsa.MLDSA44PublicKey
    | mldsa.MLDSA65PublicKey
    | mldsa.MLDSA87PublicKey
)
#: A subject key the CA generates itself (profiles whose key the CA makes).
GeneratedPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Profile:
    """A certificate profile.

    Attributes:
        name: the request's ``profile`` value.
        extended_key_usages: EKU OIDs the certificate carries.
        requires_san: refuse a request without at least one SAN.
        key_types: for a profile whose key the CA generates (no CSR), the key types it may
            generate; empty for CSR profiles. Which one a request gets is decided with the issuing
            CA's key (:func:`origin_key_type`).
        requires_dns_san: refuse a request without at least one DNS-name SAN (ACM refuses to
            import a certificate that names no FQDN or IP address; CloudFront origins are DNS names).
    """

    name: str
    extended_key_usages: tuple[ObjectIdentifier, ...]
    requires_san: bool
    key_types: tuple[str, ...] = ()
    requires_dns_san: bool = False

    @property
    def generates_key(self) -> bool:
        return bool(self.key_types)


PROFILES: dict[str, Profile] = {
    CLIENT: Profile(CLIENT, (ExtendedKeyUsageOID.CLIENT_AUTH,), requires_san=False),
    SERVER: Profile(SERVER, (ExtendedKeyUsageOID.SERVER_AUTH,), requires_san=True),
    # CloudFront origin mTLS: ACM (us-east-1) needs the private key, accepts RSA 2048 or P-256 only,
    # of the issuing CA's algorithm, and a certificate that names an FQDN.
    CLOUDFRONT_ORIGIN: Profile(
        CLOUDFRONT_ORIGIN,
        (ExtendedKeyUsageOID.CLIENT_AUTH,),
        requires_san=True,
        key_types=ORIGIN_KEY_TYPES,
        requires_dns_san=True,
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
            f"profile {name[:64]!r} is not one of {', '.join(PROFILES)}", profile=name[:64], allowed=list(PROFILES)
        ) from None


def check_profile_names(profile: Profile, subject: x509.Name, sans: Sequence[x509.GeneralName]) -> None:
    """The names a profile needs: a SAN for ``server``; a subject or a SAN for every certificate.

    Raises:
        InvalidSubjectAlternativeName: the profile needs a SAN and there is none, or the
            certificate would have neither subject nor SAN (RFC 5280 4.1.2.6).
    """
    if profile.requires_dns_san and not any(isinstance(name, x509.DNSName) for name in sans):
        raise InvalidSubjectAlternativeName(
            f"profile {profile.name!r} needs at least one DNS-name subject alternative name "
            "(ACM imports only certificates that name an FQDN)"
        )
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
                f"RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, this one has {public_key.key_size}",
                key_size=public_key.key_size,
                min_key_size=MIN_RSA_BITS,
                max_key_size=MAX_RSA_BITS,
            )
        if numbers.e < MIN_RSA_EXPONENT or numbers.e % 2 == 0:
            raise KeyPolicyViolation(f"RSA public exponent must be odd and at least {MIN_RSA_EXPONENT}")
        return public_key
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ALLOWED_CURVES:
            raise KeyPolicyViolation(
                f"EC curve {public_key.curve.name} is not accepted; use P-256, P-384 or P-521",
                curve=public_key.curve.name,
            )
        return public_key
    if isinstance(public_key, _MLDSA_KEYS):
        return public_key
    raise KeyPolicyViolation(
        f"{type(public_key).__name__.removeprefix('_')} keys are not accepted; "
        "use RSA (2048 bits or more), EC P-256/P-384/P-521 or ML-DSA"
    )


# Key type a generated key gets, by the issuing CA key's algorithm family. ACM refuses to import a
# certificate whose key algorithm differs from its signing CA's ("The cryptographic algorithm of an
# imported certificate must match the algorithm of the signing CA"), and CloudFront origin mTLS
# accepts only RSA-2048 and ECDSA P-256 leaves: an EC issuing CA (P-256, P-384, P-521) gets ec-p256
# leaves, an RSA issuing CA (2048-4096) rsa-2048 leaves, an ML-DSA issuing CA none.
KEY_TYPE_FOR_CA_ALGORITHM = {"EC": "ec-p256", "RSA": "rsa-2048"}
_KEY_TYPE_ALGORITHM = {"ec-p256": "EC", "rsa-2048": "RSA"}


def ca_key_algorithm(ca_public_key: object) -> str:
    """``"EC"``, ``"RSA"`` or ``"ML-DSA"``: the algorithm family of a CA's public key."""
    if isinstance(ca_public_key, ec.EllipticCurvePublicKey):
        return "EC"
    if isinstance(ca_public_key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(ca_public_key, _MLDSA_KEYS):
        return "ML-DSA"
    return type(ca_public_key).__name__.removeprefix("_")


def origin_key_type(profile: Profile, key_type: object, ca_public_key: object) -> str:
    """The key type to generate for a profile whose key the CA makes: the requested one, or by
    default the one of the issuing CA's algorithm (``ec-p256`` under EC, ``rsa-2048`` under RSA).

    Raises:
        KeyPolicyViolation: a key type the profile does not allow (e.g. rsa-4096, ec-p384 for
            cloudfront-origin, which ACM/CloudFront refuse), one whose algorithm is not the
            issuing CA's (ACM refuses the import), or an issuing CA whose algorithm has no
            allowed key type (ML-DSA).
    """
    if key_type is not None and (not isinstance(key_type, str) or key_type not in profile.key_types):
        raise KeyPolicyViolation(
            f"key_type {str(key_type)[:32]!r} is not allowed for profile {profile.name!r}; use one of "
            + ", ".join(profile.key_types),
            key_type=str(key_type)[:32],
            profile=profile.name,
            allowed=list(profile.key_types),
        )
    ca_algorithm = ca_key_algorithm(ca_public_key)
    matching = KEY_TYPE_FOR_CA_ALGORITHM.get(ca_algorithm)
    if matching is None or matching not in profile.key_types:
        raise KeyPolicyViolation(
            f"profile {profile.name!r} needs an EC or RSA issuing CA (ACM imports a certificate only when its "
            f"key algorithm matches the signing CA's); this issuing CA's key is {ca_algorithm}",
            profile=profile.name,
            ca_key_algorithm=ca_algorithm,
        )
    if key_type is None:
        return matching
    if _KEY_TYPE_ALGORITHM[key_type] != ca_algorithm:
        raise KeyPolicyViolation(
            f"key_type {key_type!r} is an {_KEY_TYPE_ALGORITHM[key_type]} key but the issuing CA's key is "
            f"{ca_algorithm}; ACM refuses a certificate whose algorithm differs from its signing CA's: "
            f"use key_type {matching!r}",
            key_type=key_type,
            ca_key_algorithm=ca_algorithm,
            matching_key_type=matching,
        )
    return key_type


def generate_key(profile: Profile, key_type: str | None) -> GeneratedPrivateKey:
    """Generate the subject key for a profile whose key the CA makes (in memory, never stored).

    Args:
        key_type: one of ``profile.key_types``, chosen with :func:`origin_key_type`; None for the
            first (records from before the key type was recorded).

    Raises:
        KeyPolicyViolation: a key type the profile does not allow.
    """
    chosen = profile.key_types[0] if key_type is None else key_type
    if chosen not in profile.key_types:
        raise KeyPolicyViolation(
            f"key_type {chosen[:32]!r} is not allowed for profile {profile.name!r}; use one of "
            + ", ".join(profile.key_types),
            key_type=chosen[:32],
            profile=profile.name,
            allowed=list(profile.key_types),
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
