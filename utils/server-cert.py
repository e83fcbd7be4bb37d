#!/usr/bin/env python3
"""Issue a TLS server certificate (EKU serverAuth) from the KMS-backed private CA.

Same as ``client-cert.py`` with the ``server`` profile; at least one ``--san`` is required
(checked before anything is sent). Run with ``--help`` for the options.

Example::

    python utils/server-cert.py localhost --san dns:localhost --san ip:127.0.0.1 --out-dir certs
"""

from __future__ import annotations

import sys

import certcli

if __name__ == "__main__":
    sys.exit(certcli.main(sys.argv[1:], profile=certcli.SERVER, prog="server-cert.py"))
