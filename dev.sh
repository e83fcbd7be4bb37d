#!/usr/bin/env bash
# Developer entry point. Sets up what it needs (a virtualenv, openssl) and runs one job:
#   ./dev.sh demo     the demo on the local sandbox (no AWS account needed)
#   ./dev.sh test     the test suite
#   ./dev.sh lint     ruff, mypy (CA core, tools, functions, test support), cfn-lint, connection function embedded in the template
#   ./dev.sh sam      sam validate --lint and sam build (SAM CLI in its own virtualenv)
#   ./dev.sh bench    the benchmark (AWS calls and latency per issuance)
#   ./dev.sh sandbox  start the local sandbox in the foreground (Ctrl-C stops it)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
SAM_VENV=${SAM_VENV:-.venv-sam}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
    # Install Debian packages that are missing; root or sudo needed.
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing ${missing[*]} (apt-get)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

system_deps() {
    command -v openssl >/dev/null 2>&1 || apt_install openssl
    # nginx is the demo's independent relying party (mutual TLS with ssl_crl). The demo runs its
    # own nginx on 127.0.0.1 with a temporary prefix; without nginx only that step fails.
    # Note: Debian's package also enables the system nginx service (port 80).
    if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
        apt_install nginx-light || log "could not install nginx-light; the demo's nginx step will fail"
    fi
    # Node.js runs the CloudFront connection function's tests and the demo's edge check.
    command -v node >/dev/null 2>&1 || apt_install nodejs || log "could not install nodejs; connection-function tests will fail"
}

venv() {
    local stamp="$VENV/.installed"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
        || [ -n "$(find layers -name requirements.txt -newer "$stamp")" ] \
        || ! "$VENV/bin/python" -I -c "import importlib.metadata as m; m.distribution('kmsca')" 2>/dev/null; then
        log "installing Python requirements into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
        # this repository as a package (pyproject.toml), editable: the CLIs (certcli, kmsca-* commands)
        # import the CA core from it. Its dependencies are already satisfied by the pinned requirements.
        "$VENV/bin/python" -m pip install -q -e .
        touch "$stamp"
    fi
}

sam_venv() {
    if [ ! -x "$SAM_VENV/bin/sam" ]; then
        log "installing the AWS SAM CLI into $SAM_VENV"
        "$PYTHON" -m venv "$SAM_VENV"
        "$SAM_VENV/bin/python" -m pip install -q --upgrade pip
        "$SAM_VENV/bin/python" -m pip install -q aws-sam-cli
    fi
    # sam build for the python3.12 runtime needs a python3.12 on PATH; pyenv machines have one.
    # (a pyenv shim named python3.12 exists for every installed version, so run it to be sure)
    if ! python3.12 --version >/dev/null 2>&1 && command -v pyenv >/dev/null 2>&1; then
        local v312
        v312=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12' | tail -n 1 || true)
        [ -n "$v312" ] && export PYENV_VERSION="$(pyenv version-name 2>/dev/null | cut -d: -f1):$v312"
    fi
    export SAM_CLI_TELEMETRY=0
}

job=${1:-}
shift || true
case "$job" in
    demo)
        system_deps; venv
        exec "$VENV/bin/python" -m utils.demo "$@"
        ;;
    test)
        system_deps; venv
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    lint)
        venv
        "$VENV/bin/ruff" check .
        "$VENV/bin/mypy" --ignore-missing-imports layers/ca/kmsca
        # the tools (sandbox, demo, CLIs, benchmark) import the core: the layer is on the path
        MYPYPATH=layers/ca "$VENV/bin/mypy" --ignore-missing-imports utils
        MYPYPATH=layers/ca:. "$VENV/bin/mypy" --ignore-missing-imports --explicit-package-bases tests/support
        # each function is its own app.py: package bases keep them apart; the layer is on the path, as in Lambda
        MYPYPATH=layers/ca "$VENV/bin/mypy" --ignore-missing-imports --explicit-package-bases functions
        "$VENV/bin/cfn-lint" template.yaml edge/template.yaml
        "$VENV/bin/python" utils/embed-connection-function.py --check
        ;;
    sam)
        command -v make >/dev/null 2>&1 || apt_install make  # the CA layer builds with BuildMethod: makefile
        sam_venv
        "$SAM_VENV/bin/sam" validate --lint
        "$SAM_VENV/bin/sam" validate --lint --template edge/template.yaml
        "$SAM_VENV/bin/sam" build --build-dir "${SAM_BUILD_DIR:-.aws-sam/build}" "$@"
        ;;
    bench)
        venv
        # the cold section runs the handlers with CPython 3.12 (the functions' runtime) in .venv-bench312
        [ -x .venv-bench312/bin/python ] || "$VENV/bin/python" utils/cold_python.py
        exec "$VENV/bin/python" utils/benchmark.py "$@"
        ;;
    sandbox)
        venv
        exec "$VENV/bin/python" -m utils.sandbox "$@"
        ;;
    *)
        echo "usage: ./dev.sh demo|test|lint|sam|bench|sandbox [args]" >&2
        exit 2
        ;;
esac
