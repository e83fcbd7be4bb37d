"""Reading certificates for the demo's output: key descriptions, ``openssl -text`` excerpts, serials
as CloudFront shows them, AIA URLs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from utils.demo.output import StepFailed


def describe_key(cert: Any) -> str:
    """``"EC secp384r1 key, signed with SHA384"``-style description of a certificate's key and signature."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        text = f"EC {key.curve.name} key"
    elif isinstance(key, rsa.RSAPublicKey):
        text = f"RSA {key.key_size} key"
    else:
        text = f"{type(key).__name__}"
    digest = cert.signature_hash_algorithm
    return f"{text}, signed with {digest.name.upper() if digest else cert.signature_algorithm_oid.dotted_string}"


CERT_EXCERPT = (
    "Serial Number", "Issuer:", "Not Before", "Not After", "Subject:", "Public Key Algorithm", "NIST CURVE",
    "Basic Constraints", "Key Usage", "Extended Key Usage", "Subject Alternative Name",
)  # fmt: skip
CRL_EXCERPT = ("Issuer:", "Last Update", "Next Update", "CRL Number", "Serial Number", "Revocation Date", "Reason Code")


def excerpt(x509_text: str, wanted: Sequence[str] = CERT_EXCERPT) -> list[str]:
    """Interesting lines of ``openssl x509 -text`` (or ``openssl crl -text`` with :data:`CRL_EXCERPT`):
    names, validity, key, extensions and their values."""
    lines = x509_text.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if any(w in line for w in wanted):
            out.append(line.strip())
            if line.strip().endswith(":") and i + 1 < len(lines):  # the value is on the next line
                out[-1] += " " + lines[i + 1].strip()
    return out


def colon_hex(serial_number: int) -> str:
    """A serial as CloudFront passes it to a connection function: the DER INTEGER's octets (a leading
    00 when the top bit is set) as lowercase hex separated by colons, ``4a:3f:05``."""
    octets = serial_number.to_bytes(serial_number.bit_length() // 8 + 1, "big")
    return ":".join(f"{b:02x}" for b in octets)


def aia_url(certificate_file: Path, method: str) -> str:
    """The first AIA URL of ``method`` (``OCSP`` or ``CA_ISSUERS``) in a PEM certificate."""
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID

    certificate = x509.load_pem_x509_certificate(certificate_file.read_bytes())
    try:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        raise StepFailed(f"{certificate_file.name} has no AIA extension") from None
    wanted = getattr(AuthorityInformationAccessOID, method)
    for description in aia:
        if description.access_method == wanted:
            return str(description.access_location.value)
    raise StepFailed(f"{certificate_file.name} has no AIA {method} URL")
