"""Fixtures of the pure rule tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.csr import make_csr


@pytest.fixture
def ec_csr_builder(ec_key: ec.EllipticCurvePrivateKey) -> Callable[..., x509.CertificateSigningRequest]:
    """Builds CSRs of the fixed P-256 key: ``make_csr``'s keyword arguments."""

    def build(**kwargs: Any) -> x509.CertificateSigningRequest:
        return make_csr(ec_key, **kwargs)

    return build
