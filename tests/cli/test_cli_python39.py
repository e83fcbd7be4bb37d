"""The operator CLIs run on Python 3.9+: no 3.10+ syntax, modules or members (vermin), and
samconfig.toml is read without ``tomllib`` (3.11+) by a small reader of the keys they need."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from utils.certcli import aws

REPO = Path(__file__).resolve().parents[2]

#: Everything the CLIs import from this repository: their package, the scripts, and the CA
#: core modules certcli imports (kmsca.serial, kmsca.errors).
CLI_FILES = [
    "utils/certcli",
    "utils/client-cert.py",
    "utils/server-cert.py",
    "utils/cloudfront-origin-cert.py",
    "utils/revoke-cert.py",
    "utils/certs.py",
    "utils/edge-targets.py",
    "layers/ca/kmsca/__init__.py",
    "layers/ca/kmsca/errors.py",
    "layers/ca/kmsca/serial.py",
]


def _vermin() -> list[str]:
    found = shutil.which("vermin", path=str(Path(sys.executable).parent))
    if found:
        return [found]
    pytest.importorskip("vermin", reason="vermin (requirements-dev.txt) checks the CLIs' minimum Python")
    return [sys.executable, "-m", "vermin"]


def test_the_clis_need_no_python_newer_than_3_9() -> None:
    result = subprocess.run(
        [*_vermin(), "--target=3.9-", "--no-tips", "--violations", *CLI_FILES],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"3.10+ features in the CLIs:\n{result.stdout}{result.stderr}"


def test_the_simple_reader_reads_the_projects_samconfig_like_tomllib() -> None:
    import tomllib

    text = (REPO / "samconfig.toml").read_text(encoding="utf-8")
    simple, full = aws.read_simple_toml(text), tomllib.loads(text)
    for env, command, key in [("default", "global", "stack_name"), ("default", "deploy", "region")]:
        assert simple[env][command]["parameters"][key] == full[env][command]["parameters"][key]
    assert simple["default"]["deploy"]["parameters"]["parameter_overrides"] == (
        full["default"]["deploy"]["parameters"]["parameter_overrides"]
    )


def test_without_tomllib_the_stack_name_and_region_come_from_the_simple_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aws, "_toml", None)
    config = tmp_path / "samconfig.toml"
    config.write_text(
        "version = 0.1\n[prod.global.parameters]\nstack_name = 'kmsca-prod'  # literal\n"
        '[prod.deploy.parameters]\nregion = "eu-central-1"\nconfirm_changeset = true\n',
        encoding="utf-8",
    )
    assert aws.default_stack_name(config, "prod") == "kmsca-prod"
    assert aws.samconfig_region(config, "prod") == "eu-central-1"


def test_without_tomllib_a_line_the_reader_does_not_know_is_refused_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aws, "_toml", None)
    config = tmp_path / "samconfig.toml"
    config.write_text("[default.global.parameters]\nstack_name\n", encoding="utf-8")
    with pytest.raises(aws.Refused, match=r"samconfig.toml is not valid TOML: line 2"):
        aws.default_stack_name(config, "default")


def _python39() -> str:
    """A Python 3.9 with boto3 and cryptography: ``KMSCA_PYTHON39``, else ``python3.9`` on PATH."""
    found = os.environ.get("KMSCA_PYTHON39") or shutil.which("python3.9")
    if not found:
        pytest.skip("no Python 3.9 (set KMSCA_PYTHON39 to one with boto3 and cryptography)")
    probe = subprocess.run([found, "-c", "import boto3, cryptography"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"{found} lacks boto3 or cryptography")
    return found


SCRIPTS = ["client-cert.py", "server-cert.py", "cloudfront-origin-cert.py", "revoke-cert.py", "certs.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_cli_starts_on_python_3_9(script: str, tmp_path: Path) -> None:
    """What vermin cannot see: run-time expressions such as ``A | B`` between classes."""
    result = subprocess.run(
        [_python39(), str(REPO / "utils" / script), "--help"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_refusal_on_python_3_9_reads_samconfig_and_names_the_endpoint(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    result = subprocess.run(
        [_python39(), str(REPO / "utils" / "client-cert.py"), "alice", "--samconfig", str(REPO / "samconfig.toml"),
         "--timeout", "3"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: EndpointConnectionError: cannot connect to http://127.0.0.1:9/")
    assert list(tmp_path.iterdir()) == []
