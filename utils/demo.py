#!/usr/bin/env python3
"""End-to-end demo of the private CA on this machine, without an AWS account (README command 1).

Steps (each prints what it does and its result; a summary table closes the run):

1. prerequisites: Python packages and the ``openssl`` command are there (nginx, Node.js and
   awscrt are reported; the steps that need them fail without them).
2. sandbox: start the local sandbox (moto + the real Lambda handlers) as a subprocess.
3. client certificate: ``utils/client-cert.py`` against the sandbox (key made locally, PKCS#12 too).
4. server certificate: ``utils/server-cert.py localhost --san dns:localhost --san ip:127.0.0.1``.
5. published CA: download ``root``/``issuing`` (DER and PEM) and ``ca-bundle.pem`` from the bucket.
6. openssl verify: both leaves against root + issuing and against the CA bundle, with the TLS
   purpose checked (EKU clientAuth / serverAuth), plus an ``openssl x509 -text`` excerpt.
7. mutual TLS: a TLS server on 127.0.0.1 that requires a client certificate from the CA bundle
   accepts the issued client certificate and refuses no certificate, a certificate from another
   CA, and a certificate without clientAuth; clients are ``openssl s_client`` and Python ``ssl``.
8. refusals: the CA refuses a lifetime above its maximum and a wildcard over a public suffix,
   the CLI refuses a server certificate without a SAN, and nothing is written for any of them.
9. a second client certificate, the one to revoke.
10. revoke it with ``utils/revoke-cert.py --cert ... --reason keyCompromise``.
11. wait for the CRL: nothing in the demo publishes it; the table stream (filtered to
    revocations) triggers the CRL function. The public bucket is polled (30 s at most) until
    ``issuing.crl`` lists the serial; the seconds it took and the CRL number are printed, and the
    CRL is checked with cryptography (signature, issuer, reason, number, S3 metadata).
12. revoke again, by serial number in openssl's ``4A:3F:...`` form: "already revoked", unchanged.
13. download both CRLs (DER and PEM) and write ``crls.pem`` (issuing CRL + root CRL).
14. ``openssl verify -crl_check_all``: the good certificate is OK, the revoked one fails with
    "certificate revoked", and with the issuing CRL alone even the good one fails (every CA of
    the chain needs a CRL).
15. nginx (``nginx-light``; a relying party we did not write) on 127.0.0.1 with
    ``ssl_verify_client on``, ``ssl_client_certificate ca-bundle.pem`` and ``ssl_crl crls.pem``:
    HTTP 200 for the good client, 400 "The SSL certificate error" for the revoked one (Python
    and ``openssl s_client`` clients). FAIL with a hint when nginx is not installed.
    After the OCSP step, the same nginx with ``ssl_ocsp on`` and no CRL file asks the responder
    named in each certificate's AIA (leaf and issuing CA): 200 for the good client, 400 for the
    revoked one.
16. the Python ``ssl`` server of step 7 with ``VERIFY_CRL_CHECK_CHAIN`` and both CRLs: the good
    client is accepted, the revoked one refused during the handshake.
17. CloudFront origin mTLS: ``utils/cloudfront-origin-cert.py`` (profile ``cloudfront-origin``: the
    issue function generates the key and imports certificate, key and chain into ACM); the
    ``OriginMtlsConfig`` it prints; then ACM in **us-east-1** (boto3 ``describe_certificate``,
    ``get_certificate``, tags): the ARN's region, status ISSUED, EC P-256, EKU clientAuth, the chain
    (issuing, root) without the leaf, and ``openssl x509 -text`` of the certificate ACM holds.
18. CloudFront viewer mTLS, revocation: the certificate revoked in step 10 appears in the
    KeyValueStore (stack output ``RevokedSerialsStoreArn``; ``cloudfront-keyvaluestore`` client
    against the sandbox). Nothing in the demo invokes the sync: the table stream triggers
    SyncKvsFunction. ``get_key`` is polled (15 s at most); the wait and the store's
    ``LastModified`` lag are printed; ``list_keys`` shows every key; the good certificate's
    serial is absent. The content is exported as JSON (the KVS import-file format).
19. the connection function (``functions/connection/connection.js``, the code the sandbox's
    RevocationCheckFunction runs) under Node.js with ``functions/connection/harness.mjs``'s
    stand-in for the ``cloudfront`` module, holding the exported KeyValueStore content: the
    revoked certificate's serial as CloudFront passes it (``4a:3f:...``) and as ``openssl x509
    -serial`` prints it -> deny, with its ``logCustomData`` line; the good certificate -> allow.

The sandbox is always stopped at the end (SIGTERM, then SIGKILL). Exit status: 0 when every
step passed, 1 otherwise.

Later features add steps: write a function ``step_x(demo: Demo) -> str`` (return a one-line
result, raise :class:`StepFailed` on failure) and append ``Step("x", "title", step_x,
requires=(...))`` to :data:`STEPS`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
UTILS = REPO / "utils"
CLIENT_CN = "demo-client"
SERVER_CN = "localhost"
TLS_HOST = "127.0.0.1"
SUBPROCESS_TIMEOUT = 180  # seconds for one CLI or openssl run


class StepFailed(Exception):
    """A step did not reach its expected result; the message says what was seen."""


# --------------------------------------------------------------------------------------------
# Output


def say(text: str = "") -> None:
    """Print a line at once (the demo is watched live)."""
    print(text, flush=True)


def detail(text: str) -> None:
    """Print an indented detail line of the current step."""
    for line in text.splitlines() or [""]:
        say(f"    {line}")


# --------------------------------------------------------------------------------------------
# The local sandbox


class Sandbox:
    """``python -m utils.sandbox`` as a subprocess, ready once its state file is written.

    The state file is JSON: ``{endpoint_url, region, stack_name, functions, outputs, pid}``.
    """

    def __init__(self, work: Path, timeout: float) -> None:
        self.state_file = work / "state.json"
        self.log_file = work / "sandbox.log"
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {}

    def command(self, port: int) -> list[str]:
        """The command line that starts the sandbox on ``port`` of 127.0.0.1."""
        # Indexes lag their table by a second, as DynamoDB's may: the demo shows the CA copes.
        return [
            sys.executable, "-m", "utils.sandbox", "--port", str(port), "--state-file", str(self.state_file),
            "--gsi-lag", "1",
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


# --------------------------------------------------------------------------------------------
# Demo state shared by the steps


@dataclass
class Demo:
    """What the steps share.

    Attributes:
        out_dir: where certificates and keys are written (kept after the demo).
        work: temporary directory (sandbox state, passwords); removed at the end.
        sandbox: the sandbox process.
        env: environment for subprocesses that talk to the sandbox (``AWS_ENDPOINT_URL`` etc.).
        issued: ``--json`` summaries of the CLI runs, by name (``client``, ``server``, ``revoked``).
        files: named files produced by the steps (``root_pem``, ``client_crt``, ...).
        revocation: what the revocation steps learnt (serial, CRL number before, when it was
            recorded, ...).
    """

    out_dir: Path
    work: Path
    sandbox: Sandbox
    env: dict[str, str] = field(default_factory=dict)
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    revocation: dict[str, Any] = field(default_factory=dict)

    def s3(self) -> Any:
        """An S3 client of the sandbox administrator."""
        return self.client("s3")

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client of the sandbox administrator (the demo inspects what the CA did), in
        ``region`` (default: the stack's)."""
        import boto3

        state = self.sandbox.state
        admin = state["admin"]
        return boto3.client(
            service, endpoint_url=state["endpoint_url"], region_name=region or state["region"],
            aws_access_key_id=admin["AWS_ACCESS_KEY_ID"], aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip

    def kvs_client(self) -> Any:
        """A ``cloudfront-keyvaluestore`` (KVS data plane, SigV4A) client for the sandbox.

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
        admin = state["admin"]
        session = boto3.Session(
            aws_access_key_id=admin["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"],
            region_name=ACM_REGION,
        )
        redirect_kvs_clients(state["endpoint_url"], session)
        return session.client("cloudfront-keyvaluestore", endpoint_url=state["endpoint_url"])

    def run(
        self, command: Sequence[str], *, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` with the sandbox environment, printing it.

        Raises:
            StepFailed: with ``check``, a non-zero exit (stderr is shown).
        """
        detail("$ " + " ".join(self.shown(a) for a in command))
        result = subprocess.run(
            list(command),
            input=stdin,
            env=self.env or None,
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

    def cli(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``utils/<script>`` against the sandbox's stack (not checked)."""
        stack = self.sandbox.state.get("stack_name", "")
        return self.run([sys.executable, str(UTILS / script), *args, "--stack-name", stack], check=False)


# --------------------------------------------------------------------------------------------
# Steps


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


def _issue(demo: Demo, kind: str, script: str, name: str, *args: str) -> dict[str, Any]:
    result = demo.cli(script, *args, "--out-dir", str(demo.out_dir), "--name", name, "--force", "--json")
    if result.returncode != 0:
        raise StepFailed(f"{script} exited with status {result.returncode}: {result.stderr.strip()}")
    info = json.loads(result.stdout)
    for line in result.stderr.strip().splitlines():
        detail(line)
    detail(f"serial {info['serial_number']}  subject {info['subject']}  not after {info['not_after']}")
    detail("wrote " + ", ".join(demo.shown(p) for p in info["written"]))
    demo.issued[kind] = info
    for kind_of_file, path in info["files"].items():
        demo.files[f"{kind}_{kind_of_file}"] = Path(path)
    return info


def step_client_cert(demo: Demo) -> str:
    """Issue a client certificate (and a PKCS#12) with utils/client-cert.py."""
    password_file = demo.work / "p12-password"
    password = secrets.token_urlsafe(18)
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    info = _issue(
        demo, "client", "client-cert.py", CLIENT_CN, CLIENT_CN,
        "--organization", "KMS CA demo", "--san", "uri:spiffe://demo.example/client",
        "--lifetime-days", "30", "--pkcs12", "--pkcs12-password-file", str(password_file),
    )  # fmt: skip
    key = demo.files["client_key"]
    mode = key.stat().st_mode & 0o777
    if mode != 0o600:
        raise StepFailed(f"{key} has mode {mode:o}, expected 600")
    detail(f"{demo.shown(str(key))} has mode 0600")
    result = demo.run(
        ["openssl", "pkcs12", "-in", str(demo.files["client_pkcs12"]), "-noout", "-passin", f"file:{password_file}"]
    )
    detail(f"openssl reads the PKCS#12 file {result.stderr.strip() or 'fine'}")
    return f"serial {info['serial_number']}, expires {info['not_after']}"


def step_server_cert(demo: Demo) -> str:
    """Issue a server certificate for localhost with utils/server-cert.py."""
    info = _issue(
        demo, "server", "server-cert.py", SERVER_CN, SERVER_CN, "--san", "dns:localhost", "--san", "ip:127.0.0.1"
    )
    return f"serial {info['serial_number']}, expires {info['not_after']}"


def step_published_ca(demo: Demo) -> str:
    """Download the CA certificates and the bundle that bootstrap published to the public bucket."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    bucket = demo.sandbox.state["outputs"]["PublicBucketName"]
    s3 = demo.s3()
    target = demo.out_dir / "published"
    target.mkdir(parents=True, exist_ok=True)
    bodies: dict[str, bytes] = {}
    for key in ("root.crt", "root.pem", "issuing.crt", "issuing.pem", "ca-bundle.pem"):
        obj = s3.get_object(Bucket=bucket, Key=key)
        bodies[key] = obj["Body"].read()
        (target / key).write_bytes(bodies[key])
        demo.files[key.replace(".", "_")] = target / key
        detail(f"s3://{bucket}/{key}  {len(bodies[key])} bytes  {obj.get('ContentType')}")
    for name in ("root", "issuing"):
        der = x509.load_der_x509_certificate(bodies[f"{name}.crt"])
        if der.public_bytes(Encoding.PEM) != bodies[f"{name}.pem"]:
            raise StepFailed(f"{name}.crt and {name}.pem are not the same certificate")
    if bodies["ca-bundle.pem"] != bodies["root.pem"] + bodies["issuing.pem"]:
        raise StepFailed("ca-bundle.pem is not root.pem followed by issuing.pem")
    if b"\n\n" in bodies["ca-bundle.pem"]:
        raise StepFailed("ca-bundle.pem has blank lines (CloudFront trust stores refuse them)")
    for kind in ("client", "server"):
        if demo.files[f"{kind}_ca_bundle"].read_bytes() != bodies["ca-bundle.pem"]:
            raise StepFailed(f"the ca-bundle.pem written by the {kind} CLI is not the published bundle")
    for name in ("root", "issuing"):
        cert = x509.load_pem_x509_certificate(bodies[f"{name}.pem"])
        detail(f"{name:<8}{cert.subject.rfc4514_string()}: {describe_key(cert)}")
    return "root, issuing and ca-bundle.pem agree; the CLI wrote the published bundle"


def describe_key(cert: Any) -> str:
    """``"EC secp384r1 key, signed with SHA384"``-style description of a certificate's key and signature."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        text = f"EC {key.curve.name} key"
    elif isinstance(key, rsa.RSAPublicKey):
        text = f"RSA {key.key_size} key"
    else:
        text = f"{type(key).__name__}"
    digest = cert.signature_hash_algorithm
    return f"{text}, signed with {digest.name.upper() if digest else cert.signature_algorithm_oid.dotted_string}"


def step_openssl_verify(demo: Demo) -> str:
    """openssl verify against root + issuing and against the bundle; show the EKU."""
    root, issuing, bundle = demo.files["root_pem"], demo.files["issuing_pem"], demo.files["client_ca_bundle"]
    checks = (
        ("client", "sslclient", "TLS Web Client Authentication"),
        ("server", "sslserver", "TLS Web Server Authentication"),
    )
    for kind, purpose, eku in checks:
        leaf = str(demo.files[f"{kind}_certificate"])
        for trust in (["-CAfile", str(root), "-untrusted", str(issuing)], ["-CAfile", str(bundle)]):
            result = demo.run(["openssl", "verify", *trust, "-purpose", purpose, "-x509_strict", leaf])
            if not result.stdout.strip().endswith(": OK"):
                raise StepFailed(f"openssl verify said: {result.stdout.strip()} {result.stderr.strip()}")
            detail(result.stdout.strip())
        text = demo.run(["openssl", "x509", "-in", leaf, "-noout", "-text"]).stdout
        for line in excerpt(text):
            detail("  " + line)
        if eku not in text:
            raise StepFailed(f"the {kind} certificate does not show '{eku}'")
    return "both leaves verify (purpose sslclient / sslserver); EKU clientAuth / serverAuth"


CERT_EXCERPT = (
    "Serial Number", "Issuer:", "Not Before", "Not After", "Subject:", "Public Key Algorithm", "NIST CURVE",
    "Basic Constraints", "Key Usage", "Extended Key Usage", "Subject Alternative Name",
)  # fmt: skip
CRL_EXCERPT = ("Issuer:", "Last Update", "Next Update", "CRL Number", "Serial Number", "Revocation Date", "Reason Code")


def excerpt(x509_text: str, wanted: Sequence[str] = CERT_EXCERPT) -> list[str]:
    """Interesting lines of ``openssl x509 -text`` (or ``openssl crl -text`` with :data:`CRL_EXCERPT`):
    names, validity, key, extensions and their values."""
    lines = x509_text.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if any(w in line for w in wanted):
            out.append(line.strip())
            if line.strip().endswith(":") and i + 1 < len(lines):  # the value is on the next line
                out[-1] += " " + lines[i + 1].strip()
    return out


# ----- mutual TLS


@dataclass(frozen=True)
class ServerEvent:
    """What the TLS server saw on one connection."""

    accepted: bool
    detail: str
    subject: str = ""
    serial_number: str = ""


class MtlsServer:
    """TLS server on 127.0.0.1 (ephemeral port) that requires a client certificate from the CA bundle.

    With ``crl_file`` (PEM CRLs) it also checks revocation for the whole chain
    (``VERIFY_CRL_CHECK_CHAIN``: a CRL is then needed for every CA, root included).

    Each connection: handshake; then read one line, answer ``hello <subject> serial <hex>`` and
    close. Handshake failures are recorded; every outcome is put on :attr:`events`.
    """

    def __init__(self, fullchain: Path, key: Path, ca_bundle: Path, crl_file: Path | None = None) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(cafile=str(ca_bundle))
        if crl_file is not None:  # PEM CRLs of every CA of the chain: each link is checked
            self.context.load_verify_locations(cafile=str(crl_file))
            self.context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
        self.context.load_cert_chain(certfile=str(fullchain), keyfile=str(key))
        self.listener = socket.create_server((TLS_HOST, 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.events: queue.Queue[ServerEvent] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="mtls-server", daemon=True)

    def __enter__(self) -> MtlsServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._handle(conn)
            except Exception as exc:  # keep serving; the step reports the event
                self.events.put(ServerEvent(False, f"server error: {type(exc).__name__}: {exc}"))
            finally:
                conn.close()

    def _handle(self, conn: socket.socket) -> None:
        from cryptography import x509

        conn.settimeout(10)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.events.put(ServerEvent(False, f"handshake failed: {reason(exc)}"))
            return
        with tls:
            der = tls.getpeercert(binary_form=True)
            subject, serial = "(no certificate)", ""
            if der:
                cert = x509.load_der_x509_certificate(der)
                subject, serial = cert.subject.rfc4514_string(), format(cert.serial_number, "x")
                serial = serial if len(serial) % 2 == 0 else "0" + serial
            try:
                tls.recv(1024)
                tls.sendall(f"hello {subject} serial {serial}\n".encode())
            except (ssl.SSLError, OSError) as exc:
                self.events.put(ServerEvent(False, f"after handshake: {reason(exc)}", subject, serial))
                return
            self.events.put(ServerEvent(True, f"{tls.version()}, client {subject}", subject, serial))

    def next_event(self, timeout: float = 10) -> ServerEvent:
        """The outcome of the next connection (or a failed event when there is none)."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return ServerEvent(False, "the server saw no connection")

    def drain(self) -> None:
        """Forget outcomes of earlier connections."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.events.get_nowait()


def reason(exc: BaseException) -> str:
    """Short text of a TLS/socket error (OpenSSL's reason code when there is one)."""
    if isinstance(exc, ssl.SSLError):
        verify = getattr(exc, "verify_message", None)
        return f"{exc.reason}{f' ({verify})' if verify else ''}" if exc.reason else str(exc)
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class TlsClient:
    """One client of the handshake step.

    Attributes:
        label: what is being shown.
        tool: ``openssl`` (s_client) or ``python`` (ssl module).
        cert, key: client certificate chain (PEM, leaf first) and key; None to send none.
        expect_accept: whether the server should accept it.
        tls12: limit the client to TLS 1.2 (the refusal then happens inside the handshake).
    """

    label: str
    tool: str
    cert: Path | None
    key: Path | None
    expect_accept: bool
    tls12: bool = False


def python_client(client: TlsClient, port: int, ca_bundle: Path) -> tuple[bool, str]:
    """Connect with Python ``ssl`` (server verified against the bundle as 127.0.0.1), send a line.

    Returns:
        ``(accepted, detail)``: accepted when the server's ``hello`` line came back. With TLS 1.3 a
        refused client certificate is reported only after the handshake, so a refusal is the
        alert (or EOF) received instead of the reply.
    """
    context = ssl.create_default_context(cafile=str(ca_bundle))
    if client.tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    if client.cert and client.key:
        context.load_cert_chain(certfile=str(client.cert), keyfile=str(client.key))
    try:
        with (
            socket.create_connection((TLS_HOST, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=TLS_HOST) as tls,
        ):
            version = tls.version()
            tls.sendall(b"ping\n")
            reply = tls.recv(1024)
    except (ssl.SSLError, OSError) as exc:
        return False, f"refused: {reason(exc)}"
    if reply.startswith(b"hello "):
        return True, f"{version}: server replied {reply.decode().strip()!r}"
    return False, f"refused: {version} connection closed without a reply"


def openssl_client(demo: Demo, client: TlsClient, port: int, ca_bundle: Path) -> tuple[bool, str]:
    """Connect with ``openssl s_client`` (server verified against the bundle as localhost), send a line."""
    command = [
        "openssl", "s_client", "-connect", f"{TLS_HOST}:{port}", "-servername", SERVER_CN,
        "-CAfile", str(ca_bundle), "-verify_return_error", "-verify_hostname", SERVER_CN,
        "-brief", "-ign_eof",
    ]  # fmt: skip
    if client.tls12:
        command.append("-tls1_2")
    if client.cert and client.key:
        command += ["-cert", str(client.cert), "-key", str(client.key)]
    result = demo.run(command, stdin="ping\n", check=False)
    reply = next((line for line in result.stdout.splitlines() if line.startswith("hello ")), None)
    info = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    verification = next((line for line in info if line.startswith("Verification")), "")
    if reply:
        return True, f"{verification}; server replied {reply!r}"
    # OpenSSL error lines read "<hex>:error:<code>:SSL routines:<function>:<reason>:<file>:<line>:..."
    alerts = [part for line in info for part in line.split(":") if " alert " in part]
    errors = [line for line in info if "error" in line.lower()]
    if alerts or errors:
        return False, "refused: " + (alerts[0] if alerts else errors[0])
    return False, f"refused: exit status {result.returncode}, no reply"


def foreign_client_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway CA (not in the bundle) and a client certificate it signed, same CN as ours.

    Returns:
        ``(fullchain_pem, key_pem)`` paths; the key file has mode 0600.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Other CA")])
    ca = (
        x509.CertificateBuilder(ca_name, ca_name, ca_key.public_key(), x509.random_serial_number(),
                                now - dt.timedelta(minutes=5), now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder(issuer_name=ca_name,
                                subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CLIENT_CN)]),
                                public_key=leaf_key.public_key(), serial_number=x509.random_serial_number(),
                                not_valid_before=now - dt.timedelta(minutes=5),
                                not_valid_after=now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    chain = directory / f"{CLIENT_CN}.fullchain.pem"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    key = directory / f"{CLIENT_CN}.key"
    key.unlink(missing_ok=True)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            leaf_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return chain, key


def step_mtls(demo: Demo) -> str:
    """Mutual TLS on 127.0.0.1: the issued client certificate in, everything else out."""
    f = demo.files
    bundle = f["client_ca_bundle"]
    other_chain, other_key = foreign_client_cert(demo.out_dir / "other-ca")
    detail(f"throwaway CA and client certificate (CN={CLIENT_CN}) in {demo.shown(str(other_chain.parent))}")
    ours, server_as_client = (f["client_fullchain"], f["client_key"]), (f["server_fullchain"], f["server_key"])
    clients = [
        TlsClient("issued client certificate", "openssl", *ours, expect_accept=True),
        TlsClient("issued client certificate", "python", *ours, expect_accept=True),
        TlsClient("issued client certificate, TLS 1.2", "python", *ours, expect_accept=True, tls12=True),
        TlsClient("no client certificate", "openssl", None, None, expect_accept=False),
        TlsClient("no client certificate", "python", None, None, expect_accept=False),
        TlsClient("no client certificate, TLS 1.2", "python", None, None, expect_accept=False, tls12=True),
        TlsClient("certificate from another CA", "python", other_chain, other_key, expect_accept=False),
        TlsClient("certificate from another CA", "openssl", other_chain, other_key, expect_accept=False),
        TlsClient("our server certificate as client (EKU serverAuth only)", "python", *server_as_client, False),
    ]
    with MtlsServer(f["server_fullchain"], f["server_key"], bundle) as server:
        detail(f"TLS server on {TLS_HOST}:{server.port}: CERT_REQUIRED, trust = {demo.shown(str(bundle))}")
        failures = try_clients(demo, server, clients, bundle, demo.issued["client"])
    if failures:
        raise StepFailed("unexpected outcome for: " + "; ".join(failures))
    refused = sum(not c.expect_accept for c in clients)
    return f"accepted the issued certificate ({len(clients) - refused} clients), refused {refused} others"


def try_clients(
    demo: Demo, server: MtlsServer, clients: Sequence[TlsClient], bundle: Path, accepted_cert: dict[str, Any]
) -> list[str]:
    """Connect each client to ``server`` and compare client's and server's view with the expectation.

    An accepted connection must also show ``accepted_cert`` (the CLI summary of the one
    certificate that should get in) on the server side.

    Returns:
        Labels of the clients with an unexpected outcome.
    """
    failures = []
    for client in clients:
        server.drain()
        if client.tool == "openssl":
            accepted, seen = openssl_client(demo, client, server.port, bundle)
        else:
            accepted, seen = python_client(client, server.port, bundle)
        event = server.next_event()
        ok = accepted == client.expect_accept == event.accepted
        expected = (accepted_cert["serial_number"], accepted_cert["subject"])
        if ok and accepted and (event.serial_number, event.subject) != expected:
            ok = False
            seen += f" (server saw serial {event.serial_number}, expected {expected[0]})"
        verdict = "ok  " if ok else "FAIL"
        want = "accept" if client.expect_accept else "refuse"
        detail(f"[{verdict}] {client.label} ({client.tool}), want {want}")
        detail(f"         client: {seen}")
        detail(f"         server: {event.detail}" + (f", serial {event.serial_number}" if event.accepted else ""))
        if not ok:
            failures.append(f"{client.label} ({client.tool})")
    return failures


def step_refusals(demo: Demo) -> str:
    """Bad requests are refused with their error code, and nothing is written."""
    cases = [
        ("client-cert.py", ["too-long", "--lifetime-days", "100000"], "LifetimeExceeded"),
        ("server-cert.py", ["wild", "--san", "dns:*.com"], "InvalidSubjectAlternativeName"),
        ("server-cert.py", ["no-san.example"], "InvalidSubjectAlternativeName"),
    ]
    for script, args, code in cases:
        name = args[0]
        result = demo.cli(script, *args, "--out-dir", str(demo.out_dir))
        message = result.stderr.strip()
        detail(f"exit status {result.returncode}: {message}")
        if result.returncode != 2 or not message.startswith(f"error: {code}: "):
            raise StepFailed(f"{script} {' '.join(args)}: expected exit status 2 and {code}")
        if leftovers := sorted(p.name for p in demo.out_dir.glob(f"{name}.*")):
            raise StepFailed(f"files were written for a refused request: {leftovers}")
    return f"{len(cases)} bad requests refused with their codes; nothing written"


# ----- revocation and CRLs

REVOKED_CN = "demo-client-2"
REVOCATION_REASON = "keyCompromise"
CRL_WAIT_SECONDS = 30.0
CRL_POLL_SECONDS = 0.2


def entries(crl: Any) -> str:
    """``"1 entry"``, ``"3 entries"``."""
    return f"{len(crl)} {'entry' if len(crl) == 1 else 'entries'}"


def crl_number(crl: Any) -> int:
    """The CRL number extension (RFC 5280 5.2.3) of a cryptography CRL."""
    from cryptography import x509

    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def listed(crl: Any, serial_hex: str) -> Any:
    """The CRL entry for ``serial_hex``, or None."""
    return crl.get_revoked_certificate_by_serial_number(int(serial_hex, 16))


def entry_reason(entry: Any) -> str:
    """The reasonCode of a CRL entry as its RFC 5280 name (``keyCompromise``); none means unspecified."""
    from cryptography import x509

    try:
        flag = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return "unspecified"
    return str(flag.value)  # cryptography's ReasonFlags values are the RFC 5280 names


def fetch_crl(demo: Demo, key: str) -> tuple[Any, bytes, dict[str, str]]:
    """Read ``key`` (a DER CRL) from the public bucket.

    Returns:
        ``(cryptography CRL, DER bytes, S3 user metadata)``.
    """
    from cryptography import x509

    obj = demo.s3().get_object(Bucket=demo.sandbox.state["outputs"]["PublicBucketName"], Key=key)
    der = obj["Body"].read()
    return x509.load_der_x509_crl(der), der, dict(obj.get("Metadata") or {})


def step_second_client(demo: Demo) -> str:
    """Issue the certificate that will be revoked (a device whose key was lost)."""
    info = _issue(demo, "revoked", "client-cert.py", REVOKED_CN, REVOKED_CN, "--organization", "KMS CA demo")
    return f"serial {info['serial_number']}, expires {info['not_after']}"


def step_revoke(demo: Demo) -> str:
    """Revoke the second client certificate with utils/revoke-cert.py (by its certificate file)."""
    serial = demo.issued["revoked"]["serial_number"]
    crl, _, _ = fetch_crl(demo, "issuing.crl")
    if listed(crl, serial) is not None:
        raise StepFailed(f"issuing.crl number {crl_number(crl)} lists {serial} before it was revoked")
    demo.revocation.update(serial=serial, crl_number_before=crl_number(crl))
    detail(f"before: issuing.crl number {crl_number(crl)}, {entries(crl)}, {serial} not listed")

    result = demo.cli("revoke-cert.py", "--cert", str(demo.files["revoked_certificate"]), "--reason",
                      REVOCATION_REASON, "--json")  # fmt: skip
    recorded, recorded_wall = time.monotonic(), time.time()
    if result.returncode != 0:
        raise StepFailed(f"revoke-cert.py exited with status {result.returncode}: {result.stderr.strip()}")
    first = json.loads(result.stdout)
    detail(f"revoked {first['serial_number']}: reason {first['reason']}, revoked at {first['revoked_at']}, "
           f"already revoked: {first['already_revoked']}")  # fmt: skip
    if (first["serial_number"], first["reason"], first["already_revoked"]) != (serial, REVOCATION_REASON, False):
        raise StepFailed(f"unexpected answer: {first}")
    demo.revocation.update(recorded=recorded, recorded_wall=recorded_wall, revoked_at=first["revoked_at"])
    return f"{serial} revoked ({REVOCATION_REASON}) at {first['revoked_at']}"


def step_revoke_again(demo: Demo) -> str:
    """Revoking again (serial as openssl prints it, another reason) changes nothing and says so."""
    serial, revoked_at = demo.revocation["serial"], demo.revocation["revoked_at"]
    shown = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2)).upper()
    again = demo.cli("revoke-cert.py", "--serial", shown, "--reason", "superseded")
    for line in (again.stdout + again.stderr).strip().splitlines():
        detail("  " + line)
    if again.returncode != 0 or "already revoked" not in again.stdout or revoked_at not in again.stdout:
        raise StepFailed(f"the second revocation did not report the first one unchanged: {again.stdout}{again.stderr}")
    if REVOCATION_REASON not in again.stdout:
        raise StepFailed(f"the reason changed: {again.stdout}")
    return f"exit status 0, 'already revoked': still {REVOCATION_REASON} at {revoked_at}"


def step_crl_published(demo: Demo) -> str:
    """Poll the public bucket until issuing.crl lists the revoked serial (the stream triggers publication)."""
    from cryptography import x509

    serial, before = demo.revocation["serial"], demo.revocation["crl_number_before"]
    detail(f"nothing here invokes PublishCrlFunction: the table stream (filtered to revocations) does; "
           f"polling issuing.crl every {CRL_POLL_SECONDS:g} s for {CRL_WAIT_SECONDS:g} s")  # fmt: skip
    deadline = demo.revocation["recorded"] + CRL_WAIT_SECONDS
    polls, crl = 0, None
    while True:
        polls += 1
        crl, der, metadata = fetch_crl(demo, "issuing.crl")
        entry = listed(crl, serial)
        if entry is not None:
            break
        if time.monotonic() >= deadline:
            raise StepFailed(
                f"no published issuing.crl lists {serial} {CRL_WAIT_SECONDS:g} s after the revocation "
                f"(still number {crl_number(crl)}, {entries(crl)}, {polls} polls): the stream-triggered "
                f"publication did not run (the sandbox delivers the table's stream to PublishCrlFunction)\n"
                f"{demo.sandbox.log_tail(6)}"
            )
        time.sleep(CRL_POLL_SECONDS)
    seconds = time.monotonic() - demo.revocation["recorded"]
    number = crl_number(crl)
    lag = (crl.last_update_utc - entry.revocation_date_utc).total_seconds()
    detail(f"issuing.crl number {number} ({len(der)} bytes DER, {entries(crl)}) lists {serial}: seen "
           f"{seconds:.1f} s after revoke-cert.py returned ({polls} {'poll' if polls == 1 else 'polls'}); "
           f"the CRL's thisUpdate is {lag:.0f} s after the revocation date (whole seconds)")  # fmt: skip
    problems = []
    if number <= before:
        problems.append(f"CRL number {number} is not above {before}")
    if metadata.get("crl-number") != str(number):
        problems.append(f"S3 metadata crl-number {metadata.get('crl-number')!r} is not {number}")
    if entry_reason(entry) != REVOCATION_REASON:
        problems.append(f"the entry's reason is {entry_reason(entry)}, not {REVOCATION_REASON}")
    ca = x509.load_pem_x509_certificate(demo.files["issuing_pem"].read_bytes())
    valid = crl.is_signature_valid(ca.public_key())
    if not valid:
        problems.append("its signature does not verify under the issuing CA's key")
    if crl.issuer.public_bytes() != ca.subject.public_bytes():
        problems.append("its issuer is not the issuing CA's subject (byte for byte)")
    detail(f"issuer {crl.issuer.rfc4514_string()}; signature under the issuing CA's {describe_key(ca).split(',')[0]}: "
           f"{'valid' if valid else 'INVALID'}")  # fmt: skip
    detail(f"entry: serial {serial}, revoked {entry.revocation_date_utc:%Y-%m-%dT%H:%M:%SZ}, "
           f"reason {entry_reason(entry)}; thisUpdate {crl.last_update_utc:%H:%M:%S}, "
           f"nextUpdate {crl.next_update_utc:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
    if problems:
        raise StepFailed("; ".join(problems))
    demo.revocation.update(seconds=seconds, crl_number=number)
    return (
        f"CRL number {before} -> {number} lists the revoked serial {seconds:.1f} s after revoke-cert.py "
        f"returned (thisUpdate - revocation date = {lag:.0f} s)"
    )


def step_crls(demo: Demo) -> str:
    """Download both CRLs (DER and PEM) and build crls.pem, the file relying parties load."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    s3, bucket = demo.s3(), demo.sandbox.state["outputs"]["PublicBucketName"]
    target = demo.out_dir / "published"
    target.mkdir(parents=True, exist_ok=True)
    pems = []
    for name in ("issuing", "root"):
        ca = x509.load_pem_x509_certificate(demo.files[f"{name}_pem"].read_bytes())
        der_obj = s3.get_object(Bucket=bucket, Key=f"{name}.crl")
        der = der_obj["Body"].read()
        pem = s3.get_object(Bucket=bucket, Key=f"{name}.crl.pem")["Body"].read()
        (target / f"{name}.crl").write_bytes(der)
        (target / f"{name}.crl.pem").write_bytes(pem)
        demo.files[f"{name}_crl_pem"] = target / f"{name}.crl.pem"
        crl = x509.load_der_x509_crl(der)
        if crl.public_bytes(Encoding.PEM) != pem:
            raise StepFailed(f"{name}.crl and {name}.crl.pem are not the same CRL")
        if not crl.is_signature_valid(ca.public_key()) or crl.issuer.public_bytes() != ca.subject.public_bytes():
            raise StepFailed(f"{name}.crl is not signed by (or not issued by) the {name} CA")
        detail(f"s3://{bucket}/{name}.crl  {len(der)} bytes  {der_obj.get('ContentType')}  number "
               f"{crl_number(crl)}, {entries(crl)}, signature valid, "
               f"next update {crl.next_update_utc:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
        pems.append(pem)
    bundle = target / "crls.pem"
    bundle.write_bytes(b"".join(pems))
    demo.files["crls_pem"] = bundle
    text = demo.run(["openssl", "crl", "-inform", "DER", "-in", str(target / "issuing.crl"), "-noout", "-text"]).stdout
    for line in excerpt(text, CRL_EXCERPT):
        detail("  " + line)
    detail(f"wrote {demo.shown(str(bundle))}: issuing CRL + root CRL (PEM), for openssl, nginx and Python")
    return "issuing and root CRLs downloaded, signatures valid; crls.pem holds both"


def step_openssl_crl(demo: Demo) -> str:
    """openssl verify -crl_check_all with both CRLs: the good certificate passes, the revoked one fails."""
    f = demo.files
    base = ["openssl", "verify", "-crl_check_all", "-CAfile", str(f["root_pem"]), "-untrusted", str(f["issuing_pem"])]
    good, revoked = str(f["client_certificate"]), str(f["revoked_certificate"])

    result = demo.run([*base, "-CRLfile", str(f["crls_pem"]), good], check=False)
    detail(f"exit {result.returncode}: {(result.stdout + result.stderr).strip()}")
    if result.returncode != 0 or not result.stdout.strip().endswith(": OK"):
        raise StepFailed("the good certificate did not verify with the CRLs")

    result = demo.run([*base, "-CRLfile", str(f["crls_pem"]), revoked], check=False)
    output = (result.stdout + result.stderr).strip()
    for line in output.splitlines():
        detail(f"  {line}")
    if result.returncode == 0 or "certificate revoked" not in output:
        raise StepFailed("the revoked certificate was not reported as 'certificate revoked'")

    # Why relying parties need both CRLs: with -crl_check_all every CA of the chain needs one.
    result = demo.run([*base, "-CRLfile", str(f["issuing_crl_pem"]), good], check=False)
    output = (result.stdout + result.stderr).strip()
    detail("with the issuing CRL only, even the good certificate fails:")
    for line in output.splitlines():
        if "error" in line:
            detail(f"  {line}")
    if result.returncode == 0 or "unable to get certificate CRL" not in output:
        raise StepFailed("without the root CRL, openssl should refuse the chain ('unable to get certificate CRL')")
    return "good certificate OK; revoked one 'certificate revoked'; without the root CRL nothing verifies"


# nginx: a relying party we did not write


def find_nginx() -> str | None:
    """The nginx binary (also looked for in /usr/sbin, which is not on a user's PATH everywhere)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/sbin")


class Nginx:
    """nginx in the foreground on 127.0.0.1 with a temporary prefix, requiring client certificates
    from the CA bundle and checking the CRLs (``ssl_crl``) of the whole chain.

    Every location answers ``hello <subject DN> serial <serial> verify <result>``.
    """

    def __init__(
        self,
        binary: str,
        prefix: Path,
        *,
        fullchain: Path,
        key: Path,
        ca_bundle: Path,
        crls: Path | None = None,
        ocsp: str | None = None,
    ) -> None:
        self.binary, self.prefix = binary, prefix
        self.fullchain, self.key, self.ca_bundle, self.crls = fullchain, key, ca_bundle, crls
        self.ocsp = ocsp  # "on" (leaf and intermediates) or "leaf": ssl_ocsp from the AIA URL
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.error_log = prefix / "error.log"

    def config(self) -> str:
        """nginx.conf: no daemon, everything under the prefix, one TLS server."""
        p = self.prefix
        temp = "".join(f"    {m}_temp_path {p / 'tmp' / m};\n" for m in self._temp_modules())
        return f"""daemon off;
worker_processes 1;
pid {p / "nginx.pid"};
error_log {self.error_log} info;
events {{ worker_connections 64; }}
http {{
    access_log {p / "access.log"};
{temp}    server {{
        listen {TLS_HOST}:{self.port} ssl;
        server_name {SERVER_CN};
        ssl_certificate {self.fullchain};
        ssl_certificate_key {self.key};
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_client_certificate {self.ca_bundle};
{self._revocation()}        default_type text/plain;
        location / {{
            return 200 "hello $ssl_client_s_dn serial $ssl_client_serial verify $ssl_client_verify\\n";
        }}
    }}
}}
"""

    def _revocation(self) -> str:
        """``ssl_crl`` and/or ``ssl_ocsp`` lines (8 spaces indent, newline-terminated)."""
        lines = []
        if self.crls is not None:
            lines.append(f"ssl_crl {self.crls};")
        if self.ocsp is not None:
            # The responder URL comes from each certificate's AIA (no ssl_ocsp_responder). It is an
            # IP address in the sandbox, so no resolver is needed; a hostname would need `resolver`.
            lines += [f"ssl_ocsp {self.ocsp};", "ssl_ocsp_cache shared:ocsp:1m;"]
        return "".join(f"        {line}\n" for line in lines)

    def _temp_modules(self) -> list[str]:
        """Modules with a temp path in this build (``--without-http_<m>_module`` drops one)."""
        built = subprocess.run([self.binary, "-V"], capture_output=True, text=True, check=False).stderr
        modules = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        return [m for m in modules if f"--without-http_{m}_module" not in built]

    def __enter__(self) -> Nginx:
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.config(), encoding="utf-8")
        command = [self.binary, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.error_log)]
        with (self.prefix / "stderr.log").open("wb") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StepFailed(f"nginx exited with status {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((TLS_HOST, self.port), timeout=0.5):
                return self
            time.sleep(0.05)
        self.__exit__()
        raise StepFailed(f"nginx did not listen on {TLS_HOST}:{self.port} within 10 s:\n{self.log_tail()}")

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 10) -> str:
        """The last lines of nginx's error log and output."""
        text = ""
        for path in (self.prefix / "stderr.log", self.error_log):
            with contextlib.suppress(OSError):
                text += path.read_text(encoding="utf-8", errors="replace")
        return "\n".join("  | " + line for line in text.splitlines()[-lines:]) or "  | (no output)"

    def log_lines(self, marker: str) -> list[str]:
        """Error log lines containing ``marker``, without the timestamp and process prefix."""
        with contextlib.suppress(OSError):
            text = self.error_log.read_text(encoding="utf-8", errors="replace")
            return [line.split("] ", 1)[-1] for line in text.splitlines() if marker in line]
        return []


def http_summary(status: int | None, body: str) -> str:
    """``200 hello ...`` or ``400 The SSL certificate error`` (nginx's page title)."""
    import re

    title = re.search(r"<title>\s*\d*\s*(.*?)\s*</title>", body, re.IGNORECASE | re.DOTALL)
    text = title.group(1) if title else body.strip().splitlines()[0] if body.strip() else "(empty)"
    return f"{status} {text}" if status is not None else text


def python_https_get(port: int, ca_bundle: Path, cert: Path | None, key: Path | None) -> tuple[int | None, str]:
    """``GET /`` with Python's http.client over TLS (server checked against the bundle).

    Returns:
        ``(status, body)``, or ``(None, "connection failed: ...")``.
    """
    import http.client

    context = ssl.create_default_context(cafile=str(ca_bundle))
    if cert and key:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    connection = http.client.HTTPSConnection(TLS_HOST, port, context=context, timeout=10)
    try:
        connection.request("GET", "/", headers={"Host": SERVER_CN})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    except (ssl.SSLError, OSError, http.client.HTTPException) as exc:
        return None, f"connection failed: {reason(exc)}"
    finally:
        connection.close()


def openssl_https_get(
    demo: Demo, port: int, ca_bundle: Path, cert: Path | None, key: Path | None
) -> tuple[int | None, str]:
    """``GET /`` through ``openssl s_client`` (server checked against the bundle as localhost)."""
    command = [
        "openssl", "s_client", "-connect", f"{TLS_HOST}:{port}", "-servername", SERVER_CN, "-CAfile", str(ca_bundle),
        "-verify_return_error", "-verify_hostname", SERVER_CN, "-quiet",
    ]  # fmt: skip
    if cert and key:
        command += ["-cert", str(cert), "-key", str(key)]
    result = demo.run(command, stdin=f"GET / HTTP/1.0\r\nHost: {SERVER_CN}\r\n\r\n", check=False)
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    status_line = head.splitlines()[0] if head else ""
    parts = status_line.split()
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        return int(parts[1]), body
    return None, f"no HTTP response (exit {result.returncode}): {result.stderr.strip()[-200:]}"


def _nginx_binary() -> tuple[str, str]:
    """nginx's path and ``nginx -v`` text, or StepFailed with the install hint."""
    binary = find_nginx()
    if binary is None:
        raise StepFailed(
            "nginx is not installed, so the nginx check did not run: apt-get install nginx-light "
            "(./dev.sh demo installs it)"
        )
    return binary, subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stderr.strip()


def _nginx_clients(demo: Demo, nginx: Nginx, version: str, revoked_reason: str) -> None:
    """Good, revoked and no client certificate against ``nginx``, each with Python and openssl
    s_client: 200 for the good one, 400 for the others; StepFailed naming every unexpected outcome."""
    f = demo.files
    bundle = f["client_ca_bundle"]
    cases = [
        ("good client certificate", f["client_fullchain"], f["client_key"], 200,
         demo.issued["client"]["serial_number"]),
        ("revoked client certificate", f["revoked_fullchain"], f["revoked_key"], 400, revoked_reason),
        ("no client certificate", None, None, 400, "No required SSL certificate was sent"),
    ]  # fmt: skip
    failures = []
    detail(f"{version} on https://{TLS_HOST}:{nginx.port}/ (prefix <tmp>/{nginx.prefix.name}, not a daemon):")
    for line in nginx.config().splitlines():
        if line.strip().startswith(("ssl_verify", "ssl_client_certificate", "ssl_crl", "ssl_ocsp", "listen")):
            detail("  " + line.strip().replace(str(demo.out_dir), "<out>"))
    for label, cert, key, want, must_show in cases:
        for tool in ("python", "openssl"):
            if tool == "python":
                status, body = python_https_get(nginx.port, bundle, cert, key)
            else:
                status, body = openssl_https_get(demo, nginx.port, bundle, cert, key)
            seen = http_summary(status, body)
            ok = status == want and must_show.lower() in body.lower()
            detail(f"[{'ok  ' if ok else 'FAIL'}] {label} ({tool}): want {want}, got {seen}")
            if not ok:
                failures.append(f"{label} ({tool})")
    time.sleep(0.1)  # let the worker flush its log line
    for line in (nginx.log_lines("verify error") + nginx.log_lines("OCSP"))[:3]:
        detail(f"nginx error.log: {line}")
    if failures:
        raise StepFailed("unexpected outcome for: " + "; ".join(failures) + "\n" + nginx.log_tail())


def step_nginx(demo: Demo) -> str:
    """nginx with ssl_verify_client on and ssl_crl (both CRLs): good client 200, revoked client 400."""
    binary, version = _nginx_binary()
    f = demo.files
    with Nginx(binary, demo.work / "nginx", fullchain=f["server_fullchain"], key=f["server_key"],
               ca_bundle=f["client_ca_bundle"], crls=f["crls_pem"]) as nginx:  # fmt: skip
        _nginx_clients(demo, nginx, version, "The SSL certificate error")
    return (
        f"{version.split(': ')[-1]}: 200 for the good certificate, 400 'The SSL certificate error' for the revoked one"
    )


def step_nginx_ocsp(demo: Demo) -> str:
    """nginx with ssl_verify_client on and ``ssl_ocsp on`` (no CRL file): nginx asks the responder
    named in each certificate's AIA (the sandbox's 127.0.0.1 URL) about the leaf and the issuing CA
    (whose status is root-signed); good client 200, revoked client 400."""
    binary, version = _nginx_binary()
    f = demo.files
    url = _aia(f["client_certificate"], "OCSP")
    detail(f"OCSP URL in the client certificate: {demo.shown(url)}")
    with Nginx(binary, demo.work / "nginx-ocsp", fullchain=f["server_fullchain"], key=f["server_key"],
               ca_bundle=f["client_ca_bundle"], ocsp="on") as nginx:  # fmt: skip
        _nginx_clients(demo, nginx, version, "The SSL certificate error")
        # No CRL is configured, so "certificate revoked" can only come from an OCSP answer. With
        # `ssl_ocsp on` nginx also asks about the issuing CA (root-signed answer) and refuses the chain
        # when any lookup fails: the good client's 200 shows both answers were obtained and verified.
        if not nginx.log_lines("verify error: certificate revoked"):
            raise StepFailed("nginx refused the revoked client, but not as 'certificate revoked':\n" + nginx.log_tail())
    return f"{version.split(': ')[-1]} with ssl_ocsp on: 200 for the good certificate, 400 for the revoked one (OCSP)"


def step_python_crl(demo: Demo) -> str:
    """The Python ssl server of step 7, now with VERIFY_CRL_CHECK_CHAIN and both CRLs."""
    f = demo.files
    bundle = f["client_ca_bundle"]
    good, revoked = (f["client_fullchain"], f["client_key"]), (f["revoked_fullchain"], f["revoked_key"])
    clients = [
        TlsClient("good client certificate", "python", *good, expect_accept=True),
        TlsClient("good client certificate", "openssl", *good, expect_accept=True),
        TlsClient("revoked client certificate", "python", *revoked, expect_accept=False),
        TlsClient("revoked client certificate, TLS 1.2", "python", *revoked, expect_accept=False, tls12=True),
        TlsClient("revoked client certificate", "openssl", *revoked, expect_accept=False),
    ]
    with MtlsServer(f["server_fullchain"], f["server_key"], bundle, crl_file=f["crls_pem"]) as server:
        detail(f"TLS server on {TLS_HOST}:{server.port}: CERT_REQUIRED, VERIFY_CRL_CHECK_CHAIN, "
               f"CRLs = {demo.shown(str(f['crls_pem']))}")  # fmt: skip
        failures = try_clients(demo, server, clients, bundle, demo.issued["client"])
    if failures:
        raise StepFailed("unexpected outcome for: " + "; ".join(failures))
    return "good certificate accepted; revoked certificate refused (certificate revoked)"


# ----- CloudFront: origin certificate in ACM, revoked serials in the KeyValueStore, connection function

ORIGIN_CN = "origin.demo.example"
ACM_REGION = "us-east-1"
KVS_WAIT_SECONDS = 15.0
KVS_POLL_SECONDS = 0.2
CONNECTION_DIR = REPO / "functions" / "connection"


def client_error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (empty for anything else)."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def colon_hex(serial_number: int) -> str:
    """A serial as CloudFront passes it to a connection function: the DER INTEGER's octets (a leading
    00 when the top bit is set) as lowercase hex separated by colons, ``4a:3f:05``."""
    octets = serial_number.to_bytes(serial_number.bit_length() // 8 + 1, "big")
    return ":".join(f"{b:02x}" for b in octets)


def step_origin_cert(demo: Demo) -> str:
    """utils/cloudfront-origin-cert.py, then the certificate as ACM in us-east-1 holds it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    result = demo.cli("cloudfront-origin-cert.py", ORIGIN_CN, "--san", f"dns:{ORIGIN_CN}", "--out-dir",
                      str(demo.out_dir), "--name", "origin", "--force", "--json")  # fmt: skip
    if result.returncode != 0:
        raise StepFailed(f"cloudfront-origin-cert.py exited with status {result.returncode}: {result.stderr.strip()}")
    info = json.loads(result.stdout)
    demo.issued["origin"] = info
    arn = info["acm_certificate_arn"]
    detail(f"serial {info['serial_number']}  subject {info['subject']}  key {info['key_type']}  "
           f"not after {info['not_after']}")  # fmt: skip
    detail("wrote " + ", ".join(demo.shown(p) for p in info["written"]) + " (no key file: the key exists only in ACM)")
    detail("OriginMtlsConfig for the origin's CustomOriginConfig in the distribution config:")
    for line in json.dumps(info["origin_mtls_config"], indent=2).splitlines():
        detail("  " + line)
    problems = []
    if list(demo.out_dir.glob("origin*.key")) or "PRIVATE KEY" in result.stdout:
        problems.append("a private key was written or printed")

    region = arn.split(":")[3] if arn.count(":") >= 5 else "?"
    detail(f"the stack runs in {demo.sandbox.state['region']}; the ARN's region is {region}")
    acm = demo.client("acm", ACM_REGION)
    try:
        described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        got = acm.get_certificate(CertificateArn=arn)
        tags = acm.list_tags_for_certificate(CertificateArn=arn).get("Tags", [])
    except Exception as exc:  # botocore ClientError / endpoint errors: the sandbox lacks ACM us-east-1
        raise StepFailed(f"the sandbox's ACM in {ACM_REGION} cannot show {arn}: {type(exc).__name__}: {exc}") from None
    ekus = [u.get("Name", "?") for u in described.get("ExtendedKeyUsages", [])]
    detail(f"acm describe-certificate ({ACM_REGION}): Type {described.get('Type')}, "
           f"Status {described.get('Status')}, KeyAlgorithm {described.get('KeyAlgorithm')}, "
           f"ExtendedKeyUsages {', '.join(ekus) or '(none)'}")  # fmt: skip
    detail(f"  Serial {described.get('Serial')}, DomainName {described.get('DomainName')}, "
           f"NotAfter {described.get('NotAfter'):%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
    detail("  tags " + ", ".join(f"{t['Key']}={t.get('Value', '')}" for t in tags))

    leaf = x509.load_pem_x509_certificate(got["Certificate"].encode())
    chain = x509.load_pem_x509_certificates(got.get("CertificateChain", "").encode())
    issued_chain = x509.load_pem_x509_certificates(Path(info["files"]["chain"]).read_bytes())
    issued_leaf = x509.load_pem_x509_certificate(Path(info["files"]["certificate"]).read_bytes())
    fingerprint = leaf.fingerprint(hashes.SHA256())
    roles = ("issuing CA", "root CA")
    ours = {c.fingerprint(hashes.SHA256()): role for c, role in zip(issued_chain, roles, strict=False)}
    detail(f"acm get-certificate: the certificate {'is' if leaf == issued_leaf else 'is NOT'} the one the CLI got; "
           f"the chain in ACM:")  # fmt: skip
    for cert in chain:
        role = ours.get(cert.fingerprint(hashes.SHA256()))
        if cert.fingerprint(hashes.SHA256()) == fingerprint:
            role = "THE LEAF"
        role = role or "appended by the ACM emulation, not imported by the CA"
        detail(f"  {cert.subject.rfc4514_string()}  ({role})")
    text_file = demo.work / "origin-acm.crt"
    text_file.write_bytes(leaf.public_bytes(Encoding.PEM))
    text = demo.run(["openssl", "x509", "-in", str(text_file), "-noout", "-text"]).stdout
    for line in excerpt(text, ("Public Key Algorithm", "NIST CURVE", "Extended Key Usage")):
        detail("  " + line)

    if region != ACM_REGION:
        problems.append(f"the ARN is in {region}, not {ACM_REGION}")
    if leaf != issued_leaf:
        problems.append("ACM holds another certificate than the one issued")
    if described.get("Status") != "ISSUED":
        problems.append(f"status {described.get('Status')}")
    if described.get("KeyAlgorithm") != "EC_prime256v1" or "NIST CURVE: P-256" not in text:
        problems.append(f"key algorithm {described.get('KeyAlgorithm')}, not EC P-256")
    if "TLS_WEB_CLIENT_AUTHENTICATION" not in ekus or "TLS Web Client Authentication" not in text:
        problems.append("the EKU is not clientAuth (TLS Web Client Authentication)")
    if any(c.fingerprint(hashes.SHA256()) == fingerprint for c in chain):
        problems.append("the chain in ACM contains the leaf")
    if [c.fingerprint(hashes.SHA256()) for c in chain[: len(issued_chain)]] != list(ours):
        problems.append("the chain in ACM does not start with the issuing and the root CA")
    if problems:
        raise StepFailed("; ".join(problems))
    return f"{arn}: {described['Status']}, EC P-256, EKU clientAuth, chain issuing + root without the leaf"


def kvs_items(kvs: Any, arn: str) -> dict[str, str]:
    """Every key and value of a KeyValueStore (``list_keys``, 50 per page)."""
    items: dict[str, str] = {}
    kwargs: dict[str, Any] = {"KvsARN": arn, "MaxResults": 50}
    while True:
        page = kvs.list_keys(**kwargs)
        items.update({i["Key"]: i["Value"] for i in page.get("Items", [])})
        if not page.get("NextToken"):
            return items
        kwargs["NextToken"] = page["NextToken"]


def step_kvs(demo: Demo) -> str:
    """The revoked serial appears in the KeyValueStore (the stream-triggered sync); the good one does not."""
    arn = demo.sandbox.state.get("outputs", {}).get("RevokedSerialsStoreArn")
    if not arn:
        raise StepFailed("the sandbox's stack has no RevokedSerialsStoreArn output, so there is no KeyValueStore")
    kvs = demo.kvs_client()
    revoked, good = demo.revocation["serial"], demo.issued["client"]["serial_number"]
    detail(f"KeyValueStore {arn}")
    detail(f"nothing here invokes SyncKvsFunction: the table stream does; polling get_key({revoked}) every "
           f"{KVS_POLL_SECONDS:g} s for {KVS_WAIT_SECONDS:g} s")  # fmt: skip
    started, polls = time.monotonic(), 0
    while True:
        polls += 1
        try:
            item = kvs.get_key(KvsARN=arn, Key=revoked)
            break
        except Exception as exc:
            if client_error_code(exc) != "ResourceNotFoundException":
                raise StepFailed(f"get_key failed: {type(exc).__name__}: {exc}") from None
        if time.monotonic() - started >= KVS_WAIT_SECONDS:
            raise StepFailed(
                f"{revoked} is not in the KeyValueStore after {KVS_WAIT_SECONDS:g} s ({polls} polls): the "
                f"stream-triggered SyncKvsFunction did not run\n{demo.sandbox.log_tail(6)}"
            )
        time.sleep(KVS_POLL_SECONDS)
    waited = time.monotonic() - started
    since = time.monotonic() - demo.revocation["recorded"]
    detail(f"get_key: {item['Key']} = {item['Value']!r}: found after {waited:.1f} s of polling "
           f"({polls} {'poll' if polls == 1 else 'polls'}), {since:.1f} s after revoke-cert.py returned")  # fmt: skip
    store = kvs.describe_key_value_store(KvsARN=arn)
    modified = store.get("LastModified")
    if modified is not None and demo.revocation.get("recorded_wall"):
        lag = modified.timestamp() - demo.revocation["recorded_wall"]
        detail(f"the sync wrote the store {lag:.1f} s after revoke-cert.py returned (DescribeKeyValueStore "
               f"LastModified); ItemCount {store.get('ItemCount')}, {store.get('TotalSizeInBytes')} bytes, "
               f"ETag {store.get('ETag')}")  # fmt: skip
    items = kvs_items(kvs, arn)
    detail(f"list_keys: {len(items)} {'key' if len(items) == 1 else 'keys'}")
    for key, value in items.items():
        detail(f"  {key} = {value}")
    try:
        kvs.get_key(KvsARN=arn, Key=good)
        good_found = True
    except Exception as exc:
        if client_error_code(exc) != "ResourceNotFoundException":
            raise StepFailed(f"get_key failed: {type(exc).__name__}: {exc}") from None
        good_found = False
    detail(f"get_key({good}) (the good client certificate): "
           f"{'FOUND' if good_found else 'ResourceNotFoundException, not revoked'}")  # fmt: skip

    problems = []
    expected_value = f"{demo.revocation['revoked_at']} {REVOCATION_REASON}"
    if item["Value"] != expected_value:
        problems.append(f"the value is {item['Value']!r}, expected {expected_value!r}")
    if revoked not in items:
        problems.append("list_keys does not list the revoked serial")
    if good_found or good in items:
        problems.append("the good certificate's serial is in the store")
    if problems:
        raise StepFailed("; ".join(problems))
    export = demo.work / "kvs-items.json"
    export.write_text(json.dumps({"data": [{"key": k, "value": v} for k, v in items.items()]}, indent=2) + "\n")
    demo.files["kvs_items"] = export
    detail(f"exported to {demo.shown(str(export))} (the KeyValueStore import-file format) for the next step")
    return f"{revoked} -> {item['Value']!r} (found after {waited:.1f} s of polling); the good serial is absent"


#: Runs connection.js under Node.js through functions/connection/harness.mjs (its stand-in for the
#: ``cloudfront`` module), with the store filled from a KeyValueStore export; one JSON line out.
CONNECTION_RUNNER = """\
import { readFileSync } from 'node:fs';
import { loadConnectionFunction } from %(harness)s;

const [itemsFile, casesFile] = process.argv.slice(2);
const { connectionHandler, kvsState } = await loadConnectionFunction();
for (const item of JSON.parse(readFileSync(itemsFile, 'utf8')).data) {
    kvsState.store.set(item.key, item.value);
}
const results = [];
for (const c of JSON.parse(readFileSync(casesFile, 'utf8'))) {
    const seen = { decisions: [], logs: [] };
    const connection = {
        clientIp: '203.0.113.10',
        clientCertificate: { certificates: { leaf: { serialNumber: c.serialNumber, subject: c.subject,
                                                     issuer: c.issuer } } },
        allow() { seen.decisions.push('allow'); },
        deny() { seen.decisions.push('deny'); },
        logCustomData(text) { seen.logs.push(text); },
    };
    kvsState.calls.length = 0;
    await connectionHandler(connection);
    results.push({ ...seen, lookups: kvsState.calls.map((call) => `${call.op}("${call.key}")`) });
}
process.stdout.write(JSON.stringify(results) + '\\n');
"""


@dataclass(frozen=True)
class ConnectionCase:
    """One viewer connection for the connection function: a leaf certificate and the decision expected."""

    label: str
    certificate: Path
    serial_number: str
    expect: str


def step_connection_function(demo: Demo) -> str:
    """connection.js under Node.js, the KeyValueStore's content in the stand-in: revoked deny, good allow."""
    from cryptography import x509

    if shutil.which("node") is None:
        raise StepFailed("Node.js is not installed, so the connection function cannot run (Node 18 or later)")
    source, harness = CONNECTION_DIR / "connection.js", CONNECTION_DIR / "harness.mjs"
    for path in (source, harness):
        if not path.is_file():
            raise StepFailed(f"{demo.shown(str(path))} does not exist")
    code = source.read_text(encoding="utf-8")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    detail(f"Node.js {version}; {demo.shown(str(source))}: {len(code.encode())} bytes (CloudFront's limit: 10 KB)")
    deployed = demo.sandbox.state.get("connection_functions", {}).get("RevocationCheckFunction", {})
    if deployed.get("code") is not None:
        same = deployed["code"].strip() == code.strip()
        detail(f"the sandbox's {deployed.get('name')} ({deployed.get('runtime')}, stage {deployed.get('stage')}, "
               f"associated with the KeyValueStore) runs {'this same code' if same else 'DIFFERENT code'}")  # fmt: skip
        if not same:
            raise StepFailed("template.yaml's connection function code differs from connection.js: "
                             "run python utils/embed-connection-function.py")  # fmt: skip

    revoked_file, good_file = demo.files["revoked_certificate"], demo.files["client_certificate"]
    revoked_cert = x509.load_pem_x509_certificate(revoked_file.read_bytes())
    good_cert = x509.load_pem_x509_certificate(good_file.read_bytes())
    openssl_serial = demo.run(["openssl", "x509", "-in", str(revoked_file), "-noout", "-serial"]).stdout
    detail(openssl_serial.strip())
    cases = [
        ConnectionCase("revoked certificate, serial as CloudFront passes it", revoked_file,
                       colon_hex(revoked_cert.serial_number), "deny"),
        ConnectionCase("revoked certificate, serial as openssl x509 -serial prints it", revoked_file,
                       openssl_serial.strip().partition("=")[2], "deny"),
        ConnectionCase("good certificate, serial as CloudFront passes it", good_file,
                       colon_hex(good_cert.serial_number), "allow"),
    ]  # fmt: skip
    subjects = {revoked_file: revoked_cert, good_file: good_cert}
    cases_file, runner = demo.work / "connection-cases.json", demo.work / "connection-run.mjs"
    cases_file.write_text(json.dumps([
        {"serialNumber": c.serial_number, "subject": subjects[c.certificate].subject.rfc4514_string(),
         "issuer": subjects[c.certificate].issuer.rfc4514_string()} for c in cases
    ]))  # fmt: skip
    runner.write_text(CONNECTION_RUNNER % {"harness": json.dumps(harness.as_uri())}, encoding="utf-8")
    started = time.monotonic()
    result = demo.run(["node", str(runner), str(demo.files["kvs_items"]), str(cases_file)], check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise StepFailed(f"node exited with status {result.returncode}: {result.stderr.strip()[-600:]}")
    try:
        outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise StepFailed(f"node printed no result: {result.stdout[-300:]!r}") from None
    exported = len(json.loads(demo.files["kvs_items"].read_text(encoding="utf-8"))["data"])
    detail(f"the stand-in 'cloudfront' module's kvs() answers from the {exported} exported "
           f"{'key' if exported == 1 else 'keys'}; node ran the {len(cases)} connections "
           f"in {seconds:.2f} s")  # fmt: skip
    failures = []
    for case, outcome in zip(cases, outcomes, strict=True):
        decisions, logs = outcome["decisions"], outcome["logs"]
        ok = decisions == [case.expect]
        if ok and case.expect == "deny":
            entry = json.loads(logs[0]) if len(logs) == 1 else {}
            canonical = format(subjects[case.certificate].serial_number, "x")
            canonical = canonical if len(canonical) % 2 == 0 else "0" + canonical
            ok = entry.get("reason") == "revoked" and entry.get("serial") == canonical
        elif ok:
            ok = logs == []
        detail(f"[{'ok  ' if ok else 'FAIL'}] {case.label}: serialNumber {case.serial_number}")
        detail(f"         decision {' + '.join(decisions) or '(none)'} (want {case.expect}); "
               f"KVS lookups: {', '.join(outcome['lookups']) or '(none)'}")  # fmt: skip
        shown_logs = " | ".join(logs) if logs else "(none: an allowed connection is not logged)"
        detail(f"         logCustomData: {shown_logs}")
        if not ok:
            failures.append(case.label)
    if failures:
        raise StepFailed("unexpected decision or log for: " + "; ".join(failures))
    return "revoked certificate denied (logged as revoked, both serial forms); good certificate allowed"


@dataclass(frozen=True)
class Step:
    """One demo step: ``run`` returns a one-line result or raises :class:`StepFailed`.

    ``requires`` names steps that must have passed; otherwise this one is skipped.
    """

    name: str
    title: str
    run: Callable[[Demo], str]
    requires: tuple[str, ...] = ()


def _aia(certificate_file: Path, method: str) -> str:
    """The first AIA URL of ``method`` (``OCSP`` or ``CA_ISSUERS``) in a PEM certificate."""
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID

    certificate = x509.load_pem_x509_certificate(certificate_file.read_bytes())
    try:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        raise StepFailed(f"{certificate_file.name} has no AIA extension") from None
    wanted = getattr(AuthorityInformationAccessOID, method)
    for description in aia:
        if description.access_method == wanted:
            return str(description.access_location.value)
    raise StepFailed(f"{certificate_file.name} has no AIA {method} URL")


def step_ocsp(demo: Demo) -> str:
    """openssl ocsp with the responder URL from each certificate: good, revoked (with reason), and the
    issuing CA itself (root-signed); every response verifies against the CA bundle."""
    f = demo.files
    cases = [
        ("client", f["client_certificate"], f["issuing_pem"], "good"),
        ("revoked", f["revoked_certificate"], f["issuing_pem"], "revoked"),
        ("issuing CA", f["issuing_pem"], f["root_pem"], "good"),
    ]
    answers = []
    for label, certificate, issuer, expected in cases:
        url = _aia(certificate, "OCSP")
        result = demo.run(["openssl", "ocsp", "-issuer", str(issuer), "-cert", str(certificate), "-url", url,
                           "-CAfile", str(f["client_ca_bundle"]), "-nonce"], check=False)  # fmt: skip
        lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        for line in lines[:6]:
            detail("  " + line)
        status = f"{certificate}: {expected}"
        if result.returncode != 0 or "Response verify OK" not in result.stderr or status not in result.stdout:
            raise StepFailed(f"{label}: expected {expected!r} verified: {result.stdout}{result.stderr}")
        if expected == "revoked" and f"Reason: {REVOCATION_REASON}" not in result.stdout:
            raise StepFailed(f"{label}: the reason is not {REVOCATION_REASON}: {result.stdout}")
        answers.append(f"{label} {expected}")
    return "OCSP from the certificates' AIA URL: " + ", ".join(answers) + " (responses verified)"


def step_crl_by_url(demo: Demo) -> str:
    """Fetch the CRLs from the CRL distribution points in the certificates (the hosted base URL), then
    openssl verify -crl_check_all with exactly what was fetched: good passes, revoked fails."""
    import urllib.request

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    f = demo.files
    fetched, pems = [], []
    for label, certificate in (("client", f["client_certificate"]), ("issuing CA", f["issuing_pem"])):
        cert = x509.load_pem_x509_certificate(certificate.read_bytes())
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        url = str(points[0].full_name[0].value)  # type: ignore[index]
        with urllib.request.urlopen(url, timeout=10) as response:
            der, cache_control = response.read(), response.headers.get("Cache-Control")
        crl = x509.load_der_x509_crl(der)
        detail(f"{label}: GET {demo.shown(url)} -> {len(der)} bytes, Cache-Control {cache_control}, "
               f"CRL number {crl_number(crl)}, {entries(crl)}")  # fmt: skip
        fetched.append(url)
        pems.append(crl.public_bytes(Encoding.PEM))
    crl_file = demo.out_dir / "published" / "crls-by-url.pem"
    crl_file.write_bytes(b"".join(pems))
    for kind, expected in (("client", 0), ("revoked", 2)):
        command = ["openssl", "verify", "-CAfile", str(f["root_pem"]), "-untrusted", str(f["issuing_pem"]),
                   "-crl_check_all", "-CRLfile", str(crl_file), str(f[f"{kind}_certificate"])]  # fmt: skip
        result = demo.run(command, check=False)
        detail("  " + (result.stdout + result.stderr).strip().splitlines()[-1])
        if result.returncode != expected:
            raise StepFailed(f"openssl verify (fetched CRLs) of the {kind} certificate exited {result.returncode}")
    return f"CRLs fetched from {len(fetched)} distribution points in the certificates; openssl agrees"


def step_lifecycle(demo: Demo) -> str:
    """List (the index lags: poll with a deadline), show, renew the client certificate with
    utils/certs.py, then run the daily expiry job (as its schedule does) and show its event."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(demo.files["client_certificate"].read_bytes())
    serial = f"{cert.serial_number:x}".rjust(2 * ((cert.serial_number.bit_length() + 7) // 8), "0")
    deadline = time.monotonic() + 30
    while True:
        listed = demo.cli("certs.py", "list", "--json")
        if listed.returncode != 0:
            raise StepFailed(f"certs.py list failed: {listed.stderr.strip()}")
        entries = json.loads(listed.stdout)["certificates"]
        if serial in [e["serial_number"] for e in entries]:
            break
        if time.monotonic() > deadline:
            raise StepFailed("certs.py list did not show the client certificate within 30 s")
        time.sleep(0.5)
    detail(f"certs.py list: {len(entries)} certificate(s), earliest expiry first")
    shown = demo.cli("certs.py", "show", serial, "--json")
    if shown.returncode != 0:
        raise StepFailed(f"certs.py show failed: {shown.stderr.strip()}")
    info = json.loads(shown.stdout)
    detail(
        f"certs.py show {serial[:16]}...: {info['subject']}, {info['status']}, requested by {info.get('requested_by')}"
    )
    renewed = demo.cli("certs.py", "renew", "--cert", str(demo.files["client_certificate"]), "--json")
    if renewed.returncode != 0:
        raise StepFailed(f"certs.py renew failed: {renewed.stderr.strip()}")
    new = json.loads(renewed.stdout)
    detail(f"renewed: {new['serial_number'][:16]}... (new key) succeeds {new['renews'][:16]}...")
    expiry = demo.client("lambda").invoke(FunctionName=demo.sandbox.state["outputs"]["ExpiryFunctionName"])
    report = json.loads(expiry["Payload"].read())
    if expiry.get("FunctionError"):
        raise StepFailed(f"the expiry job failed: {report}")
    notices = report.get("notices", [])
    if not notices:
        raise StepFailed(f"the expiry job sent no notice for the 30-day client certificate: {report}")
    first = notices[0]
    detail(
        f"EventBridge 'Certificate Expiring': {first['serial_number'][:16]}... "
        f"at the {first['threshold_days']}-day threshold"
    )
    return f"{len(entries)} listed, renewed {serial[:12]}..., {len(notices)} expiry event(s)"


STEPS: list[Step] = [
    Step("prerequisites", "Prerequisites", step_prerequisites),
    Step("sandbox", "Start the local sandbox (moto + real handlers)", step_sandbox, ("prerequisites",)),
    Step("client_cert", "Issue a client certificate with utils/client-cert.py", step_client_cert, ("sandbox",)),
    Step(
        "server_cert",
        "Issue a server certificate for localhost with utils/server-cert.py",
        step_server_cert,
        ("sandbox",),
    ),
    Step(
        "published_ca",
        "Download the published CA certificates and bundle",
        step_published_ca,
        ("client_cert", "server_cert"),
    ),
    Step("openssl_verify", "openssl verify against the published CA", step_openssl_verify, ("published_ca",)),
    Step("mtls", "Mutual TLS handshake on 127.0.0.1", step_mtls, ("client_cert", "server_cert")),
    Step("refusals", "Bad requests are refused, nothing is written", step_refusals, ("sandbox",)),
    Step(
        "lifecycle", "List, show, renew with utils/certs.py; the expiry job's event", step_lifecycle, ("client_cert",)
    ),
    Step("second_client", "Issue a second client certificate (to revoke)", step_second_client, ("sandbox",)),
    Step("revoke", "Revoke it (keyCompromise) with utils/revoke-cert.py", step_revoke, ("second_client",)),
    Step(
        "crl_published",
        "Wait for the stream-triggered CRL that lists it",
        step_crl_published,
        ("revoke", "published_ca"),
    ),
    Step("revoke_again", "Revoke it again: nothing changes", step_revoke_again, ("revoke",)),
    Step("crls", "Download the published CRLs", step_crls, ("crl_published",)),
    Step("openssl_crl", "openssl verify -crl_check_all with the CRLs", step_openssl_crl, ("crls",)),
    Step("nginx", "nginx mutual TLS checking CRLs (ssl_crl)", step_nginx, ("crls", "client_cert", "server_cert")),
    Step("ocsp", "OCSP with openssl from the URLs in the certificates", step_ocsp, ("crl_published", "published_ca")),
    Step(
        "nginx_ocsp",
        "nginx mutual TLS checking OCSP (ssl_ocsp on, no CRL file)",
        step_nginx_ocsp,
        ("ocsp", "client_cert", "server_cert"),
    ),
    Step(
        "crl_by_url",
        "CRLs fetched from the URLs in the certificates",
        step_crl_by_url,
        ("crl_published", "published_ca"),
    ),
    Step(
        "python_crl",
        "Python ssl mutual TLS with VERIFY_CRL_CHECK_CHAIN",
        step_python_crl,
        ("crls", "client_cert", "server_cert"),
    ),
    Step(
        "origin_cert",
        "CloudFront origin certificate: issued, imported into ACM us-east-1",
        step_origin_cert,
        ("sandbox",),
    ),
    Step("kvs", "Revoked serial in the CloudFront KeyValueStore", step_kvs, ("revoke", "client_cert")),
    Step(
        "connection_function",
        "Connection function under Node.js: revoked denied, good allowed",
        step_connection_function,
        ("kvs",),
    ),
]


@dataclass(frozen=True)
class Outcome:
    """Result of one step: ``status`` is PASS, FAIL or SKIP; ``seconds`` its duration."""

    step: Step
    status: str
    summary: str
    seconds: float


def run_steps(demo: Demo, steps: Sequence[Step]) -> list[Outcome]:
    """Run ``steps`` in order, printing each; a step whose requirements did not pass is skipped."""
    outcomes: list[Outcome] = []
    passed: set[str] = set()
    for number, step in enumerate(steps, 1):
        say(f"\n[{number}/{len(steps)}] {step.title}")
        missing = [r for r in step.requires if r not in passed]
        if missing:
            outcomes.append(Outcome(step, "SKIP", f"needs {', '.join(missing)}", 0.0))
            say(f"  SKIP: needs {', '.join(missing)}")
            continue
        started = time.monotonic()
        try:
            summary = step.run(demo)
            status = "PASS"
            passed.add(step.name)
        except StepFailed as exc:
            status, summary = "FAIL", str(exc)
        except Exception as exc:  # a bug or an environment problem: report it as this step's failure
            status, summary = "FAIL", f"{type(exc).__name__}: {exc}"
        seconds = time.monotonic() - started
        outcomes.append(Outcome(step, status, summary, seconds))
        first, _, rest = summary.partition("\n")
        say(f"  {status}: {first}")
        if rest:
            detail(rest)
    return outcomes


def print_summary(outcomes: Sequence[Outcome]) -> None:
    """The table of steps with PASS/FAIL/SKIP."""
    width = max(len(o.step.title) for o in outcomes)
    say("\nSummary")
    say(f"  {'step':<{width}}  result  seconds")
    for o in outcomes:
        say(f"  {o.step.title:<{width}}  {o.status:<6}  {o.seconds:7.1f}")
    failed = [o for o in outcomes if o.status != "PASS"]
    say(f"\n{'FAILED' if failed else 'PASSED'}: {len(outcomes) - len(failed)}/{len(outcomes)} steps passed")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo. Returns 0 when every step passed, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--out-dir", type=Path, default=Path("demo-out"), help="where certificates and keys go (default ./demo-out)"
    )
    parser.add_argument(
        "--sandbox-timeout",
        type=float,
        default=120,
        metavar="SECONDS",
        help="how long to wait for the sandbox (default 120)",
    )
    args = parser.parse_args(argv)

    out_dir = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    say(f"KMS-backed private CA demo: files go to {out_dir}")
    with tempfile.TemporaryDirectory(prefix="kmsca-demo-") as tmp:
        work = Path(tmp)
        demo = Demo(out_dir=out_dir, work=work, sandbox=Sandbox(work, args.sandbox_timeout))
        try:
            outcomes = run_steps(demo, STEPS)
        finally:
            say(f"\nsandbox: {demo.sandbox.stop()}")
    print_summary(outcomes)
    return 0 if all(o.status == "PASS" for o in outcomes) else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
