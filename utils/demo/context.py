"""The context every demo step receives: output directories, the sandbox, commands and AWS clients."""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils.demo.constants import ACM_REGION, REPO, SUBPROCESS_TIMEOUT, UTILS
from utils.demo.output import StepFailed, detail
from utils.demo.sandbox_process import SandboxProcess
from utils.demo.state import DemoState


@dataclass
class Demo:
    """What every step is given: where files go, the sandbox, how to run commands and reach AWS.

    Attributes:
        out_dir: where certificates and keys are written (kept after the demo).
        work: temporary directory (sandbox state, passwords); removed at the end.
        sandbox: the sandbox process.
        env: environment for subprocesses that talk to the sandbox (``AWS_ENDPOINT_URL`` etc.).
        state: what the steps learnt so far (:class:`utils.demo.state.DemoState`).
    """

    out_dir: Path
    work: Path
    sandbox: SandboxProcess
    env: dict[str, str] = field(default_factory=dict)
    state: DemoState = field(default_factory=DemoState)

    def s3(self) -> Any:
        """An S3 client of the sandbox administrator."""
        return self.client("s3")

    def admin_credentials(self, account: str | None = None) -> dict[str, str]:
        """The administrator's access key of ``account`` (default: the CA's), from the state file
        (``admin``; ``admins`` by account: the workload accounts').

        Raises:
            StepFailed: the sandbox has no administrator for ``account``.
        """
        state = self.sandbox.state
        if account is None:
            return dict(state["admin"])
        admins = state.get("admins", {})
        if account not in admins:
            raise StepFailed(f"the sandbox has no account {account} (start it with --workload-account {account})")
        return dict(admins[account])

    def client(self, service: str, region: str | None = None, account: str | None = None) -> Any:
        """A boto3 client of the sandbox administrator of ``account`` (default: the CA's; the demo
        inspects what the CA did), in ``region`` (default: the stack's)."""
        import boto3

        state = self.sandbox.state
        admin = self.admin_credentials(account)
        return boto3.client(
            service, endpoint_url=state["endpoint_url"], region_name=region or state["region"],
            aws_access_key_id=admin["AWS_ACCESS_KEY_ID"], aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip

    def kvs_client(self, account: str | None = None) -> Any:
        """A ``cloudfront-keyvaluestore`` (KVS data plane, SigV4A) client for the sandbox, of the
        administrator of ``account`` (default: the CA's).

        With a custom endpoint botocore puts the account id in front of the host, so the
        sandbox's :func:`utils.sandbox.kvs.redirect_kvs_clients` puts the sandbox's host back.

        Raises:
            StepFailed: ``awscrt`` (SigV4A) is missing, or the sandbox has no redirect helper.
        """
        import boto3

        if importlib.util.find_spec("awscrt") is None:
            raise StepFailed(
                "the KeyValueStore data plane signs with SigV4A, which needs awscrt: pip install 'botocore[crt]'"
            )
        if str(REPO) not in sys.path:
            sys.path.append(str(REPO))
        try:
            from utils.sandbox.kvs import redirect_kvs_clients
        except ImportError as exc:
            raise StepFailed(f"the sandbox has no KeyValueStore data plane (utils/sandbox/kvs.py): {exc}") from None
        state = self.sandbox.state
        admin = self.admin_credentials(account)
        session = boto3.Session(
            aws_access_key_id=admin["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"],
            region_name=ACM_REGION,
        )
        redirect_kvs_clients(state["endpoint_url"], session)
        return session.client("cloudfront-keyvaluestore", endpoint_url=state["endpoint_url"])

    def run(
        self,
        command: Sequence[str],
        *,
        stdin: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
        shown_env: str = "",
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` with the sandbox environment (or ``env``), printing it (after
        ``shown_env``, how the environment differs, e.g. ``KMSCA_EDGE_EXTERNAL_ID=<...> ``).

        Raises:
            StepFailed: with ``check``, a non-zero exit (stderr is shown).
        """
        detail("$ " + shown_env + " ".join(self.shown(a) for a in command))
        result = subprocess.run(
            list(command),
            input=stdin,
            env=(env if env is not None else self.env) or None,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )
        if check and result.returncode != 0:
            raise StepFailed(f"exit status {result.returncode}: {(result.stderr or result.stdout).strip()}")
        return result

    def shown(self, arg: str) -> str:
        """A command argument as printed: repository paths relative, the temporary dir as <tmp>."""
        if arg == sys.executable:
            return "python"
        arg = arg.replace(str(self.work), "<tmp>")
        with contextlib.suppress(ValueError):
            return str(Path(arg).relative_to(Path.cwd())) if Path(arg).is_absolute() else arg
        return arg

    def cli(
        self, script: str, *args: str, env: dict[str, str] | None = None, shown_env: str = "", stack: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``utils/<script>`` against the sandbox's stack (``--stack-name``, unless not ``stack``:
        a caller of another account cannot read the CA stack), not checked; ``env`` and
        ``shown_env`` as for :meth:`run`."""
        command = [sys.executable, str(UTILS / script), *args]
        if stack:
            command += ["--stack-name", self.sandbox.state.get("stack_name", "")]
        return self.run(command, check=False, env=env, shown_env=shown_env)

    def env_with(self, credentials: dict[str, str], **extra: str) -> dict[str, str]:
        """The subprocess environment with another principal's access key (``AWS_ACCESS_KEY_ID``,
        ``AWS_SECRET_ACCESS_KEY``) and ``extra`` variables."""
        return {**self.env, **credentials, **extra}
