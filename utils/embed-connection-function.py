#!/usr/bin/env python3
"""Copy functions/connection/connection.js into edge/template.yaml's ConnectionFunctionCode block.

CloudFormation takes a connection function's code inline only, so the edge template (the one
template with the connection function; the CA stack nests it) carries a copy; this keeps the copy
equal to the file (tests/deploy/test_edge_template.py checks they match).

    python utils/embed-connection-function.py [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "edge" / "template.yaml"
SOURCE = REPO / "functions" / "connection" / "connection.js"
BLOCK = re.compile(r"(?P<head>      ConnectionFunctionCode: \|\n)(?P<body>(?:        .*\n|\n)*?)(?=\S|  \S)")


def embedded(template_text: str, code: str) -> str:
    """The template text with the block replaced by ``code`` indented 8 spaces."""
    match = BLOCK.search(template_text)
    if match is None:
        raise SystemExit("edge/template.yaml has no 'ConnectionFunctionCode: |' block")
    body = "".join(("        " + line if line.strip() else "\n") for line in code.splitlines(keepends=True))
    return template_text[: match.start("body")] + body + template_text[match.end("body") :]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the template's copy differs")
    args = parser.parse_args()
    text = TEMPLATE.read_text(encoding="utf-8")
    new = embedded(text, SOURCE.read_text(encoding="utf-8"))
    if args.check:
        if new != text:
            print("edge/template.yaml's ConnectionFunctionCode differs from connection.js; run this without --check")
            return 1
        return 0
    TEMPLATE.write_text(new, encoding="utf-8")
    print(f"embedded {SOURCE.relative_to(REPO)} ({SOURCE.stat().st_size} bytes) into edge/template.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
