"""The CloudFront connection function (functions/connection/connection.js) under Node.js.

Runs its node:test suite, and checks that its canonicalSerial() computes the same KeyValueStore
key as the CA's Python canonical form (kmsca.serial.serial_to_hex) for random serials in the
renderings CloudFront may pass (uppercase or lowercase, colons, a leading 00 sign octet, odd
length).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from kmsca.serial import serial_to_hex

REPO = Path(__file__).resolve().parents[2]
FUNCTION_DIR = REPO / "functions" / "connection"
SOURCE = FUNCTION_DIR / "connection.js"
CLOUDFRONT_CODE_LIMIT = 10 * 1024

NODE = shutil.which("node")
if NODE is None and os.environ.get("CI"):
    raise RuntimeError("node (Node.js) is not on PATH; CI must run the connection function tests")
needs_node = pytest.mark.skipif(
    NODE is None, reason="node (Node.js) is not on PATH: the connection function tests need it"
)


def _colons(hex_text: str) -> str:
    return ":".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2))


def _renderings(serial: int) -> list[str]:
    """Ways a certificate's serial number may be written by CloudFront or other tools."""
    minimal = format(serial, "X")
    even = minimal if len(minimal) % 2 == 0 else "0" + minimal
    der = "00" + even if int(even[0], 16) >= 8 else even  # DER INTEGER content, with sign octet
    return [
        _colons(even),  # uppercase with colons (AWS samples)
        _colons(even).lower(),  # lowercase with colons (CloudFront documentation)
        _colons(der),  # DER content octets, sign octet included
        minimal,  # odd or even length, no colons
        minimal.lower(),
    ]


def test_function_is_under_the_cloudfront_size_limit() -> None:
    size = SOURCE.stat().st_size
    assert size < CLOUDFRONT_CODE_LIMIT, f"connection.js is {size} bytes; CloudFront allows {CLOUDFRONT_CODE_LIMIT}"


@needs_node
def test_node_suite_passes() -> None:
    result = subprocess.run(
        [NODE, "--test", "functions/connection/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"node --test functions/connection/ exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}",
            pytrace=False,
        )


@needs_node
def test_js_canonical_serial_matches_python() -> None:
    serials = [x509.random_serial_number() for _ in range(200)]
    # Edges: odd length, a set top bit (DER sign octet), the smallest and largest serials.
    serials += [0x0A1B, 0x8F01, 0x01, 0xFF, 0x80, 0x7F, (1 << 159) - 1, (1 << 160) - 1]
    inputs: list[str] = []
    expected: list[str] = []
    for serial in serials:
        for text in _renderings(serial):
            inputs.append(text)
            expected.append(serial_to_hex(serial))

    result = subprocess.run(
        [NODE, str(FUNCTION_DIR / "canonical-cli.mjs")],
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"canonical-cli.mjs failed:\n{result.stdout}\n{result.stderr}"
    actual = json.loads(result.stdout)
    assert len(actual) == len(inputs)
    mismatches = [(i, e, a) for i, e, a in zip(inputs, expected, actual, strict=True) if e != a]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"


@needs_node
def test_js_refuses_what_python_refuses() -> None:
    inputs = ["", "00", "00:00", "xyz", "4a-3f", "ff" * 21]
    result = subprocess.run(
        [NODE, str(FUNCTION_DIR / "canonical-cli.mjs")],
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout) == [None] * len(inputs)
