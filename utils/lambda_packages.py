"""What each function ships: its layers (from template.yaml), each layer's ``requirements.txt``
resolved to the distributions installed in this environment, plus what the Lambda Python runtime
provides itself (boto3 and its dependencies).

Used by the benchmark's ``--cold`` section (a fresh process may import only what the function
ships, so a package installed in the development virtualenv but absent from the function's
layers, such as ``awscrt`` outside the KeyValueStore sync function, stays unimportable there, as
in Lambda) and by ``tests/deploy/test_packaging.py``. Also which modules a layer ships bytecode for (Lambda's
/opt is read-only: the rest is compiled at every cold start), and ``--write-bytecode-list`` to rewrite
``layers/ca/bytecode.txt``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]

# The python3.12 runtime's own SDK (/var/runtime): importable by every function without a layer.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"})


# Every setting a handler reads at cold start, with placeholder values (no AWS call is made at import).
PLACEHOLDER_ENV: Mapping[str, str] = {
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "CA_TABLE_NAME": "table",
    "PUBLIC_BUCKET_NAME": "public",
    "INTERNAL_BUCKET_NAME": "internal",
    "ROOT_CA_KEY_ID": "arn:aws:kms:eu-west-1:123456789012:key/root",
    "ISSUING_CA_KEY_ID": "arn:aws:kms:eu-west-1:123456789012:key/issuing",
    "MAX_LIFETIME_DAYS": "365",
    "DEFAULT_LIFETIME_DAYS": "90",
    "CRL_VALIDITY_HOURS": "24",
    "ACM_ROTATION_WINDOW_DAYS": "30",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:topic",
    "KVS_ARN": "arn:aws:cloudfront::123456789012:key-value-store/0123",
    "EDGE_ROLE_NAME_PREFIX": "kmsca-dev-edge-",
    "EVENT_SOURCE": "kmsca.test",
    "OCSP_VALIDITY_MINUTES": "60",
    "POWERTOOLS_SERVICE_NAME": "kmsca-test",
    "POWERTOOLS_METRICS_NAMESPACE": "kmsca",
    "PATH": "/usr/bin:/bin",
}


def function_layers(template: Mapping[str, Any], repo: Path = REPO) -> dict[str, list[Layer]]:
    """Logical id of every ``AWS::Serverless::Function`` -> its layers (Globals first, as SAM
    merges them)."""
    resources = template["Resources"]
    global_layers = template.get("Globals", {}).get("Function", {}).get("Layers", [])
    result = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        layers = []
        for ref in [*global_layers, *resource["Properties"].get("Layers", [])]:
            layer = resources[ref["Ref"]]
            build = (layer.get("Metadata") or {}).get("BuildMethod", "")
            layers.append(Layer(ref["Ref"], repo / layer["Properties"]["ContentUri"], build))
        result[logical_id] = layers
    return result


@dataclass(frozen=True)
class Layer:
    """A layer of the template: ``path`` its ``ContentUri``; ``build_method`` from its Metadata
    (``makefile``: the layer's Makefile says what it ships; with ``pip install --no-deps``, exactly
    what requirements.txt lists)."""

    logical_id: str
    path: Path
    build_method: str

    @property
    def requirements(self) -> list[Requirement]:
        return layer_requirements(self.path)

    @property
    def makefile(self) -> str:
        """The layer's Makefile text for a makefile build, else empty."""
        path = self.path / "Makefile"
        return path.read_text(encoding="utf-8") if self.build_method == "makefile" and path.exists() else ""

    @property
    def ships_all_bytecode(self) -> bool:
        """The build compiles every module of the layer (``compileall``, see layers/sdk/Makefile)."""
        return "-m compileall" in self.makefile

    @property
    def bytecode_modules(self) -> frozenset[str]:
        """Modules the built layer ships CPython 3.12 bytecode for when it compiles a list of them
        (``bytecode.txt``, see layers/ca/compile_bytecode.py); empty: none (or all, see
        :attr:`ships_all_bytecode`). Lambda's /opt is read-only: a module without bytecode is compiled
        at each cold start."""
        listing = self.path / "bytecode.txt"
        if "bytecode.txt" not in self.makefile or not listing.exists():
            return frozenset()
        lines = (line.strip() for line in listing.read_text(encoding="utf-8").splitlines())
        return frozenset(line for line in lines if line and not line.startswith("#")) | self.own_modules

    @property
    def own_modules(self) -> frozenset[str]:
        """Every module of the layer's own source packages (``kmsca``), which the build compiles
        whole (``compile_bytecode.py ... kmsca``)."""
        modules = set()
        for package in (entry for entry in self.path.iterdir() if (entry / "__init__.py").is_file()):
            for source in package.rglob("*.py"):
                parts = source.relative_to(self.path).with_suffix("").parts
                modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        return frozenset(modules)

    def top_level_modules(self, packages: Mapping[str, list[str]]) -> set[str]:
        """Top-level modules the built layer holds: its distributions' (``packages``: module ->
        distributions, as ``importlib.metadata.packages_distributions()``) and its own sources'
        packages (``kmsca``)."""
        dists = self.distributions
        tops = {module for module, names in packages.items() if {canonicalize_name(n) for n in names} & dists}
        tops.update(entry.name for entry in self.path.iterdir() if (entry / "__init__.py").is_file())
        return tops

    @property
    def distributions(self) -> set[str]:
        """Canonical names of the distributions the built layer contains."""
        if "--no-deps" in self.makefile:
            return {canonicalize_name(req.name) for req in self.requirements}
        return closure(self.requirements)


def layer_requirements(layer_dir: Path) -> list[Requirement]:
    """The requirements a layer is built from (``requirements.txt``; comments and blanks skipped)."""
    path = layer_dir / "requirements.txt"
    if not path.exists():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line]


def closure(requirements: Iterable[Requirement]) -> set[str]:
    """Canonical names of the installed distributions ``requirements`` pull in, recursively,
    extras and environment markers honoured."""
    found: set[str] = set()
    pending = [(req, frozenset(req.extras)) for req in requirements]
    while pending:
        req, extras = pending.pop()
        name = canonicalize_name(req.name)
        key = name + "[" + ",".join(sorted(extras)) + "]"
        if key in found:
            continue
        found.add(key)
        found.add(name)
        for text in metadata.requires(req.name) or []:
            child = Requirement(text)
            wanted = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in wanted):
                pending.append((child, frozenset(child.extras)))
    return {name for name in found if "[" not in name}


def shipped_distributions(layers: Iterable[Layer]) -> set[str]:
    """Distributions a function can import: its layers' plus the runtime's SDK."""
    return set(RUNTIME_PROVIDED).union(*(layer.distributions for layer in layers))


def needed_distributions(layers: Iterable[Layer]) -> set[str]:
    """Distributions a function's layers' requirements need, dependencies included."""
    return closure(req for layer in layers for req in layer.requirements)


def hidden_modules(shipped: set[str], packages: Mapping[str, list[str]] | None = None) -> set[str]:
    """Top-level modules installed here (or in ``packages``: module -> distributions of another
    interpreter, :func:`interpreter_packages`) that belong to no shipped distribution."""
    hidden = set()
    for module, dists in (metadata.packages_distributions() if packages is None else packages).items():
        if not {canonicalize_name(dist) for dist in dists} & shipped:
            hidden.add(module)
    return hidden


def layer_sources(layers: Iterable[Layer]) -> set[str]:
    """Top-level packages and modules in the layers' source directories (``kmsca`` of the CA
    layer), which the built layer ships as they are."""
    found = set()
    for layer in layers:
        for entry in layer.path.iterdir() if layer.path.is_dir() else ():
            if (entry / "__init__.py").is_file():
                found.add(entry.name)
            elif entry.suffix == ".py" and entry.is_file():
                found.add(entry.stem)
    return found


def interpreter_packages(python: str) -> dict[str, list[str]]:
    """``importlib.metadata.packages_distributions()`` of the interpreter ``python`` (a path).

    Raises:
        subprocess.CalledProcessError: the interpreter failed to run.
    """
    code = "import importlib.metadata as m, json; print(json.dumps(m.packages_distributions()))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


# The child: the clock the parent reads stops at the READY line, when the handler module is
# importable (what Lambda's Init Duration ends with: the runtime then waits for the first event);
# the child then leaves with os._exit, as a Lambda process is never torn down on the request path.
# Lambda's /var/task and /opt are read-only: modules of the function's code and layers are loaded
# from their bytecode only where the package ships it, else compiled from source (nothing written).
READY = "READY"
_CHILD = """
import importlib.machinery, os, resource, sys, time
sys.dont_write_bytecode = True
HIDDEN = frozenset({hidden!r})
FROM_SOURCE = frozenset({source_tops!r})
SHIPPED_BYTECODE = frozenset({bytecode!r})
class _Compiled(importlib.machinery.SourceFileLoader):  # no bytecode in the package: compile
    def get_code(self, fullname):
        return compile(self.get_data(self.path), self.path, "exec", dont_inherit=True)
class _AsPackaged:  # a meta path finder (not importlib.abc's base class: importing it costs ~10 ms)
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not in this function's package)", name=name)
        if top not in FROM_SOURCE or name in SHIPPED_BYTECODE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _Compiled(spec.loader.name, spec.loader.path)
        return spec
sys.meta_path.insert(0, _AsPackaged())
sys.path[:0] = {paths!r}
started = time.perf_counter()
import {module}
elapsed = (time.perf_counter() - started) * 1000
usage = resource.getrusage(resource.RUSAGE_SELF)
{after}
sys.stdout.write(f"{ready} {{elapsed!r}} {{(usage.ru_utime + usage.ru_stime) * 1000!r}}\\n")
sys.stdout.flush()
os._exit(0)
"""


def import_script(code_dir: Path, layers: Iterable[Layer], module: str, after: str = "",
                  packages: Mapping[str, list[str]] | None = None) -> str:
    """Python source that imports the handler ``module`` as Lambda would: the code directory, then
    the layers' sources on ``sys.path``; every installed distribution the function does not ship
    made unimportable; the function's code and its layers' modules compiled from source unless the
    layer ships their bytecode (:attr:`Layer.bytecode_modules`), and no bytecode written.
    ``packages``: the running interpreter's module -> distributions map, when it is not this one.
    Runs ``after``, then writes its last line, ``READY <import ms> <process CPU ms until then>``,
    and exits at once with ``os._exit(0)`` (no interpreter teardown)."""
    layers = list(layers)
    packages = metadata.packages_distributions() if packages is None else packages
    # A layer's own sources (layers/ca/kmsca) are on the path; the installed copy of this repository
    # (pyproject.toml: kmsca, certcli) must not hide them, nor make them importable without the layer.
    hidden = hidden_modules(shipped_distributions(layers), packages) - layer_sources(layers)
    source_tops = {path.stem for path in code_dir.glob("*.py")}.union(
        *(layer.top_level_modules(packages) for layer in layers if not layer.ships_all_bytecode))
    bytecode = set().union(*(layer.bytecode_modules for layer in layers))
    paths = [str(code_dir), *(str(layer.path) for layer in layers)]
    return _CHILD.format(hidden=sorted(hidden), source_tops=sorted(source_tops), bytecode=sorted(bytecode),
                         paths=paths, module=module, after=after, ready=READY)


def cold_start_modules(code_dir: Path, layers: Iterable[Layer], module: str, env: Mapping[str, str],
                       python: str = sys.executable) -> set[str]:
    """Names of the modules with a ``.py`` source that importing the handler ``module`` loads
    from ``layers`` (not the runtime's, not the standard library's), in a fresh ``python``.

    Raises:
        RuntimeError: the import failed (stderr in the message).
    """
    layers = list(layers)
    packages = metadata.packages_distributions() if python == sys.executable else interpreter_packages(python)
    tops = set().union(*(layer.top_level_modules(packages) for layer in layers))
    after = ("import json; print(json.dumps(sorted(name for name, m in list(sys.modules.items()) "
             f"if name.partition('.')[0] in {sorted(tops)!r} "
             "and str(getattr(m, '__file__', '') or '').endswith('.py'))))")
    script = import_script(code_dir, layers, module, after=after, packages=packages)
    out = subprocess.run([python, "-c", script], cwd="/", env=dict(env), capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"import {module} from {code_dir} failed:\n{out.stderr[-3000:]}")
    return set(json.loads(out.stdout.strip().splitlines()[-2]))


def bytecode_list(layer_id: str, template: Mapping[str, Any], python: str = sys.executable) -> list[str]:
    """The layer's ``bytecode.txt``, sorted: the modules of its distributions that some function
    using it imports at cold start (a fresh ``import app`` in ``python`` with :data:`PLACEHOLDER_ENV`);
    the layer's own ``kmsca`` is compiled whole, not listed."""
    layers = function_layers(template)
    packages = metadata.packages_distributions() if python == sys.executable else interpreter_packages(python)
    modules: set[str] = set()
    for name, used in layers.items():
        layer = next((layer for layer in used if layer.logical_id == layer_id), None)
        if layer is None:
            continue
        code_dir = REPO / template["Resources"][name]["Properties"]["CodeUri"]
        env = {**PLACEHOLDER_ENV, "LAMBDA_TASK_ROOT": str(code_dir)}
        tops = layer.top_level_modules(packages)
        modules |= {module for module in cold_start_modules(code_dir, used, "app", env, python)
                    if module.partition(".")[0] in tops}
        modules -= layer.own_modules  # compiled whole by the build (compile_bytecode.py ... kmsca)
    return sorted(modules)


def main() -> int:
    """``python utils/lambda_packages.py --write-bytecode-list``: rewrite layers/ca/bytecode.txt."""
    import argparse

    sys.path[:0] = [str(REPO), str(REPO / "layers" / "ca")]
    from utils.sandbox.template import load_template

    parser = argparse.ArgumentParser(description="What each function ships.")
    parser.add_argument("--write-bytecode-list", action="store_true",
                        help="rewrite layers/ca/bytecode.txt from the functions' cold-start imports")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter to import the handlers with (default this one)")
    args = parser.parse_args()
    if not args.write_bytecode_list:
        parser.error("nothing to do (--write-bytecode-list)")
    listing = REPO / "layers" / "ca" / "bytecode.txt"
    modules = bytecode_list("CaLayer", load_template(REPO / "template.yaml"), args.python)
    header = ("# Modules of the CA layer's distributions shipped as CPython 3.12 bytecode (Makefile,\n"
              "# compile_bytecode.py; kmsca is compiled whole): those the functions import at cold start.\n"
              "# Written by `python utils/lambda_packages.py --write-bytecode-list`;\n"
              "# tests/deploy/test_packaging.py checks that it covers every function's cold-start imports.\n")
    listing.write_text(header + "".join(f"{module}\n" for module in modules), encoding="utf-8")
    print(f"{listing}: {len(modules)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
