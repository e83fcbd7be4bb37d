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
"""

from __future__ import annotations

import sys

import certcli

if __name__ == "__main__":
    sys.exit(certcli.revoke_main(sys.argv[1:], prog="revoke-cert.py"))
