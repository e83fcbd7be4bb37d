"""The operator CLIs run on Python 3.9+: no 3.10+ syntax, modules or members (vermin), and
samconfig.toml is read without ``tomllib`` (3.11+) by a small reader of the keys they need.

With a Python 3.9 (``KMSCA_PYTHON39``, else ``python3.9`` on PATH) that has boto3 and
cryptography, the package is built and installed for it (``pip install --no-deps --target``, a
fresh build of this work tree; the build backend comes from the package index) and every tool is
started with it, as a console script and as a ``utils/<tool>.py`` shim.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from certcli import aws

from tests.support.package import package_source

REPO = Path(__file__).resolve().parents[2]

SHIMS = [
    "client-cert.py",
    "server-cert.py",
    "cloudfront-origin-cert.py",
    "revoke-cert.py",
    "certs.py",
    "edge-targets.py",
    "issuance-policy.py",
]
#: Everything the CLIs import from this repository: their package, the scripts, and the CA
#: core modules certcli imports (kmsca.serial, kmsca.errors, kmsca.reasons, kmsca.request_values). kmsca-issuance-policy
#: imports more of the core, only on 3.11+ (on older Pythons it refuses first).
CLI_FILES = [
    "utils/certcli",
    *(f"utils/{shim}" for shim in SHIMS),
    "layers/ca/kmsca/__init__.py",
    "layers/ca/kmsca/errors.py",
    "layers/ca/kmsca/reasons.py",
    "layers/ca/kmsca/request_values.py",
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


@dataclass(frozen=True)
class Python39:
    """A Python 3.9 and the package installed for it in ``site`` (console scripts in ``site/bin``)."""

    interpreter: str
    site: Path

    def run(self, *command: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {**(env or os.environ), "PYTHONPATH": str(self.site)}
        return subprocess.run(list(command), cwd=cwd, env=environ, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def python39(tmp_path_factory: pytest.TempPathFactory) -> Python39:
    """``KMSCA_PYTHON39``, else ``python3.9`` on PATH, with this work tree's package installed."""
    found = os.environ.get("KMSCA_PYTHON39") or shutil.which("python3.9")
    if not found:
        pytest.skip("no Python 3.9 (set KMSCA_PYTHON39 to one with boto3 and cryptography)")
    probe = subprocess.run([found, "-c", "import boto3, cryptography"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"{found} lacks boto3 or cryptography")
    site = tmp_path_factory.mktemp("py39-site")
    source = package_source(tmp_path_factory.mktemp("py39-source"))
    installed = subprocess.run(
        [found, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, f"pip install for {found} failed:\n{installed.stderr}"
    return Python39(found, site)


def test_the_package_imports_on_python_3_9(python39: Python39, tmp_path: Path) -> None:
    result = python39.run(
        python39.interpreter, "-c", "import sys, certcli, certcli.scripts; assert sys.version_info[:2] == (3, 9)",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("shim", SHIMS)
def test_each_cli_starts_on_python_3_9(shim: str, python39: Python39, tmp_path: Path) -> None:
    """What vermin cannot see: run-time expressions such as ``A | B`` between classes."""
    result = python39.run(python39.interpreter, str(REPO / "utils" / shim), "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("shim", SHIMS)
def test_each_console_script_starts_on_python_3_9(shim: str, python39: Python39, tmp_path: Path) -> None:
    name = "kmsca-" + shim.removesuffix(".py")
    result = python39.run(str(python39.site / "bin" / name), "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {name} ")


def test_a_refusal_on_python_3_9_reads_samconfig_and_names_the_endpoint(python39: Python39, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    result = python39.run(
        python39.interpreter, str(REPO / "utils" / "client-cert.py"), "alice", "--samconfig",
        str(REPO / "samconfig.toml"), "--timeout", "3", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: EndpointConnectionError: cannot connect to http://127.0.0.1:9/")
    assert list(tmp_path.iterdir()) == []


def test_the_issuance_policy_tool_on_python_3_9_says_it_needs_3_11(python39: Python39, tmp_path: Path) -> None:
    document = tmp_path / "policy.json"
    document.write_text("{}", encoding="utf-8")
    result = python39.run(python39.site.joinpath("bin", "kmsca-issuance-policy").as_posix(), "check", str(document),
                          cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: UnsupportedPython: issuance-policy validates documents with the CA core, ")
    assert "needs Python 3.11+; this is Python 3.9." in result.stderr
