"""The operator CLIs as an installed package (pyproject.toml): ``certcli`` and the CA core ``kmsca``
installed together, one console script per tool, the ``utils/<tool>.py`` scripts thin shims of
them, and the core's names imported, not copied.

These tests run in an environment where the repository is installed (``./dev.sh`` installs it
editable into ``.venv``); ``certcli`` is not on the tests' ``pythonpath``, so every CLI test
imports the installed package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import certcli
import pytest
from certcli import scripts
from cryptography import x509
from kmsca import acm, reasons, request_values, targets
from kmsca.profiles import PROFILES
from kmsca.records import REASONS
from packaging.requirements import Requirement

from tests.support.package import package_source

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
CONSOLE_SCRIPTS: dict[str, str] = PYPROJECT["project"]["scripts"]
#: console script -> the checkout's shim (utils/<tool>.py)
SHIMS = {name: f"{name.removeprefix('kmsca-')}.py" for name in CONSOLE_SCRIPTS}
CLI_SOURCES = [*sorted((REPO / "utils" / "certcli").glob("*.py")), *(REPO / "utils" / s for s in SHIMS.values())]


def _run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_every_operator_tool_has_a_console_script_and_a_shim() -> None:
    assert set(CONSOLE_SCRIPTS) == {
        "kmsca-client-cert",
        "kmsca-server-cert",
        "kmsca-revoke-cert",
        "kmsca-cloudfront-origin-cert",
        "kmsca-certs",
        "kmsca-edge-targets",
        "kmsca-issuance-policy",
    }
    for name, target in CONSOLE_SCRIPTS.items():
        assert target.startswith("certcli.scripts:"), name
        assert callable(getattr(scripts, target.partition(":")[2])), name
        assert (REPO / "utils" / SHIMS[name]).is_file(), name


def test_the_installed_package_imports_without_the_repository_on_the_path(tmp_path: Path) -> None:
    """``-I``: neither the current directory nor PYTHONPATH; only what is installed."""
    result = _run(
        sys.executable, "-I", "-c", "import certcli, certcli.scripts, kmsca.serial, kmsca.reasons", cwd=tmp_path
    )
    assert result.returncode == 0, f"the package is not installed here (pip install -e .):\n{result.stderr}"


@pytest.mark.parametrize("name", sorted(CONSOLE_SCRIPTS))
def test_a_console_script_prints_the_same_help_as_its_shim(name: str, tmp_path: Path) -> None:
    command = shutil.which(name, path=str(Path(sys.executable).parent))
    assert command, f"{name} is not installed beside {sys.executable} (pip install -e .)"
    installed = _run(command, "--help", cwd=tmp_path)
    shim = _run(sys.executable, str(REPO / "utils" / SHIMS[name]), "--help", cwd=tmp_path)
    assert installed.returncode == shim.returncode == 0, installed.stderr + shim.stderr
    assert installed.stdout.startswith(f"usage: {name} ")
    assert shim.stdout.startswith(f"usage: {SHIMS[name]} ")
    # the same text but for the program's name (usage lines wrap at its length)
    assert installed.stdout.replace(name, SHIMS[name]).split() == shim.stdout.split()


def test_a_console_script_exits_with_the_tools_status(tmp_path: Path) -> None:
    command = shutil.which("kmsca-revoke-cert", path=str(Path(sys.executable).parent))
    assert command
    result = _run(command, "--serial", "01", "--reason", "cACompromise", "--function-name", "f", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "error: InvalidRevocationReason: cACompromise applies to CA certificates, not to end-entity "
        "certificates; use keyCompromise\n"
    )


def test_a_shim_without_the_package_says_how_to_install_it(tmp_path: Path) -> None:
    """``-S``: no site-packages, as on a machine where the package was never installed."""
    result = _run(sys.executable, "-S", str(REPO / "utils" / "client-cert.py"), "--help", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: NotInstalled: no module ")
    assert "pip install ." in lines[0]


def test_the_clis_set_up_no_import_path() -> None:
    for path in CLI_SOURCES:
        assert "sys.path" not in path.read_text(encoding="utf-8"), path.relative_to(REPO)


def test_nothing_imports_the_cli_package_through_the_repository_layout() -> None:
    """One module identity: ``certcli`` (installed), never ``utils.certcli`` (a second copy of
    every class, so that ``except certcli.Refused`` would miss the other's)."""
    pattern = re.compile(r"^\s*(from\s+utils\s+import\s+.*\bcertcli\b|(from|import)\s+utils\.certcli\b)", re.M)
    offenders = [
        str(path.relative_to(REPO))
        for top in ("tests", "utils", "functions")
        for path in (REPO / top).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_clis_use_the_cas_revocation_reasons() -> None:
    assert certcli.REVOCATION_REASONS is reasons.REVOCATION_REASONS
    assert certcli.CA_ONLY_REASONS is reasons.CA_ONLY_REASONS
    assert list(REASONS) == list(reasons.REVOCATION_REASONS)
    assert all(REASONS[name] is x509.ReasonFlags(name) for name in REASONS)
    assert not set(reasons.CA_ONLY_REASONS) & set(reasons.REVOCATION_REASONS)


def test_the_clis_use_the_cas_request_values() -> None:
    """Profile names, origin key types, the target name form and ACM's region: the core's objects."""
    assert (certcli.CLIENT, certcli.SERVER, certcli.CLOUDFRONT_ORIGIN) == (
        request_values.CLIENT, request_values.SERVER, request_values.CLOUDFRONT_ORIGIN
    )  # fmt: skip
    assert set(PROFILES) == {request_values.CLIENT, request_values.SERVER, request_values.CLOUDFRONT_ORIGIN}
    assert certcli.ORIGIN_KEY_TYPES is request_values.ORIGIN_KEY_TYPES is PROFILES["cloudfront-origin"].key_types
    assert certcli.origin.TARGET_NAME is request_values.TARGET_NAME is targets.TARGET_NAME
    assert certcli.ACM_REGION == acm.ACM_REGION == request_values.ACM_REGION


def test_the_clis_request_and_subject_are_not_the_cores_names() -> None:
    """certcli's request and subject types are the CLI's own (other fields, other rules): other
    names than ``kmsca.models.IssueRequest`` / ``SubjectFields``."""
    assert not hasattr(certcli, "IssueRequest")
    assert not hasattr(certcli, "SubjectFields")
    assert certcli.serial_to_hex.__module__ == "kmsca.serial"


def test_the_pinned_requirements_satisfy_the_packages_dependencies() -> None:
    """``pip install -e .`` after ``requirements-dev.txt`` (dev.sh) installs nothing else."""
    from importlib import metadata

    for text in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), f"{requirement}: {installed}"


def test_the_wheel_holds_the_core_and_the_clis_only(tmp_path: Path) -> None:
    """A non-editable build: every package of the core (subpackages included) and of certcli,
    nothing else of the repository, and the console scripts."""
    source = package_source(tmp_path / "source")  # no build/ left in the work tree
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("kmsca-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.rsplit("/", 1)[0] for name in names if name.endswith("/__init__.py")}
    expected = {
        str(init.parent.relative_to(root)).replace("\\", "/")
        for root in (REPO / "layers" / "ca", REPO / "utils")
        for init in root.rglob("__init__.py")
        if init.relative_to(root).parts[0] in ("kmsca", "certcli")
    }
    assert packages == expected
    assert {name.split("/", 1)[0] for name in names} - {"kmsca", "certcli"} == {wheel.name.split("-py")[0] + ".dist-info"}
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert all(f"{name} = {target}" in text for name, target in CONSOLE_SCRIPTS.items())
