"""The one CA loader (kmsca.ca): an unusable KMS key is the documented CaNotReady, whichever
function loads the CA (the issue function's load_issuing_ca, or load_ca_signers for the CRL and
OCSP functions)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kmsca.ca import load_ca_signers, load_issuing_ca
from kmsca.certificates import ISSUING, ROOT
from kmsca.errors import CaNotReady
from kmsca.records import CaRecord
from kmsca.settings import SigningSettings

from tests.support.aws import REGION
from tests.support.records import NOW

UNUSABLE = [
    pytest.param(({"KeySpec": "ECC_SECG_P256K1", "KeyUsage": "SIGN_VERIFY"}, "ECC_SECG_P256K1"), id="secp256k1"),
    pytest.param(({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, "SIGN_VERIFY"), id="encryption-key"),
]


class _Store:
    """Only what the loaders read: CA records by name."""

    def __init__(self, records: dict[str, CaRecord]) -> None:
        self._records = records

    def get_cas(self, names: list[str]) -> dict[str, CaRecord]:
        return {name: self._records[name] for name in names if name in self._records}


def _record(name: str) -> CaRecord:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return CaRecord(name, certificate, f"{name}-key", NOW)


@pytest.fixture
def unusable_key(aws: None, request: pytest.FixtureRequest) -> tuple[Any, str, str]:
    """(KMS client, ARN of a key a CA cannot sign with, text the error names)."""
    kms = boto3.client("kms", region_name=REGION)
    spec, expected = request.param
    return kms, kms.create_key(**spec)["KeyMetadata"]["Arn"], expected


@pytest.mark.parametrize("unusable_key", UNUSABLE, indirect=True)
def test_an_unusable_key_is_ca_not_ready_for_the_signers(unusable_key: tuple[Any, str, str]) -> None:
    kms, key_id, expected = unusable_key
    store = _Store({ROOT: _record(ROOT), ISSUING: _record(ISSUING)})
    with pytest.raises(CaNotReady, match=expected):
        load_ca_signers(store, kms, {ROOT: key_id}, SigningSettings())  # type: ignore[arg-type]


@pytest.mark.parametrize("unusable_key", UNUSABLE, indirect=True)
def test_an_unusable_key_is_ca_not_ready_for_the_issuing_ca(unusable_key: tuple[Any, str, str]) -> None:
    kms, key_id, expected = unusable_key
    store = _Store({ROOT: _record(ROOT), ISSUING: _record(ISSUING)})
    with pytest.raises(CaNotReady, match=expected):
        load_issuing_ca(store, kms, key_id, SigningSettings(), None)  # type: ignore[arg-type]
