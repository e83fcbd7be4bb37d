"""A CA hierarchy with local keys (no KMS), at the fixed time of the pure tests.

The certificates are built by the CA's own builders (:mod:`kmsca.certificates`) and signed with
cryptography's in-memory keys, which sign exactly as the KMS-backed keys do for these builders
(the KMS adapter is tested on its own, tests/adapters/test_signer.py). Keys are derived from fixed scalars,
so every run builds the same key pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kmsca.ca import IssuingCa
from kmsca.certificates import PublicationUrls, build_issuing_certificate, build_root_certificate
from kmsca.records import CaRecord
from kmsca.signer import SignatureScheme

from tests.support.records import NOW

ROOT_KEY = ec.derive_private_key(0x5EED0001, ec.SECP384R1())
ISSUING_KEY = ec.derive_private_key(0x5EED0002, ec.SECP256R1())
BASE_URL = "https://pki.example.com"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


@dataclass(frozen=True)
class LocalHierarchy:
    """A root and an issuing CA (records as the store keeps them) and the :class:`IssuingCa` that
    signs with the local issuing key."""

    root: CaRecord
    issuing: CaRecord
    ca: IssuingCa


def local_hierarchy(
    now: datetime = NOW, issuing_lifetime: timedelta = timedelta(days=1825), base_url: str | None = BASE_URL
) -> LocalHierarchy:
    """Root (P-384, SHA-384) and issuing CA (P-256, SHA-256) valid from ``now``; ``base_url`` gives
    the CRL DP / AIA locations (None: none)."""
    root_scheme, issuing_scheme = SignatureScheme(hashes.SHA384()), SignatureScheme(hashes.SHA256())
    root_key: Any = ROOT_KEY
    issuing_key: Any = ISSUING_KEY
    urls = PublicationUrls(base_url, None) if base_url else None
    root_certificate = build_root_certificate(
        root_key, root_scheme, _name("Test Root CA"), 0x01, now, now + timedelta(days=3650)
    )
    issuing_certificate = build_issuing_certificate(
        root_key,
        root_scheme,
        root_certificate,
        ISSUING_KEY.public_key(),
        _name("Test Issuing CA"),
        0x02,
        now,
        now + issuing_lifetime,
        urls,
    )
    root = CaRecord("root", root_certificate, "local:root", now)
    issuing = CaRecord("issuing", issuing_certificate, "local:issuing", now)
    return LocalHierarchy(root, issuing, IssuingCa(issuing, root, issuing_key, issuing_scheme, urls))
