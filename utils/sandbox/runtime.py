"""The Lambda runtime contract of the sandbox: functions run in worker processes of their own.

Each ``AWS::Serverless::Function`` of the template becomes a :class:`LocalFunction`. An
invocation goes to an idle worker of that function (``utils/sandbox/worker.py`` in a child
process, like a Lambda execution environment) or starts a new one (a cold start), up to
``max_workers`` at once; more concurrent invocations wait, as with reserved concurrency.
A worker's environment is exactly the function's: its template variables, the Lambda runtime
variables and the temporary credentials of its own IAM role, so a function can do what its
role allows and nothing else, and no module global or client leaks between functions.

The function's Timeout is enforced: a worker still running then is killed and the
invocation fails with Lambda's ``Task timed out after N seconds`` (``Sandbox.TimedOut``).
The handler's stdout and stderr lines go to this process's logger
``utils.sandbox.functions.<FunctionLogicalId>`` and to :attr:`LocalFunction.log_lines`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .template import Function

__all__ = ["Busy", "FunctionError", "InvocationResult", "LocalFunction", "error_document"]

logger = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).resolve().with_name("worker.py")
#: Variables of the host process a function must not inherit (they describe the host's AWS setup).
HOST_ENV_PREFIXES = ("AWS_", "POWERTOOLS_", "_HANDLER", "_X_AMZN_", "LAMBDA_", "PYTHONPATH")
#: How many log lines of a function the sandbox keeps (all workers together).
LOG_LINES_KEPT = 2000


def error_document(error_type: str, message: str, stack: list[str] | None = None, request_id: str = "") -> bytes:
    """Lambda's error payload: {"errorMessage", "errorType", "requestId", "stackTrace"}."""
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack or []}
    ).encode()


class FunctionError(Exception):
    """A handler raised: ``error_type`` is the exception class name (the domain error code).

    ``error_message``: str(exception); ``stack_trace``: list of formatted frames;
    ``payload``: the raw error document Lambda returned.
    """

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = dict(payload)
        self.error_type: str = str(payload.get("errorType", ""))
        self.error_message: str = str(payload.get("errorMessage", ""))
        self.stack_trace: list[str] = list(payload.get("stackTrace") or [])
        super().__init__(f"{self.error_type}: {self.error_message}")


class Busy(Exception):
    """Every worker of the function stayed busy past the caller's wait (HTTP API: 429)."""


@dataclass(frozen=True)
class InvocationResult:
    """Outcome of one invocation.

    ``payload``: the response body (JSON bytes); ``function_error``: "Unhandled" when the
    handler failed (payload is then the error document), else None; ``duration_ms``: float.
    """

    request_id: str
    payload: bytes
    function_error: str | None = None
    duration_ms: float = 0.0

    def json(self) -> Any:
        """The payload decoded (None for an empty payload)."""
        return json.loads(self.payload) if self.payload else None

    def raise_for_error(self) -> Any:
        """The decoded payload, or :class:`FunctionError` if the handler failed."""
        if self.function_error:
            raise FunctionError(self.json() or {})
        return self.json()


class _Worker:
    """One child process running ``worker.py`` for one function."""

    def __init__(self, function: LocalFunction, env: Mapping[str, str]) -> None:
        self.function = function
        read_fd, write_fd = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-u", str(WORKER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**env, "SANDBOX_REPLY_FD": str(write_fd)},
                pass_fds=(write_fd,),
                cwd=str(function.spec.code_uri),
                text=True,
                encoding="utf-8",
            )
        finally:
            os.close(write_fd)
        self.replies: IO[str] = os.fdopen(read_fd, "r", encoding="utf-8")
        for stream, label in ((self.process.stdout, "stdout"), (self.process.stderr, "stderr")):
            threading.Thread(
                target=function.pump_logs, args=(stream, label), name=f"logs-{function.logical_id}", daemon=True
            ).start()

    def invoke(self, request_id: str, event: Any, timeout: float) -> InvocationResult:
        """Send one request and wait for its reply; kill the worker after ``timeout`` seconds."""
        deadline_ms = int(time.time() * 1000 + timeout * 1000)
        line = json.dumps({"request_id": request_id, "event": event, "deadline_ms": deadline_ms}) + "\n"
        started = time.monotonic()
        try:
            if self.process.stdin is None:
                raise BrokenPipeError("worker has no stdin")
            self.process.stdin.write(line)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._died(request_id, started)
        reply: list[str] = []
        reader = threading.Thread(target=lambda: reply.append(self.replies.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive():
            self.kill()
            reader.join(5)
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            message = f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds"
            return InvocationResult(
                request_id,
                error_document("Sandbox.Timedout", message),
                "Unhandled",
                (time.monotonic() - started) * 1000,
            )
        if not reply or not reply[0]:
            return self._died(request_id, started)
        outcome = json.loads(reply[0])
        return InvocationResult(
            request_id, outcome["payload"].encode("utf-8"), outcome["function_error"], float(outcome["duration_ms"])
        )

    def _died(self, request_id: str, started: float) -> InvocationResult:
        self.kill()
        code = self.process.returncode
        message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
        return InvocationResult(
            request_id, error_document("Runtime.ExitError", message), "Unhandled", (time.monotonic() - started) * 1000
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.wait(5)

    def close(self) -> None:
        """End the worker: close its stdin (it exits), then kill it if it lingers."""
        with contextlib.suppress(Exception):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(2)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(Exception):
            self.replies.close()


class LocalFunction:
    """One ``AWS::Serverless::Function`` of the template, run in worker processes.

    ``name``: physical name (``<stack>-<LogicalId>`` unless FunctionName is set); ``arn``: its
    Lambda ARN; ``role_arn``: its execution role; ``env``: the environment the handler sees
    (template variables and Lambda runtime variables; read when a worker starts, so a change
    applies to the next cold start); ``credentials``: the role session's AWS variables.
    ``layer_paths``: directories put on ``sys.path`` after the code directory.
    """

    def __init__(
        self,
        spec: Function,
        *,
        name: str,
        arn: str,
        runtime_env: Mapping[str, str],
        role_arn: str = "",
        layer_paths: tuple[str, ...] = (),
        max_workers: int = 4,
    ) -> None:
        self.spec = spec
        self.logical_id = spec.logical_id
        self.name = name
        self.arn = arn
        self.role_arn = role_arn
        self.layer_paths = layer_paths
        self.max_workers = max_workers
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}"
        env = {**spec.environment}
        env.setdefault("POWERTOOLS_METRICS_NAMESPACE", name)
        env.update(runtime_env)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
                "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group_name,
                "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream_name,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python3.12'}",
                "LAMBDA_TASK_ROOT": str(spec.code_uri),
                "_HANDLER": spec.handler,
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        self.env: dict[str, str] = env
        self.credentials: dict[str, str] = {}
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES_KEPT)
        self.cold_starts = 0
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._lock = threading.Condition()
        self._closed = False
        self._logger = logging.getLogger(f"utils.sandbox.functions.{spec.logical_id}")

    def worker_environment(self) -> dict[str, str]:
        """The complete environment of a new worker (host variables minus the host's AWS setup)."""
        host = {k: v for k, v in os.environ.items() if not k.startswith(HOST_ENV_PREFIXES)}
        return {
            **host,
            **self.env,
            **self.credentials,
            "SANDBOX_FUNCTION_ARN": self.arn,
            "SANDBOX_LAYER_PATHS": os.pathsep.join(self.layer_paths),
        }

    def pump_logs(self, stream: IO[str] | None, label: str) -> None:
        """Copy a worker's output lines to the logger and :attr:`log_lines` until it closes."""
        if stream is None:
            return
        with contextlib.suppress(ValueError, OSError):
            for line in stream:
                text = line.rstrip("\n")
                self.log_lines.append(text)
                self._logger.debug("%s %s", label, text)

    def _acquire(self, wait: float) -> _Worker:
        deadline = time.monotonic() + wait
        with self._lock:
            while True:
                if self._closed:
                    raise Busy(f"{self.name}: the sandbox is stopping")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        return worker
                    self._all.remove(worker)
                if len(self._all) < self.max_workers:
                    worker = _Worker(self, self.worker_environment())
                    self._all.append(worker)
                    self.cold_starts += 1
                    return worker
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Busy(f"{self.name}: all {self.max_workers} workers stayed busy for {wait:.0f} s")
                self._lock.wait(left)

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if worker.alive and not self._closed:
                self._idle.append(worker)
            else:
                if worker in self._all:
                    self._all.remove(worker)
                worker.close()
            self._lock.notify()

    def run(self, event: Any, request_id: str, *, wait: float | None = None) -> InvocationResult:
        """Invoke the handler in a worker; waits up to ``wait`` s (default: Timeout) for a free one.

        Raises:
            Busy: every worker stayed busy for ``wait`` seconds.
        """
        worker = self._acquire(self.spec.timeout if wait is None else wait)
        try:
            return worker.invoke(request_id, event, float(self.spec.timeout))
        finally:
            self._release(worker)

    def close(self) -> None:
        """Stop every worker (a running invocation is killed)."""
        with self._lock:
            self._closed = True
            workers, self._all, self._idle = list(self._all), [], []
            self._lock.notify_all()
        for worker in workers:
            worker.close()
