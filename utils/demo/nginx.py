"""nginx as the demo's relying party (one we did not write): a foreground server with a temporary
prefix that requires client certificates, and HTTPS clients (Python, ``openssl s_client``)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

from utils.demo.constants import SERVER_CN, TLS_HOST
from utils.demo.context import Demo
from utils.demo.output import StepFailed
from utils.demo.sandbox_process import free_port
from utils.demo.tls import reason


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


def nginx_binary() -> tuple[str, str]:
    """nginx's path and ``nginx -v`` text, or StepFailed with the install hint."""
    binary = find_nginx()
    if binary is None:
        raise StepFailed(
            "nginx is not installed, so the nginx check did not run: apt-get install nginx-light "
            "(./dev.sh demo installs it)"
        )
    return binary, subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stderr.strip()
