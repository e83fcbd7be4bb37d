"""Issuing steps: a client certificate (with PKCS#12) and a server certificate through the CLIs."""

from __future__ import annotations

import json
import os
import secrets

from utils.demo.constants import CLIENT_CN, SERVER_CN
from utils.demo.context import Demo
from utils.demo.output import StepFailed, detail
from utils.demo.state import Issued


def issue_with_cli(demo: Demo, script: str, name: str, *args: str) -> Issued:
    """Run ``utils/<script>`` with ``--name name --json`` (files into the output directory), show
    what it issued and wrote.

    Raises:
        StepFailed: the CLI exited with an error.
    """
    result = demo.cli(script, *args, "--out-dir", str(demo.out_dir), "--name", name, "--force", "--json")
    if result.returncode != 0:
        raise StepFailed(f"{script} exited with status {result.returncode}: {result.stderr.strip()}")
    info = json.loads(result.stdout)
    for line in result.stderr.strip().splitlines():
        detail(line)
    detail(f"serial {info['serial_number']}  subject {info['subject']}  not after {info['not_after']}")
    detail("wrote " + ", ".join(demo.shown(p) for p in info["written"]))
    return Issued.from_summary(info)


def step_client_cert(demo: Demo) -> str:
    """Issue a client certificate (and a PKCS#12) with utils/client-cert.py."""
    password_file = demo.work / "p12-password"
    password = secrets.token_urlsafe(18)
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    info = demo.state.client = issue_with_cli(
        demo, "client-cert.py", CLIENT_CN, CLIENT_CN,
        "--organization", "KMS CA demo", "--san", "uri:spiffe://demo.example/client",
        "--lifetime-days", "30", "--pkcs12", "--pkcs12-password-file", str(password_file),
    )  # fmt: skip
    key = info.key
    mode = key.stat().st_mode & 0o777
    if mode != 0o600:
        raise StepFailed(f"{key} has mode {mode:o}, expected 600")
    detail(f"{demo.shown(str(key))} has mode 0600")
    result = demo.run(
        ["openssl", "pkcs12", "-in", str(info.file("pkcs12")), "-noout", "-passin", f"file:{password_file}"]
    )
    detail(f"openssl reads the PKCS#12 file {result.stderr.strip() or 'fine'}")
    return f"serial {info.serial_number}, expires {info.not_after}"


def step_server_cert(demo: Demo) -> str:
    """Issue a server certificate for localhost with utils/server-cert.py."""
    info = demo.state.server = issue_with_cli(
        demo, "server-cert.py", SERVER_CN, SERVER_CN, "--san", "dns:localhost", "--san", "ip:127.0.0.1"
    )
    return f"serial {info.serial_number}, expires {info.not_after}"
