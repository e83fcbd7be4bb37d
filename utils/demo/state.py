"""What the demo's steps learn and hand to the later steps, typed (one dataclass per concern).

A step that needs what an earlier step produced reads it with :func:`require`: the earlier step
is in its ``requires``, so a missing value means a bug in the step list, reported as that
step's failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from utils.demo.output import StepFailed

T = TypeVar("T")


def require(value: T | None, what: str) -> T:
    """``value``, or :class:`StepFailed` naming ``what`` when an earlier step did not set it."""
    if value is None:
        raise StepFailed(f"{what} is not known: the step that makes it did not pass")
    return value


@dataclass(frozen=True)
class Issued:
    """A certificate issued through one of the CLIs (``utils/client-cert.py`` ...): its ``--json`` answer.

    Attributes:
        serial_number: the serial as the CLI prints it (lowercase hex, even number of digits).
        subject: the subject as an RFC 4514 string.
        not_after: the end of validity (ISO 8601, UTC).
        files: the files the CLI wrote, by the CLI's kind (``certificate``, ``key``, ``chain``,
            ``fullchain``, ``ca_bundle``, ``pkcs12``).
        summary: the whole ``--json`` answer (profile-specific fields such as
            ``acm_certificate_arn`` or ``origin_mtls_config``; ``written``).
    """

    serial_number: str
    subject: str = ""
    not_after: str = ""
    files: Mapping[str, Path] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> Issued:
        """From a CLI's ``--json`` answer (``serial_number``, ``subject``, ``not_after``, ``files``)."""
        return cls(
            serial_number=summary["serial_number"],
            subject=summary["subject"],
            not_after=summary["not_after"],
            files={kind: Path(path) for kind, path in summary.get("files", {}).items()},
            summary=dict(summary),
        )

    def file(self, kind: str) -> Path:
        """The file of ``kind`` the CLI wrote; StepFailed when it wrote none."""
        try:
            return self.files[kind]
        except KeyError:
            raise StepFailed(f"the CLI wrote no {kind} file for {self.subject or self.serial_number}") from None

    @property
    def certificate(self) -> Path:
        """The leaf certificate (PEM)."""
        return self.file("certificate")

    @property
    def key(self) -> Path:
        """The private key (PEM, mode 0600)."""
        return self.file("key")

    @property
    def fullchain(self) -> Path:
        """Leaf, issuing CA, root CA (PEM)."""
        return self.file("fullchain")

    @property
    def ca_bundle(self) -> Path:
        """The CA bundle the CLI wrote (root + issuing, PEM)."""
        return self.file("ca_bundle")


@dataclass(frozen=True)
class PublishedCa:
    """The CA certificates downloaded from the public bucket (PEM files under ``<out>/published``)."""

    root_pem: Path
    issuing_pem: Path
    ca_bundle_pem: Path


@dataclass(frozen=True)
class Crls:
    """The CRLs downloaded from the public bucket (PEM files under ``<out>/published``).

    Attributes:
        issuing_pem: the issuing CA's CRL.
        root_pem: the root CA's CRL.
        both_pem: ``crls.pem``, issuing then root: what relying parties load.
    """

    issuing_pem: Path
    root_pem: Path
    both_pem: Path


@dataclass
class Revocation:
    """What the revocation steps learnt.

    Attributes:
        serial: the revoked serial (lowercase hex).
        crl_number_before: the issuing CRL's number before the revocation.
        revoked_at: the revocation date the CA answered (ISO 8601, UTC).
        recorded: ``time.monotonic()`` when the revoke CLI returned.
        recorded_wall: ``time.time()`` at the same moment (to compare with AWS timestamps).
        seconds: how long the stream-triggered CRL took to list the serial (None until seen).
        crl_number: the number of that CRL (None until seen).
    """

    serial: str
    crl_number_before: int
    revoked_at: str
    recorded: float
    recorded_wall: float
    seconds: float | None = None
    crl_number: int | None = None


@dataclass(frozen=True)
class EdgeTarget:
    """The workload account's edge stack, registered as the CA's edge target (step edge_target).

    Attributes:
        name: the target's name (``cloudfront-origin-cert.py --target``).
        account_id: the workload account (12 digits).
        role_arn: the edge stack's ``EdgeRoleArn`` (the CA's functions assume it).
        kvs_arn: the edge stack's ``RevokedSerialsStoreArn`` (the workload account's KeyValueStore).
        stack_key: the edge stack's key in the sandbox state file's ``stacks``.
    """

    name: str
    account_id: str
    role_arn: str
    kvs_arn: str
    stack_key: str


@dataclass(frozen=True)
class WorkloadCaller:
    """An IAM user of the workload account allowed to call the CA's function URLs (step workload_caller).

    Attributes:
        arn: the user's ARN (what the inventory records as ``requested_by``).
        credentials: its access key (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``).
        issued: the certificate it got (``api.workload.example``).
    """

    arn: str
    credentials: Mapping[str, str]
    issued: Issued


@dataclass
class DemoState:
    """Everything the steps hand on; each field is None until the step that makes it passed.

    Attributes:
        client, server: the client and server certificates (steps client_cert, server_cert).
        revoked: the second client certificate, the one revoked (step second_client).
        origin: the CloudFront origin certificate in ACM (step origin_cert).
        published: the published CA certificates (step published_ca).
        revocation: the revocation (step revoke; step crl_published adds what it saw).
        crls: the downloaded CRLs (step crls).
        kvs_export: the KeyValueStore's content in its import-file format (step kvs).
        edge_target: the workload account's edge target (step edge_target).
        policy_revision: the stored issuance policy's revision (step issuance_policy).
        workload_caller: the workload account's caller and its certificate (step workload_caller).
        workload_origin: the origin certificate imported into the workload account (step workload_origin).
    """

    client: Issued | None = None
    server: Issued | None = None
    revoked: Issued | None = None
    origin: Issued | None = None
    published: PublishedCa | None = None
    revocation: Revocation | None = None
    crls: Crls | None = None
    kvs_export: Path | None = None
    edge_target: EdgeTarget | None = None
    policy_revision: int | None = None
    workload_caller: WorkloadCaller | None = None
    workload_origin: Issued | None = None
