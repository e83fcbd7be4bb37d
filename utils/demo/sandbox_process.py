"""The local sandbox (``python -m utils.sandbox``) as the demo's subprocess, and the environment of
the processes that talk to it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from utils.demo.constants import REPO, TLS_HOST, WORKLOAD_ACCOUNT
from utils.demo.output import StepFailed, detail


class SandboxProcess:
    """``python -m utils.sandbox`` as a subprocess, ready once its state file is written.

    The state file is JSON: ``{endpoint_url, region, stack_name, functions, outputs, operator, admin,
    stacks, admins, pid}`` (``stacks``: the edge stack of the workload account; ``admins``: each
    account's administrator).
    """

    def __init__(self, work: Path, timeout: float) -> None:
        self.state_file = work / "state.json"
        self.log_file = work / "sandbox.log"
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {}

    def command(self, port: int) -> list[str]:
        """The command line that starts the sandbox on ``port`` of 127.0.0.1."""
        # Indexes lag their table by a second, as DynamoDB's may: the demo shows the CA copes. One
        # workload account with the edge stack deployed, whose callers the CA stack accepts.
        return [
            sys.executable, "-m", "utils.sandbox", "--port", str(port), "--state-file", str(self.state_file),
            "--gsi-lag", "1", "--workload-account", WORKLOAD_ACCOUNT, "--deploy-edge",
            "--parameter-overrides", f"CallerAccountIds={WORKLOAD_ACCOUNT}",
        ]  # fmt: skip

    def start(self) -> dict[str, Any]:
        """Start the sandbox and wait for its state file.

        Returns:
            The state.

        Raises:
            StepFailed: it exited, or wrote no valid state within the timeout (its output is shown).
        """
        command = self.command(free_port())
        detail("$ python " + " ".join(command[1:]).replace(str(self.state_file), "<tmp>/state.json"))
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StepFailed(f"the sandbox exited with status {self.process.returncode}\n{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                state = json.loads(self.state_file.read_text(encoding="utf-8"))
                if isinstance(state, dict) and state.get("endpoint_url"):
                    self.state = state
                    return state
            time.sleep(0.2)
        raise StepFailed(f"no state file after {self.timeout:.0f} s\n{self.log_tail()}")

    def stop(self) -> str:
        """Stop the sandbox: SIGTERM, then SIGKILL after 10 s. Returns how it ended."""
        process = self.process
        if process is None or process.poll() is not None:
            return "not running"
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
            return f"stopped (exit status {process.returncode})"
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            return "killed after 10 s without stopping"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the sandbox's output."""
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no sandbox output)"
        tail = text.splitlines()[-lines:]
        return "sandbox output (last lines):\n" + "\n".join("  | " + line for line in tail)


def client_environment(state: dict[str, Any], base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a process that talks to the sandbox: ``base`` (default ``os.environ``)
    without ``AWS_*``/``KMSCA_*`` settings, plus the sandbox endpoint, region and the operator's
    credentials: the sandbox enforces IAM, and the operator holds only the template's managed
    policies (RequesterPolicy, RevokerPolicy), as a user who attached them would. Real
    credentials are never sent to the sandbox."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith(("AWS_", "KMSCA_"))}
    env.update(
        AWS_ENDPOINT_URL=state["endpoint_url"],
        AWS_REGION=state["region"],
        AWS_DEFAULT_REGION=state["region"],
        **state["operator"],
    )
    return env


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((TLS_HOST, 0))
        return int(sock.getsockname()[1])
