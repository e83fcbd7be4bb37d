"""The table's key layout (kmsca.table_keys): the exact strings, and parsing that refuses other kinds."""

from __future__ import annotations

import pytest
from kmsca import table_keys


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (table_keys.certificate_key("0a1b"), "CERT#0a1b"),
        (table_keys.ca_key("issuing"), "CA#issuing"),
        (table_keys.idempotency_key("ab12"), "IDEMPOTENCY#ab12"),
        (table_keys.crl_number_key("issuing"), "CRLNUMBER#issuing"),
        (table_keys.renewal_key("0a1b"), "RENEWAL#0a1b"),
        (table_keys.notice_key("0a1b", 30), "NOTICE#0a1b#30"),
        (table_keys.notice_key("0a1b", 90, ca="issuing"), "NOTICE#CA#issuing#0a1b#90"),
        (table_keys.kvs_state_key("0123"), "KVSSTATE#0123"),
    ],
)
def test_keys_have_the_documented_layout(key: str, expected: str) -> None:
    assert key == expected


def test_serial_and_predecessor_are_read_back() -> None:
    assert table_keys.serial_of(table_keys.certificate_key("0a1b")) == "0a1b"
    assert table_keys.predecessor_of(table_keys.renewal_key("0a1b")) == "0a1b"
    assert table_keys.is_certificate_key("CERT#0a1b") and not table_keys.is_certificate_key("CA#issuing")


@pytest.mark.parametrize("key", ["CA#issuing", "RENEWAL#0a1b", "cert#0a1b", "0a1b", ""])
def test_serial_of_refuses_a_foreign_key(key: str) -> None:
    with pytest.raises(ValueError, match="not CERT#"):
        table_keys.serial_of(key)


def test_predecessor_of_refuses_a_certificate_key() -> None:
    with pytest.raises(ValueError, match="not RENEWAL#"):
        table_keys.predecessor_of("CERT#0a1b")
