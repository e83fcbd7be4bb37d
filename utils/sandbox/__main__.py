"""Run the local sandbox until Ctrl-C: ``python -m utils.sandbox [--port 4566] ...``.

Prints the endpoint, the function names and the ``export`` line a client shell needs, and
writes a state file (JSON: endpoint_url, region, stack_name, functions, outputs,
key_value_stores, connection_functions, schedules, operator and admin credentials, pid) once
everything is created; removes it on exit. IAM is enforced (``--no-iam`` to switch it off);
the ``export`` line carries the operator's credentials. DynamoDB stream events are always
delivered; schedules run on demand (``POST <endpoint>/__sandbox__/schedules/<FunctionLogicalId>[/<EventName>]``) unless
``--run-schedules``. The emulated KeyValueStores' content: ``GET <endpoint>/__sandbox__/kvs``.
Exit status 1 with a message on stderr when the sandbox cannot start (port in use, bad
parameter, custom resource FAILED, ...).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from .server import Sandbox, SandboxError

DEFAULT_REPO_ROOT = Path(__file__).resolve().parents[2]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m utils.sandbox",
        description="Serve the template's functions and AWS emulation (moto) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=4566, help="TCP port (0: any free port; default 4566)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--region", default="eu-west-1", help="AWS region to emulate (default eu-west-1)")
    parser.add_argument("--stack-name", help="stack name (default: samconfig.toml's stack_name)")
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, e.g. IssuingCaKeySpec=RSA_2048",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=Path(".sandbox/state.json"),
        help="where to write the running sandbox's JSON state (default .sandbox/state.json)",
    )
    parser.add_argument("--repo-root", type=Path, default=DEFAULT_REPO_ROOT, help="directory holding template.yaml")
    parser.add_argument(
        "--run-schedules",
        action="store_true",
        help="fire the template's rate() schedules on a timer (default: only on demand, "
        "POST /__sandbox__/schedules/<FunctionLogicalId>[/<EventName>])",
    )
    parser.add_argument(
        "--gsi-lag",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long DynamoDB global secondary indexes lag their table (default 0; AWS: usually under a second)",
    )
    parser.add_argument(
        "--no-iam",
        action="store_true",
        help="do not enforce IAM (default: every request is authorised against its caller's policies, as on AWS)",
    )
    parser.add_argument(
        "--workload-account",
        action="append",
        default=[],
        metavar="ACCOUNT_ID",
        help="a workload account besides the CA's (12 digits; repeatable): its administrator is in the state file",
    )
    parser.add_argument(
        "--deploy-edge",
        action="store_true",
        help="deploy edge/template.yaml into each workload account, trusting the CA stack's EdgeCallerRoleArns "
        "with a random external id (state file: stacks)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")
    return parser.parse_args(argv)


def _overrides(pairs: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SandboxError(f"--parameter-overrides expects KEY=VALUE, got {pair!r}")
        result[key] = value.strip('"')
    return result


def _write_atomically(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Start, announce, wait for SIGINT/SIGTERM, stop. Returns the exit status."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        sandbox = Sandbox(
            args.repo_root,
            host=args.host,
            port=args.port,
            region=args.region,
            stack_name=args.stack_name,
            parameter_overrides=_overrides(args.parameter_overrides),
            run_schedules=args.run_schedules,
            enforce_iam=not args.no_iam,
            gsi_lag_seconds=args.gsi_lag,
            workload_accounts=args.workload_account,
        )
        sandbox.start()
        if args.deploy_edge:
            for account in sandbox.workload_accounts:
                sandbox.deploy_edge_stack(account)
    except SandboxError as exc:
        print(f"sandbox: failed to start: {exc}", file=sys.stderr)
        return 1

    state_file = args.state_file.resolve()
    try:
        state = {**sandbox.state(), "pid": os.getpid()}
        exports = " ".join(
            f"{key}={value}"
            for key, value in {
                **sandbox.env(),  # the operator's credentials: the template's managed policies, nothing else
            }.items()
        )
        print(f"sandbox for stack {sandbox.stack_name} on {sandbox.endpoint_url}")
        for logical_id, name in sandbox.function_names.items():
            print(f"  function {logical_id}: {name}")
        for key, value in sandbox.outputs.items():
            print(f"  output {key}: {value}")
        for (logical_id, event_name), schedule in sandbox.schedules.items():
            how = "on a timer" if args.run_schedules else "on demand"
            print(f"  schedule {logical_id}.{event_name}: {schedule.expression} ({how})")
        print(f"export {exports}")
        print(f"state: {state_file} (Ctrl-C to stop)", flush=True)
        _write_atomically(state_file, state)
        stop.wait()
    finally:
        print("sandbox: stopping", file=sys.stderr, flush=True)
        sandbox.stop()
        state_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
