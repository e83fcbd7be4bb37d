"""First steps: the prerequisites are there, and the local sandbox runs."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

from utils.demo.context import Demo
from utils.demo.nginx import find_nginx
from utils.demo.output import StepFailed, detail
from utils.demo.sandbox_process import client_environment


def step_prerequisites(demo: Demo) -> str:
    """Python packages and the openssl command."""
    missing = [m for m in ("boto3", "cryptography", "moto") if importlib.util.find_spec(m) is None]
    if missing:
        raise StepFailed(f"missing Python packages {', '.join(missing)}: pip install -r requirements-dev.txt")
    if not shutil.which("openssl"):
        raise StepFailed("the openssl command is not on PATH")
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=False).stdout.strip()
    import cryptography

    detail(f"Python {sys.version.split()[0]}, cryptography {cryptography.__version__}, {version}")
    nginx = find_nginx()
    if nginx:
        detail(subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False).stderr.strip())
    else:
        detail("nginx is not installed: the nginx step will fail (apt-get install nginx-light, or ./dev.sh demo)")
    if shutil.which("node"):
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
        detail(f"Node.js {node} (runs the CloudFront connection function)")
    else:
        detail("Node.js is not installed: the connection function step will fail (apt-get install nodejs)")
    if importlib.util.find_spec("awscrt") is None:
        detail("awscrt is not installed: the KeyValueStore step will fail (pip install 'botocore[crt]', SigV4A)")
    return version


def step_sandbox(demo: Demo) -> str:
    """Start the sandbox and point subprocesses at it."""
    state = demo.sandbox.start()
    demo.env = client_environment(state)
    detail(f"export AWS_ENDPOINT_URL={state['endpoint_url']} AWS_REGION={state['region']}")
    detail(
        f"stack {state.get('stack_name')}: "
        + ", ".join(f"{k}={v}" for k, v in sorted(state.get("outputs", {}).items()))
    )
    return f"listening on {state['endpoint_url']}"
