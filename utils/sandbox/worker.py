"""One function's execution environment in the sandbox: a child process, like a Lambda container.

Started by :class:`utils.sandbox.runtime.LocalFunction` as ``python worker.py`` with the
function's complete environment (its template variables, the Lambda runtime variables, and
the credentials of its own IAM role from ``sts:AssumeRole``), so no credential, client or
module global of one function can reach another. ``sys.path`` is what Lambda's Python runtime
gives: the function's code directory first, then its layers (``SANDBOX_LAYER_PATHS``).

Protocol (one JSON document per line):

- requests on stdin: ``{"request_id": str, "event": any, "deadline_ms": int}``;
- replies on file descriptor ``SANDBOX_REPLY_FD``: ``{"payload": str (JSON text),
  "function_error": "Unhandled" | null, "duration_ms": float}``.

The handler's own stdout and stderr (Powertools logs, prints) stay free for logs. The handler
module is imported on the first request (the cold start); an import failure is answered
like the runtime does (``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``, ...) and
retried on the next request. This file imports nothing from the sandbox package (which
imports moto): it must start as fast as a Lambda runtime does.
"""

from __future__ import annotations

import decimal
import importlib.util
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = os.path.abspath(__file__)


class LambdaContext:
    """What the Python runtime passes as ``context`` (awslambdaric's attributes).

    ``memory_limit_in_mb`` is a string, as in the real runtime.
    """

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        env = os.environ
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = env.get("SANDBOX_FUNCTION_ARN", "")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = request_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's Timeout (never negative)."""
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r})"


def error_document(error_type: str, message: str, stack: list[str] | None = None, request_id: str = "") -> str:
    """Lambda's error payload: {"errorMessage", "errorType", "requestId", "stackTrace"}."""
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack or []}
    )


class InitError(Exception):
    """The handler module could not be loaded; ``document`` is Lambda's error payload."""

    def __init__(self, document: str) -> None:
        super().__init__(document)
        self.document = document


def stack_trace(exc: BaseException) -> list[str]:
    """Formatted frames from the handler down (this file's frames dropped), like awslambdaric."""
    frames = traceback.extract_tb(exc.__traceback__)
    return traceback.format_list([f for f in frames if os.path.abspath(f.filename) != HERE])


def _json_default(value: Any) -> Any:
    """Encode Decimals (e.g. from DynamoDB) as numbers, as the Lambda runtime does."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def load_handler(handler_spec: str, code_dir: Path) -> Callable[[Any, LambdaContext], Any]:
    """Import ``module.attribute`` from the code directory; raise InitError like the runtime."""
    module_label, _, attribute = handler_spec.rpartition(".")
    path = code_dir / (module_label.replace(".", "/") + ".py")
    spec = importlib.util.spec_from_file_location(module_label, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise InitError(
            error_document(
                "Runtime.ImportModuleError",
                f"Unable to import module '{module_label}': No module named '{module_label}'",
            )
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_label] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        sys.modules.pop(module_label, None)
        raise InitError(
            error_document("Runtime.ImportModuleError", f"Unable to import module '{module_label}': {exc}")
        ) from exc
    except SyntaxError as exc:
        sys.modules.pop(module_label, None)
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise InitError(
            error_document("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_label}': {exc}", trace)
        ) from exc
    except Exception as exc:
        sys.modules.pop(module_label, None)
        raise InitError(error_document(type(exc).__name__, str(exc), stack_trace(exc))) from exc
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise InitError(
            error_document("Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_label}'")
        )
    return handler


class Runtime:
    """Runs one function's invocations, one at a time, in this process."""

    def __init__(self, handler_spec: str, code_dir: Path) -> None:
        self.handler_spec = handler_spec
        self.code_dir = code_dir
        self.handler: Callable[[Any, LambdaContext], Any] | None = None

    def invoke(self, request_id: str, event: Any, deadline_ms: int) -> dict[str, Any]:
        """One invocation: ``{"payload": JSON text, "function_error": str | None, "duration_ms": float}``."""
        started = time.monotonic()
        error: str | None = "Unhandled"
        try:
            if self.handler is None:
                self.handler = load_handler(self.handler_spec, self.code_dir)
            result = self.handler(event, LambdaContext(request_id, deadline_ms))
        except InitError as exc:
            payload = exc.document
        except Exception as exc:
            payload = error_document(type(exc).__name__, str(exc), stack_trace(exc), request_id)
        except SystemExit as exc:
            payload = error_document("Runtime.ExitError", f"RequestId: {request_id} Error: exit {exc.code}")
        else:
            try:
                if isinstance(result, bytes):
                    payload = result.decode("utf-8")
                else:
                    payload = json.dumps(result, default=_json_default, ensure_ascii=False)
                error = None
            except (TypeError, ValueError) as exc:
                payload = error_document("Runtime.MarshalError", f"Unable to marshal response: {exc}")
        return {"payload": payload, "function_error": error, "duration_ms": (time.monotonic() - started) * 1000}


def redirect_kvs_clients() -> None:
    """Point the KeyValueStore data plane of boto3's default session at the sandbox.

    With a custom endpoint botocore puts the account id in front of the host
    (``http://123456789012.127.0.0.1:4566``), which resolves on AWS but not here; the sandbox's
    :func:`utils.sandbox.kvs.redirect_kvs_clients` puts the host back (loaded by path, so the
    function's ``sys.path`` stays what Lambda gives).
    """
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return
    spec = importlib.util.spec_from_file_location("_sandbox_kvs_redirect", Path(HERE).with_name("kvs.py"))
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.redirect_kvs_clients(endpoint)


def main() -> int:
    """Serve requests from stdin until it closes."""
    code_dir = Path(os.environ["LAMBDA_TASK_ROOT"])
    layers = [p for p in os.environ.get("SANDBOX_LAYER_PATHS", "").split(os.pathsep) if p]
    here_dir = os.path.dirname(HERE)
    sys.path[:] = [str(code_dir), *layers, *[p for p in sys.path if p and os.path.abspath(p) != here_dir]]
    reply = os.fdopen(int(os.environ["SANDBOX_REPLY_FD"]), "w", encoding="utf-8", buffering=1)
    redirect_kvs_clients()
    runtime = Runtime(os.environ["_HANDLER"], code_dir)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        outcome = runtime.invoke(str(request["request_id"]), request["event"], int(request["deadline_ms"]))
        sys.stdout.flush()
        sys.stderr.flush()
        reply.write(json.dumps(outcome) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
