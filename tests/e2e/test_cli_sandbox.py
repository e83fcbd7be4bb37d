"""The operator CLIs and the demo against the local sandbox (real handlers, moto, patched KMS).

The sandbox runs as a subprocess (``python -m utils.sandbox``), started the way the demo starts
it, and the CLIs run as a user runs them, with ``AWS_ENDPOINT_URL`` pointing at it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import certcli
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.wait import wait_until
from utils import demo
from utils.demo.steps import cloudfront as cloudfront_steps

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[demo.SandboxProcess]:
    """The sandbox, started the way the demo starts it; stopped afterwards."""
    running = demo.SandboxProcess(tmp_path_factory.mktemp("sandbox"), timeout=120)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def sandbox_env(sandbox: demo.SandboxProcess) -> dict[str, str]:
    """Environment of a shell that exported the sandbox's settings."""
    env = demo.client_environment(sandbox.state)
    env["KMSCA_STACK_NAME"] = sandbox.state["stack_name"]
    return env


def cli(script: str, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "utils" / script), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize(
    ("key_type", "cls", "size"),
    [
        ("ec-p256", ec.EllipticCurvePublicKey, 256),
        ("ec-p384", ec.EllipticCurvePublicKey, 384),
        ("rsa-2048", rsa.RSAPublicKey, 2048),
        ("rsa-3072", rsa.RSAPublicKey, 3072),
        ("rsa-4096", rsa.RSAPublicKey, 4096),
    ],
)
def test_client_certificate_per_key_type(
    sandbox_env: dict[str, str], tmp_path: Path, key_type: str, cls: type, size: int
) -> None:
    result = cli("client-cert.py", f"dev-{key_type}", "--key-type", key_type, "--json", env=sandbox_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info: dict[str, Any] = json.loads(result.stdout)
    cert = x509.load_pem_x509_certificate((tmp_path / f"dev-{key_type}.crt").read_bytes())
    assert isinstance(cert.public_key(), cls)
    assert cert.public_key().key_size == size  # type: ignore[union-attr]
    assert info["serial_number"] == certcli.serial_to_hex(cert.serial_number)
    assert (tmp_path / f"dev-{key_type}.key").stat().st_mode & 0o777 == 0o600
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", "ca-bundle.pem", "-purpose", "sslclient", f"dev-{key_type}.crt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.stdout.strip() == f"dev-{key_type}.crt: OK", verify.stderr


@pytest.mark.parametrize(
    ("script", "args", "code"),
    [
        ("client-cert.py", ["x", "--lifetime-days", "0"], "InvalidLifetime"),
        ("client-cert.py", ["x", "--lifetime-days", "366"], "LifetimeExceeded"),
        ("server-cert.py", ["x", "--san", "*.com"], "InvalidSubjectAlternativeName"),
        ("server-cert.py", ["x", "--san", "a.example", "--san", "email:ops@example.com"], None),
    ],
)
def test_the_cas_answer_passes_through(
    sandbox_env: dict[str, str], tmp_path: Path, script: str, args: list[str], code: str | None
) -> None:
    result = cli(script, *args, env=sandbox_env, cwd=tmp_path)
    if code is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {code}: ")
    assert list(tmp_path.iterdir()) == []


def test_reused_idempotency_key_is_refused_and_files_stay(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    first = cli("client-cert.py", "svc", "--idempotency-key", "deploy-7", env=sandbox_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    again = cli("client-cert.py", "svc", "--idempotency-key", "deploy-7", "--force", env=sandbox_env, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.startswith("error: IdempotencyKeyReused: ")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_revoke_then_revoke_again_reports_the_first_revocation(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    issued = cli("client-cert.py", "to-revoke", "--json", env=sandbox_env, cwd=tmp_path)
    assert issued.returncode == 0, issued.stderr
    serial = json.loads(issued.stdout)["serial_number"]

    first = cli(
        "revoke-cert.py", "--cert", "to-revoke.fullchain.pem", "--reason", "keyCompromise", "--json",
        env=sandbox_env, cwd=tmp_path,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    info = json.loads(first.stdout)
    assert (info["serial_number"], info["reason"], info["already_revoked"]) == (serial, "keyCompromise", False)
    assert info["function_name"].endswith("RevokeFunction")
    assert info["subject"] == "CN=to-revoke"

    typed = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2)).upper()  # as openssl shows it
    again = cli("revoke-cert.py", "--serial", typed, "--reason", "superseded", "--json", env=sandbox_env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["already_revoked"] is True
    assert (second["serial_number"], second["reason"], second["revoked_at"]) == (
        serial,
        "keyCompromise",
        info["revoked_at"],
    )

    human = cli("revoke-cert.py", "--serial", serial, env=sandbox_env, cwd=tmp_path)
    assert human.returncode == 0
    assert "was already revoked" in human.stdout
    assert "warning: already revoked as keyCompromise; --reason unspecified was not applied" in human.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--serial", "0abc"], "CertificateNotFound"),
        (["--serial", "zz"], "InvalidRequest"),
        (["--serial", "ff" * 41], "InvalidRequest"),
        (["--serial", "01", "--invalidity-date", "2999-01-01T00:00:00Z"], "InvalidRequest"),
    ],
)
def test_revocation_refusals_pass_through(
    sandbox_env: dict[str, str], tmp_path: Path, args: list[str], code: str
) -> None:
    result = cli("revoke-cert.py", *args, env=sandbox_env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {code}: ")
    assert result.stdout == ""


def _acm_us_east_1(sandbox: demo.SandboxProcess) -> Any:
    admin = sandbox.state["admin"]  # inspection as the sandbox administrator
    return boto3.client(
        "acm", endpoint_url=sandbox.state["endpoint_url"], region_name="us-east-1",
        aws_access_key_id=admin["AWS_ACCESS_KEY_ID"], aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip


def test_cloudfront_origin_key_type_must_match_the_issuing_ca(
    sandbox: demo.SandboxProcess, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    """ACM refuses a leaf whose algorithm differs from its signing CA's: the CA refuses first."""
    acm = _acm_us_east_1(sandbox)
    before = acm.list_certificates()["CertificateSummaryList"]
    result = cli(
        "cloudfront-origin-cert.py", "rsa-origin.example.com", "--key-type", "rsa-2048", "--json",
        env=sandbox_env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: KeyPolicyViolation: ")
    assert "RSA" in result.stderr and "EC" in result.stderr
    assert acm.list_certificates()["CertificateSummaryList"] == before


@pytest.mark.parametrize(("key_type", "algorithm"), [("ec-p256", "EC_prime256v1")])
def test_cloudfront_origin_certificate_is_in_acm_us_east_1(
    sandbox: demo.SandboxProcess, sandbox_env: dict[str, str], tmp_path: Path, key_type: str, algorithm: str
) -> None:
    result = cli(
        "cloudfront-origin-cert.py", "origin.example.com", "--san", "dns:origin.example.com", "--key-type", key_type,
        "--out-dir", "certs", "--json", env=sandbox_env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    arn = info["acm_certificate_arn"]
    assert arn.startswith("arn:aws:acm:us-east-1:")
    assert sandbox.state["region"] != "us-east-1"  # the stack's region does not matter
    assert info["origin_mtls_config"] == {"OriginMtlsConfig": {"ClientCertificateArn": arn}}
    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == [
        "origin.example.com.chain.pem",
        "origin.example.com.crt",
    ]

    acm = _acm_us_east_1(sandbox)
    described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert (described["Status"], described["Type"], described["KeyAlgorithm"]) == ("ISSUED", "IMPORTED", algorithm)
    assert [u["Name"] for u in described["ExtendedKeyUsages"]] == ["TLS_WEB_CLIENT_AUTHENTICATION"]
    got = acm.get_certificate(CertificateArn=arn)
    leaf = x509.load_pem_x509_certificate((tmp_path / "certs" / "origin.example.com.crt").read_bytes())
    assert x509.load_pem_x509_certificate(got["Certificate"].encode()) == leaf
    assert leaf not in x509.load_pem_x509_certificates(got["CertificateChain"].encode())
    tags = {t["Key"]: t["Value"] for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
    assert tags["kmsca:serial-number"] == info["serial_number"]
    assert tags["managed-by"] == "kmsca"

    human = cli("cloudfront-origin-cert.py", "origin2.example.com", env=sandbox_env, cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    assert "ACM ARN        arn:aws:acm:us-east-1:" in human.stdout
    assert '"OriginMtlsConfig": {' in human.stdout


def test_a_second_cloudfront_origin_certificate_for_a_name_needs_allow_second(
    sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    first = cli("cloudfront-origin-cert.py", "twice.example.com", "--json", env=sandbox_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    arn = json.loads(first.stdout)["acm_certificate_arn"]
    # The inventory reads an index, eventually consistent (the sandbox lags it, --gsi-lag): the check
    # sees the first certificate once certs.py list does.
    wait_until(
        lambda: arn in cli("certs.py", "list", "--json", "--name", "twice", env=sandbox_env, cwd=tmp_path).stdout,
        timeout=30, what="the first certificate in the inventory", interval=0.2,
    )
    second = cli("cloudfront-origin-cert.py", "twice.example.com", env=sandbox_env, cwd=tmp_path)
    assert second.returncode == 2
    assert second.stderr.startswith(
        f"error: CertificateExists: twice.example.com already has a CloudFront origin certificate in ACM: {arn} "
    )
    assert "aws lambda invoke --function-name " in second.stderr and "--allow-second" in second.stderr
    third = cli(
        "cloudfront-origin-cert.py", "twice.example.com", "--allow-second", "--json", env=sandbox_env, cwd=tmp_path
    )
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["acm_certificate_arn"] != arn


def test_a_renewal_whose_new_key_goes_into_a_git_work_tree_warns(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    issued = cli("client-cert.py", "renew-me", "--out-dir", "repo", "--no-git-warning", env=sandbox_env, cwd=tmp_path)
    assert issued.returncode == 0, issued.stderr
    assert issued.stderr == ""
    renewed = cli("certs.py", "renew", "--cert", "repo/renew-me.crt", env=sandbox_env, cwd=tmp_path)
    assert renewed.returncode == 0, renewed.stderr
    assert renewed.stderr.startswith(
        "warning: private key files (repo/renew-me.renewed.key) go into the git work tree "
        f"{(tmp_path / 'repo').resolve()}: its .gitignore does NOT cover them"
    )


def test_cloudfront_origin_idempotency_key_returns_the_same_arn(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    runs = [
        cli("cloudfront-origin-cert.py", "o.example", "--idempotency-key", "deploy-9", "--json",
            env=sandbox_env, cwd=tmp_path)
        for _ in range(2)
    ]  # fmt: skip
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    first, second = (json.loads(r.stdout) for r in runs)
    assert (first["acm_certificate_arn"], first["serial_number"]) == (
        second["acm_certificate_arn"],
        second["serial_number"],
    )


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["o", "--lifetime-days", "1000"], "LifetimeExceeded"),
        (["o", "--san", "*.com"], "InvalidSubjectAlternativeName"),
        (["o", "--key-type", "ec-p384"], "KeyPolicyViolation"),
    ],
)
def test_cloudfront_origin_refusals(sandbox_env: dict[str, str], tmp_path: Path, args: list[str], code: str) -> None:
    result = cli("cloudfront-origin-cert.py", *args, "--out-dir", "certs", env=sandbox_env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {code}: ")
    assert not (tmp_path / "certs").exists()


def test_revoked_serial_reaches_the_keyvaluestore(
    sandbox: demo.SandboxProcess, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    issued = cli("client-cert.py", "to-revoke-kvs", "--json", env=sandbox_env, cwd=tmp_path)
    assert issued.returncode == 0, issued.stderr
    serial = json.loads(issued.stdout)["serial_number"]
    revoked = cli("revoke-cert.py", "--serial", serial, "--reason", "keyCompromise", "--json",
                  env=sandbox_env, cwd=tmp_path)  # fmt: skip
    assert revoked.returncode == 0, revoked.stderr
    revoked_at = json.loads(revoked.stdout)["revoked_at"]

    runner = demo.Demo(out_dir=tmp_path, work=tmp_path, sandbox=sandbox)
    kvs, arn = runner.kvs_client(), sandbox.state["outputs"]["RevokedSerialsStoreArn"]

    def stored() -> str | None:
        try:
            return str(kvs.get_key(KvsARN=arn, Key=serial)["Value"])
        except kvs.exceptions.ResourceNotFoundException:
            return None

    value = wait_until(stored, timeout=15, what=f"{serial} in the KeyValueStore")
    assert value == f"{revoked_at} keyCompromise"
    assert serial in cloudfront_steps.kvs_items(kvs, arn)


def test_demo_passes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "utils.demo", "--out-dir", str(tmp_path / "out")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"PASSED: {len(demo.STEPS)}/{len(demo.STEPS)} steps passed" in result.stdout
    assert "sandbox: stopped" in result.stdout
    for shown in (
        '"ClientCertificateArn": "arn:aws:acm:us-east-1:',
        "ExtendedKeyUsages TLS_WEB_CLIENT_AUTHENTICATION",
        "X509v3 Extended Key Usage: TLS Web Client Authentication",
        "keyCompromise': found after",
        "(the good client certificate): ResourceNotFoundException, not revoked",
        'logCustomData: {"reason":"revoked","serial":"',
        "decision allow (want allow)",
    ):
        assert shown in result.stdout, shown
