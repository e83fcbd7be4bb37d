"""The CA table's key layout: one partition key (``pk``, a string) per item, no sort key.

Every ``pk`` is ``<KIND>#<id>``; this module is the only place that builds or parses one. The
IAM ``dynamodb:LeadingKeys`` patterns in template.yaml name the same prefixes (tests check them
against this code).

Item kinds (attributes written by :mod:`kmsca.store` and the modules named):

- ``CERT#<serial>``: one issued certificate (:class:`~kmsca.records.CertificateRecord`); the
  serial number is canonical lowercase hex.
- ``CA#<name>``: a CA certificate and its KMS key ARN (:class:`~kmsca.records.CaRecord`).
- ``IDEMPOTENCY#<sha256 of the key>``: the first response for an idempotency key (TTL).
- ``CRLNUMBER#<ca>``: the CRL number counter of a CA (atomic ADD).
- ``RENEWAL#<predecessor serial>``: the link from a renewed certificate to its successor.
- ``NOTICE#<serial>#<days>`` / ``NOTICE#CA#<ca>#<serial>#<days>``: the marker of an expiry
  notice sent (:mod:`kmsca.expiry`; TTL).
- ``KVSSTATE#<store id>`` / ``KVSSTATE#<target>``: what the CA last wrote to a KeyValueStore, or
  that it must be reconciled in full (:mod:`kmsca.kvs_state`; per edge target by its name).
- ``TARGET#registry``: the registry of edge targets, one map entry per target name
  (:mod:`kmsca.targets`); one item, so that every sync reads all targets with one GetItem.
- ``POLICY#<name>``: a policy document; ``POLICY#issuance`` is the per-caller issuance policy
  (:mod:`kmsca.policy_store`, :mod:`kmsca.caller_policy`).
"""

from __future__ import annotations

CERT_PREFIX = "CERT#"
CA_PREFIX = "CA#"
IDEMPOTENCY_PREFIX = "IDEMPOTENCY#"
CRLNUMBER_PREFIX = "CRLNUMBER#"
RENEWAL_PREFIX = "RENEWAL#"
NOTICE_PREFIX = "NOTICE#"
KVSSTATE_PREFIX = "KVSSTATE#"
TARGET_PREFIX = "TARGET#"
POLICY_PREFIX = "POLICY#"
ISSUANCE_POLICY = "issuance"


def _id_of(prefix: str, key: str) -> str:
    if not key.startswith(prefix):
        raise ValueError(f"the key is not {prefix}<id>")
    return key[len(prefix) :]


def certificate_key(serial_number: str) -> str:
    """``CERT#<serial>``: the key of an issued certificate's record."""
    return f"{CERT_PREFIX}{serial_number}"


def is_certificate_key(key: str) -> bool:
    """True when ``key`` is a certificate record's key (whatever follows the prefix)."""
    return key.startswith(CERT_PREFIX)


def serial_of(key: str) -> str:
    """The serial number in a ``CERT#<serial>`` key, as stored; ValueError for another kind."""
    return _id_of(CERT_PREFIX, key)


def ca_key(name: str) -> str:
    """``CA#<name>``: the key of a CA record (``root``, ``issuing``)."""
    return f"{CA_PREFIX}{name}"


def idempotency_key(key_hash: str) -> str:
    """``IDEMPOTENCY#<sha256 hex of the idempotency key>``."""
    return f"{IDEMPOTENCY_PREFIX}{key_hash}"


def crl_number_key(ca: str) -> str:
    """``CRLNUMBER#<ca>``: the CRL number counter of a CA."""
    return f"{CRLNUMBER_PREFIX}{ca}"


def renewal_key(predecessor: str) -> str:
    """``RENEWAL#<predecessor serial>``: the renewal link of a certificate."""
    return f"{RENEWAL_PREFIX}{predecessor}"


def predecessor_of(key: str) -> str:
    """The predecessor's serial number in a ``RENEWAL#<serial>`` key; ValueError for another kind."""
    return _id_of(RENEWAL_PREFIX, key)


def notice_key(serial_number: str, threshold_days: object, ca: str | None = None) -> str:
    """The marker of an expiry notice: ``NOTICE#<serial>#<days>`` for a certificate,
    ``NOTICE#CA#<ca>#<serial>#<days>`` for a CA certificate."""
    scope = ca_key(ca) + "#" if ca is not None else ""
    return f"{NOTICE_PREFIX}{scope}{serial_number}#{threshold_days}"


def kvs_state_key(store_id: str) -> str:
    """``KVSSTATE#<store id>``: the CA's state of a KeyValueStore (the id is the ARN's last part)."""
    return f"{KVSSTATE_PREFIX}{store_id}"


def targets_key() -> str:
    """``TARGET#registry``: the one item holding every registered edge target (a map by name)."""
    return f"{TARGET_PREFIX}registry"
def policy_key(name: str = ISSUANCE_POLICY) -> str:
    """``POLICY#<name>``: a policy document (``POLICY#issuance``: the issuance policy)."""
    return f"{POLICY_PREFIX}{name}"
