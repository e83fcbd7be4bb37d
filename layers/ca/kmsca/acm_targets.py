"""Which ACM (us-east-1) a ``cloudfront-origin`` certificate goes to: its edge target's account.

CloudFront uses only ACM certificates of the distribution's own account, so an origin certificate
is imported into the ACM of the target the request names (``target``, default ``local``), through
that target's edge role (:mod:`kmsca.edge_session`), and rotated there (the inventory records the
target, its account and the ARN). ``local`` without a registered ``local`` target is the CA
account's own ACM, with the function's own role (the single-account stack as before).

Resolving a target costs one ``GetItem`` of the registry (only for origin requests: other
profiles never resolve one) and, the first time per container and hour, one ``AssumeRole``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .acm import ACM_REGION, AcmImporter
from .errors import TargetNotFound
from .targets import LOCAL_TARGET, DynamoDbTargetStore, check_target_name

if TYPE_CHECKING:
    from .edge_session import EdgeSessions


@dataclass(frozen=True)
class AcmDestination:
    """Where a certificate is imported: the target's name, its account (None: the function's own,
    known from the ARN after the import) and the importer (a client in that account's us-east-1)."""

    target: str
    account_id: str | None
    importer: AcmImporter


def account_of(arn: str) -> str | None:
    """The account id of an ARN (``arn:aws:acm:us-east-1:<account>:certificate/...``), or None."""
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


class AcmTargets:
    """Resolves a target name to its ACM.

    Args:
        local: the function's own ACM us-east-1 (``local`` when no target ``local`` is registered).
        targets: the registry (None: only ``local`` exists, as before edge targets).
        sessions: AssumeRole into targets (needed with ``targets``).
    """

    def __init__(
        self, local: AcmImporter, targets: DynamoDbTargetStore | None = None, sessions: EdgeSessions | None = None
    ) -> None:
        self._local = local
        self._targets = targets
        self._sessions = sessions
        self._importers: dict[tuple[str, str, str], AcmImporter] = {}

    def resolve(self, name: str | None) -> AcmDestination:
        """The destination of ``name`` (None: ``local``).

        Raises:
            InvalidTarget: a malformed name. TargetNotFound: no such target.
        """
        name = check_target_name(name or LOCAL_TARGET)
        registered = None
        if self._targets is not None:
            registered = next((t for t in self._targets.list_targets() if t.name == name), None)
        if registered is None:
            if name == LOCAL_TARGET:
                return AcmDestination(LOCAL_TARGET, None, self._local)
            raise TargetNotFound(f"no edge target named {name!r} is registered (utils/edge-targets.py list)")
        sessions = self._sessions
        if sessions is None:
            raise TargetNotFound(f"edge target {name!r} cannot be reached from this function")
        key = (registered.name, registered.role_arn, registered.external_id)
        importer = self._importers.get(key)
        if importer is None:
            target = registered
            importer = AcmImporter(lambda: sessions.client(target, "acm", ACM_REGION), cache_client=False)
            self._importers[key] = importer
        return AcmDestination(registered.name, registered.account_id, importer)

    def prepare(self, destination: AcmDestination) -> None:
        """Make the destination's client now (AssumeRole for an edge target), so that a refused role
        fails the request before anything is signed or stored (EdgeRoleRefused, EdgeTargetUnavailable)."""
        destination.importer.client()
