from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, mldsa, rsa
from kmsca.errors import KeyPolicyViolation, UnknownProfile
from kmsca.profiles import PROFILES, check_key_policy, key_usage_for, select_profile


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: rsa.generate_private_key(65537, 2048),
        lambda: rsa.generate_private_key(65537, 3072),
        lambda: ec.generate_private_key(ec.SECP256R1()),
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: ec.generate_private_key(ec.SECP521R1()),
        lambda: mldsa.MLDSA44PrivateKey.generate(),
        lambda: mldsa.MLDSA65PrivateKey.generate(),
        lambda: mldsa.MLDSA87PrivateKey.generate(),
    ],
    ids=["rsa2048", "rsa3072", "p256", "p384", "p521", "mldsa44", "mldsa65", "mldsa87"],
)
def test_accepted_keys(make_key) -> None:  # type: ignore[no-untyped-def]
    public_key = make_key().public_key()
    assert check_key_policy(public_key) is public_key


@pytest.mark.parametrize(
    ("make_key", "fragment"),
    [
        (lambda: rsa.generate_private_key(65537, 1024), "2048 to 8192 bits"),
        (lambda: rsa.generate_private_key(3, 2048), "exponent"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "secp256k1"),
        (lambda: ed25519.Ed25519PrivateKey.generate(), "not accepted"),
        (lambda: dsa.generate_private_key(2048), "not accepted"),
    ],
    ids=["rsa1024", "rsa-e3", "secp256k1", "ed25519", "dsa"],
)
def test_refused_keys(make_key, fragment: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyPolicyViolation, match=fragment):
        check_key_policy(make_key().public_key())


def test_key_encipherment_only_for_rsa() -> None:
    assert key_usage_for(rsa.generate_private_key(65537, 2048).public_key()).key_encipherment
    ec_usage = key_usage_for(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert ec_usage.digital_signature and not ec_usage.key_encipherment


@pytest.mark.parametrize("name", ["admin", "", "Client", "ca"])
def test_unknown_profiles(name: str) -> None:
    with pytest.raises(UnknownProfile, match="is not one of client, server"):
        select_profile(name)


def test_profiles_are_client_and_server() -> None:
    assert select_profile("client") is PROFILES["client"]
    assert PROFILES["server"].requires_san and not PROFILES["client"].requires_san


# cloudfront-origin: the generated key's algorithm follows the issuing CA's (ACM import rule) ---------


@pytest.mark.parametrize(
    ("ca_key", "default"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ec-p256"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ec-p256"),  # EC family matches; CloudFront takes P-256 only
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072), "rsa-2048"),
    ],
)
def test_origin_key_type_defaults_to_the_issuing_cas_algorithm(ca_key: Any, default: str) -> None:
    from kmsca.profiles import CLOUDFRONT_ORIGIN, PROFILES, origin_key_type

    public_key = ca_key().public_key()
    assert origin_key_type(PROFILES[CLOUDFRONT_ORIGIN], None, public_key) == default
    assert origin_key_type(PROFILES[CLOUDFRONT_ORIGIN], default, public_key) == default
    other = "rsa-2048" if default == "ec-p256" else "ec-p256"
    with pytest.raises(KeyPolicyViolation, match="issuing CA's key is"):
        origin_key_type(PROFILES[CLOUDFRONT_ORIGIN], other, public_key)


def test_an_ml_dsa_issuing_ca_allows_no_origin_key_type() -> None:
    from cryptography.hazmat.primitives.asymmetric import mldsa
    from kmsca.profiles import CLOUDFRONT_ORIGIN, PROFILES, origin_key_type

    public_key = mldsa.MLDSA65PrivateKey.generate().public_key()
    for key_type in (None, "ec-p256", "rsa-2048"):
        with pytest.raises(KeyPolicyViolation, match="ML-DSA"):
            origin_key_type(PROFILES[CLOUDFRONT_ORIGIN], key_type, public_key)
