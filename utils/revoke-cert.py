#!/usr/bin/env python3
"""Revoke a certificate issued by the KMS-backed private CA.

Give the certificate by serial number (``--serial``, hex in any case, colons allowed) or as a
file (``--cert``, PEM or DER), and an RFC 5280 reason (``--reason``, default ``unspecified``).
The revoke function is invoked with your own AWS credentials; the table stream then republishes
the issuing CA's CRL within seconds. Run with ``--help`` for the options; the shared code is in
``utils/certcli/``.

Example::

    python utils/revoke-cert.py --cert certs/device-42.crt --reason keyCompromise --stack-name kmsca-dev
    python utils/revoke-cert.py --serial 4A:3F:05:... --reason superseded
    AWS_ENDPOINT_URL=http://127.0.0.1:4566 python utils/revoke-cert.py --serial 4a3f05...  # local sandbox

A shim of the installed console script ``kmsca-revoke-cert`` (``pip install .`` or ``pip install -e .`` in
this repository installs it, with the ``certcli`` and ``kmsca`` packages it imports).
"""

from __future__ import annotations

import sys

try:
    from certcli.scripts import revoke_cert
except ModuleNotFoundError as exc:  # the package (pyproject.toml) or one of its dependencies is missing
    sys.exit(f"error: NotInstalled: no module {exc.name}: install the CLIs: `pip install .` (or `pip install -e .`)")

if __name__ == "__main__":
    sys.exit(revoke_cert(sys.argv[1:], prog="revoke-cert.py"))
