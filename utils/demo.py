#!/usr/bin/env python3
"""End-to-end demo of the private CA on this machine, without an AWS account (README command 1).

Steps (each prints what it does and its result; a summary table closes the run):

1. prerequisites: Python packages and the ``openssl`` command are there.
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
        return [sys.executable, "-m", "utils.sandbox", "--port", str(port), "--state-file", str(self.state_file)]

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
    without ``AWS_*``/``KMSCA_*`` settings, plus the sandbox endpoint, region and dummy
    credentials (the sandbox accepts any; real ones are never sent to it)."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith(("AWS_", "KMSCA_"))}
    env.update(
        AWS_ENDPOINT_URL=state["endpoint_url"],
        AWS_REGION=state["region"],
        AWS_DEFAULT_REGION=state["region"],
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
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
        issued: ``--json`` summaries of the CLI runs, by name (``client``, ``server``).
        files: named files produced by the steps (``root_pem``, ``client_crt``, ...).
    """

    out_dir: Path
    work: Path
    sandbox: Sandbox
    env: dict[str, str] = field(default_factory=dict)
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

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
    import boto3
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    state = demo.sandbox.state
    bucket = state["outputs"]["PublicBucketName"]
    s3 = boto3.client(
        "s3", endpoint_url=state["endpoint_url"], region_name=state["region"],
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
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


def excerpt(x509_text: str) -> list[str]:
    """Interesting lines of ``openssl x509 -text``: names, validity, key, extensions and their values."""
    wanted = (
        "Serial Number", "Issuer:", "Not Before", "Not After", "Subject:", "Public Key Algorithm", "NIST CURVE",
        "Basic Constraints", "Key Usage", "Extended Key Usage", "Subject Alternative Name",
    )  # fmt: skip
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

    Each connection: handshake; then read one line, answer ``hello <subject> serial <hex>`` and
    close. Handshake failures are recorded; every outcome is put on :attr:`events`.
    """

    def __init__(self, fullchain: Path, key: Path, ca_bundle: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(cafile=str(ca_bundle))
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
        x509.CertificateBuilder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CLIENT_CN)]), ca_name,
                                leaf_key.public_key(), x509.random_serial_number(),
                                now - dt.timedelta(minutes=5), now + dt.timedelta(days=1))
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
    expected_serial = demo.issued["client"]["serial_number"]
    expected_subject = demo.issued["client"]["subject"]
    failures = []
    with MtlsServer(f["server_fullchain"], f["server_key"], bundle) as server:
        detail(f"TLS server on {TLS_HOST}:{server.port}: CERT_REQUIRED, trust = {demo.shown(str(bundle))}")
        for client in clients:
            server.drain()
            if client.tool == "openssl":
                accepted, seen = openssl_client(demo, client, server.port, bundle)
            else:
                accepted, seen = python_client(client, server.port, bundle)
            event = server.next_event()
            ok = accepted == client.expect_accept == event.accepted
            if ok and accepted and (event.serial_number, event.subject) != (expected_serial, expected_subject):
                ok = False
                seen += f" (server saw serial {event.serial_number}, expected {expected_serial})"
            verdict = "ok  " if ok else "FAIL"
            want = "accept" if client.expect_accept else "refuse"
            detail(f"[{verdict}] {client.label} ({client.tool}), want {want}")
            detail(f"         client: {seen}")
            detail(f"         server: {event.detail}" + (f", serial {event.serial_number}" if event.accepted else ""))
            if not ok:
                failures.append(f"{client.label} ({client.tool})")
    if failures:
        raise StepFailed("unexpected outcome for: " + "; ".join(failures))
    refused = sum(not c.expect_accept for c in clients)
    return f"accepted the issued certificate ({len(clients) - refused} clients), refused {refused} others"


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


@dataclass(frozen=True)
class Step:
    """One demo step: ``run`` returns a one-line result or raises :class:`StepFailed`.

    ``requires`` names steps that must have passed; otherwise this one is skipped.
    """

    name: str
    title: str
    run: Callable[[Demo], str]
    requires: tuple[str, ...] = ()


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
