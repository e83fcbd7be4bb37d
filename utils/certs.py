#!/usr/bin/env python3
"""List, show and renew certificates of the KMS-backed private CA (see ``utils/certcli/inventory.py``).

Example::

    python utils/certs.py list --status issued --expiring-before 2026-12-31T00:00:00Z
    python utils/certs.py show 4A:3F:05:...
    python utils/certs.py renew --cert certs/device-42.crt --revoke-old-after-hours 48
"""

from __future__ import annotations

import sys

from certcli.inventory import certs_main

if __name__ == "__main__":
    sys.exit(certs_main(sys.argv[1:], prog="certs.py"))
