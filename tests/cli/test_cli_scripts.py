"""The operator scripts as a user runs them: ``python utils/client-cert.py ...`` in a subprocess.

No AWS is reached: these cover ``--help``, refusals made before any call, and how an
unreachable endpoint is reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = {"client": REPO / "utils" / "client-cert.py", "server": REPO / "utils" / "server-cert.py"}


def run_script(kind: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a script from ``cwd`` (not the repository) with a clean AWS environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KMSCA_"))}
    environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-1"})
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, str(SCRIPTS[kind]), *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("kind", ["client", "server"])
def test_help(kind: str, tmp_path: Path) -> None:
    result = run_script(kind, "--help", cwd=tmp_path)
    assert result.returncode == 0
    for option in (
        "--san",
        "--lifetime-days",
        "--key-type",
        "--out-dir",
        "--name",
        "--profile",
        "--region",
        "--stack-name",
        "--function-name",
        "--pkcs12",
        "--force",
        "--json",
        "rsa-4096",
    ):
        assert option in result.stdout
    assert ("clientAuth" if kind == "client" else "serverAuth") in result.stdout


def test_server_cert_needs_a_san(tmp_path: Path) -> None:
    result = run_script("server", "www.example.com", "--function-name", "f", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: InvalidSubjectAlternativeName: a server certificate needs at least one --san "
        "(e.g. --san dns:www.example.com)"
    )
    assert list(tmp_path.iterdir()) == []


def test_bad_san_is_refused(tmp_path: Path) -> None:
    result = run_script("client", "alice", "--san", "ip:999.1.1.1", "--function-name", "f", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: InvalidSubjectAlternativeName: --san 'ip:999.1.1.1'")


def test_unreachable_endpoint_is_a_failure_and_writes_nothing(tmp_path: Path) -> None:
    result = run_script(
        "client",
        "alice",
        "--function-name",
        "f",
        "--timeout",
        "5",
        cwd=tmp_path,
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: EndpointConnectionError: ")
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []
