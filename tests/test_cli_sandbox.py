"""The operator CLIs and the demo against the local sandbox (real handlers, moto, patched KMS).

The sandbox runs as a subprocess (``python -m utils.sandbox``), started the way the demo starts
it, and the CLIs run as a user runs them, with ``AWS_ENDPOINT_URL`` pointing at it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from utils import certcli, demo

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sandbox_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of a shell that exported the sandbox's settings; the sandbox stops afterwards."""
    sandbox = demo.Sandbox(tmp_path_factory.mktemp("sandbox"), timeout=120)
    try:
        state = sandbox.start()
        env = demo.client_environment(state)
        env["KMSCA_STACK_NAME"] = state["stack_name"]
        yield env
    finally:
        sandbox.stop()


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


def test_demo_passes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "utils" / "demo.py"), "--out-dir", str(tmp_path / "out")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"PASSED: {len(demo.STEPS)}/{len(demo.STEPS)} steps passed" in result.stdout
    assert "sandbox: stopped" in result.stdout
