"""Mutual TLS on 127.0.0.1 for the demo: a Python ``ssl`` server that requires a client certificate,
Python and ``openssl s_client`` clients, and a certificate from a CA that is not ours."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from utils.demo.constants import CLIENT_CN, SERVER_CN, TLS_HOST
from utils.demo.context import Demo
from utils.demo.output import detail
from utils.demo.state import Issued


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


def try_clients(
    demo: Demo, server: MtlsServer, clients: Sequence[TlsClient], bundle: Path, accepted_cert: Issued
) -> list[str]:
    """Connect each client to ``server`` and compare client's and server's view with the expectation.

    An accepted connection must also show ``accepted_cert`` (the one certificate that should get
    in) on the server side.

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
        expected = (accepted_cert.serial_number, accepted_cert.subject)
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
