"""The operator CLIs run on Python 3.9+: no 3.10+ syntax, modules or members (vermin), and
samconfig.toml is read without ``tomllib`` (3.11+) by a small reader of the keys they need."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from utils.certcli import aws

REPO = Path(__file__).resolve().parents[1]

#: Everything the CLIs import from this repository: their package, the scripts, and the CA
#: core modules certcli imports (kmsca.serial, kmsca.errors).
CLI_FILES = [
    "utils/certcli",
    "utils/client-cert.py",
    "utils/server-cert.py",
    "utils/cloudfront-origin-cert.py",
    "utils/revoke-cert.py",
    "utils/certs.py",
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
