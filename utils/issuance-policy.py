#!/usr/bin/env python3
"""Read, check and replace the CA's per-caller issuance policy (table item ``POLICY#issuance``).

The document format and its semantics: ``layers/ca/kmsca/caller_policy.py``. ``put`` validates
the file with the CA core (the same code the functions run) before writing, and writes only if
the stored revision is still the one it read (``--if-revision N`` to pin the one you edited).
Needs the stack's ``PolicyAdminPolicy`` (DescribeStacks for ``CaTableName``, GetItem/PutItem on
``POLICY#*``). Runs where the CA core runs (Python 3.11+: the project's virtual environment).

Example::

    python utils/issuance-policy.py get > policy.json
    python utils/issuance-policy.py check policy.json
    python utils/issuance-policy.py put policy.json --stack-name kmsca-dev
    AWS_ENDPOINT_URL=http://127.0.0.1:4566 python utils/issuance-policy.py get   # local sandbox

Exit status: 0 done, 1 refused or failed (``error: <Code>: <message>`` on stderr), 2 usage.

A shim of the installed console script ``kmsca-issuance-policy`` (``pip install .`` or ``pip install -e .`` in
this repository installs it, with the ``certcli`` and ``kmsca`` packages it imports).
"""

from __future__ import annotations

import sys

try:
    from certcli.scripts import issuance_policy
except ModuleNotFoundError as exc:  # the package (pyproject.toml) or one of its dependencies is missing
    sys.exit(f"error: NotInstalled: no module {exc.name}: install the CLIs: `pip install .` (or `pip install -e .`)")

if __name__ == "__main__":
    sys.exit(issuance_policy(sys.argv[1:], prog="issuance-policy.py"))
