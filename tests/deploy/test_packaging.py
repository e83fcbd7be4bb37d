"""Each function ships what it imports and nothing more (issue 13).

The layers come from template.yaml; what a built layer contains from its requirements.txt (see
utils/lambda_packages.py). The sandbox imports from the development virtualenv, so the split is
checked here: the lists are closed under their dependencies, awscrt is only in the KeyValueStore
sync function's package, every handler imports with nothing but its own package, and the CA layer
ships bytecode for every module a function imports at cold start (Lambda's /opt is read-only).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from utils.lambda_packages import (
    PLACEHOLDER_ENV,
    REPO,
    RUNTIME_PROVIDED,
    cold_start_modules,
    function_layers,
    import_script,
    needed_distributions,
    shipped_distributions,
)
from utils.sandbox.template import load_template

TEMPLATE = load_template(REPO / "template.yaml")
LAYERS = function_layers(TEMPLATE)
ENV = PLACEHOLDER_ENV


def test_every_function_has_the_ca_layer() -> None:
    assert LAYERS, "no functions found in template.yaml"
    for name, layers in LAYERS.items():
        assert layers[0].logical_id == "CaLayer", name


@pytest.mark.parametrize("function", sorted(LAYERS))
def test_package_holds_every_dependency_of_its_layers(function: str) -> None:
    """A --no-deps layer must list every dependency the runtime does not provide."""
    missing = needed_distributions(LAYERS[function]) - shipped_distributions(LAYERS[function])
    assert not missing, f"{function} needs {sorted(missing)}: add them to the layer's requirements.txt"


def test_awscrt_only_in_the_kvs_sync_function() -> None:
    """And the targets function: registration's DescribeKeyValueStore is signed with SigV4A too."""
    with_crt = {name for name, layers in LAYERS.items() if "awscrt" in shipped_distributions(layers)}
    assert with_crt == {"SyncKvsFunction", "TargetsFunction"}


@pytest.mark.parametrize("function", ["IssueFunction", "RevokeFunction"])
def test_hot_path_functions_use_the_runtime_sdk(function: str) -> None:
    """The issue and revoke functions ship no boto3 stack of their own (the runtime has one)."""
    bundled = set().union(*(layer.distributions for layer in LAYERS[function]))
    assert not bundled & RUNTIME_PROVIDED


@pytest.mark.parametrize("function", sorted(LAYERS))
def test_handler_imports_with_only_its_package(function: str) -> None:
    """Imports the handler in a fresh interpreter where nothing but its package is importable, and
    checks that awscrt was loaded only where the KeyValueStore client needs it."""
    code_dir = REPO / TEMPLATE["Resources"][function]["Properties"]["CodeUri"]
    check = "print('awscrt' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", import_script(code_dir, LAYERS[function], "app", after=check)],
        cwd="/", env=ENV, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded_crt = result.stdout.strip().splitlines()[-2] == "True"
    assert loaded_crt is (function in ("SyncKvsFunction", "TargetsFunction"))


CA_LAYER_FUNCTIONS = sorted(name for name, layers in LAYERS.items() if layers[0].logical_id == "CaLayer")


def test_ca_layer_build_compiles_its_bytecode_list() -> None:
    layer = LAYERS["IssueFunction"][0]
    makefile = (layer.path / "Makefile").read_text(encoding="utf-8")
    assert "$(PYTHON312) compile_bytecode.py \"$(ARTIFACTS_DIR)/python\" bytecode.txt kmsca" in makefile
    assert "--no-compile" in makefile  # pip's bytecode would be for the build interpreter
    assert "kmsca.issuance" in layer.bytecode_modules


@pytest.mark.parametrize("function", CA_LAYER_FUNCTIONS)
def test_bytecode_list_covers_cold_start_imports(function: str) -> None:
    """A module missing from bytecode.txt is compiled at every cold start in Lambda: rewrite the
    list with `python utils/lambda_packages.py --write-bytecode-list`."""
    layer = LAYERS[function][0]
    code_dir = REPO / TEMPLATE["Resources"][function]["Properties"]["CodeUri"]
    tops = layer.top_level_modules(importlib.metadata.packages_distributions())
    loaded = cold_start_modules(code_dir, LAYERS[function], "app", {**ENV, "LAMBDA_TASK_ROOT": str(code_dir)})
    missing = {module for module in loaded if module.partition(".")[0] in tops} - layer.bytecode_modules
    assert not missing, f"not in layers/ca/bytecode.txt: {sorted(missing)}"


def _compile(target: Path, listing: Path, *packages: str) -> subprocess.CompletedProcess[str]:
    script = REPO / "layers" / "ca" / "compile_bytecode.py"
    return subprocess.run([sys.executable, str(script), str(target), str(listing), *packages],
                          capture_output=True, text=True)


def test_compile_bytecode_writes_unchecked_hash_pyc(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\n")
    (package / "used.py").write_text("Y = 2\n")
    (package / "unused.py").write_text("Z = 3\n")
    listing = tmp_path / "bytecode.txt"
    listing.write_text("# comment\npkg\npkg.used\n")
    assert _compile(tmp_path, listing).returncode == 0
    for name in ("__init__", "used"):
        pyc = Path(importlib.util.cache_from_source(str(package / f"{name}.py")))
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, name  # hash-based (bit 0), not checked against the source (bit 1 clear)
    assert not Path(importlib.util.cache_from_source(str(package / "unused.py"))).exists()


def test_compile_bytecode_compiles_named_packages_whole(tmp_path: Path) -> None:
    """The layer's own package (kmsca) is compiled whole: a new module needs no bytecode.txt entry."""
    own = tmp_path / "own"
    (own / "sub").mkdir(parents=True)
    for source in (own / "__init__.py", own / "new.py", own / "sub" / "__init__.py", own / "sub" / "deep.py"):
        source.write_text("V = 1\n")
    listing = tmp_path / "bytecode.txt"
    listing.write_text("")
    assert _compile(tmp_path, listing, "own").returncode == 0
    for source in own.rglob("*.py"):
        assert Path(importlib.util.cache_from_source(str(source))).exists(), source


def test_compile_bytecode_refuses_a_stale_list(tmp_path: Path) -> None:
    listing = tmp_path / "bytecode.txt"
    listing.write_text("gone.module\n")
    result = _compile(tmp_path, listing)
    assert result.returncode == 1
    assert "gone.module" in result.stderr


def test_bytecode_list_names_only_existing_modules() -> None:
    """A stale entry would fail `sam build` (compile_bytecode.py refuses it): caught here first."""
    layer = LAYERS["IssueFunction"][0]
    roots = [layer.path, *(Path(entry) for entry in sys.path if entry and Path(entry).is_dir())]

    def has_source(module: str) -> bool:
        base = Path(*module.split("."))
        return any((root / base / "__init__.py").is_file() or (root / base.with_suffix(".py")).is_file()
                   for root in roots)

    gone = sorted(module for module in layer.bytecode_modules if not has_source(module))
    assert not gone, f"in layers/ca/bytecode.txt but not a Python source module: {gone}"
