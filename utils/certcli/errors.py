"""Errors of the operator CLIs and their exit statuses.

A :class:`CliError` is printed as one line ``error: <Code>: <message>`` on stderr and exits 1; a
:class:`Refused` exits 2 (see :func:`certcli.report.run_reporting`).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_REFUSED = 2


class CliError(Exception):
    """A failure reported as ``error: <code>: <message>`` with exit code :attr:`exit_code`.

    Attributes:
        code: machine-readable code (the issue function's ``errorType`` when it refused).
        message: one sentence for a person; never contains key material.
        detail: printed on stderr after the error line when not empty (e.g. the PEM of a
            certificate that was issued but could not be saved); never key material.
    """

    exit_code = EXIT_FAILURE

    def __init__(self, code: str, message: str, detail: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail = detail


class Refused(CliError):
    """The request was refused before or by the issue function; nothing was issued or written."""

    exit_code = EXIT_REFUSED


class NotSaved(CliError):
    """The CA issued a certificate but the CLI could not save it (exit 1, code ``WriteFailed``).

    The message names the serial number and how to fetch the certificate again; :attr:`detail`
    holds its PEM.
    """

    def __init__(self, message: str, certificate_pem: str) -> None:
        super().__init__("WriteFailed", message, certificate_pem)
