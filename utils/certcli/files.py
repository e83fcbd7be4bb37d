"""The files the tools write: output plans, atomic no-clobber writes, PEM and PKCS#12 encodings."""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from .contract import Issued
from .errors import NotSaved, Refused
from .keys import PrivateKey

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class OutputFile:
    """One file to write.

    Attributes:
        kind: summary key (``key``, ``certificate``, ``chain``, ``fullchain``, ``ca_bundle``, ``pkcs12``).
        path: destination.
        description: for the summary.
        secret: created with mode 0600 (private key, PKCS#12), else 0644 minus the umask.
        shared: an existing file with identical content is not a conflict (the CA bundle).
    """

    kind: str
    path: Path
    description: str
    secret: bool = False
    shared: bool = False


@dataclass
class OutputPlan:
    """The files of one issuance, and their content once known."""

    files: list[OutputFile]
    content: dict[str, bytes] = field(default_factory=dict)

    def path(self, kind: str) -> Path:
        """Destination of ``kind``."""
        return next(f.path for f in self.files if f.kind == kind)


def default_name(common_name: str) -> str:
    """File stem from a common name, safe characters only (``*.example.com`` -> ``wildcard.example.com``)."""
    text = common_name.strip().replace("*", "wildcard")
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text)
    text = re.sub(r"_+", "_", text).strip("._-")
    return text[:128] or "certificate"


def plan_outputs(out_dir: Path, name: str, *, pkcs12_file: bool) -> OutputPlan:
    """The files an issuance writes into ``out_dir``, named ``<name>.*`` plus ``ca-bundle.pem``.

    Raises:
        Refused: code ``InvalidArgument`` when ``name`` has characters other than letters,
            digits, ``.``, ``_`` and ``-`` (or starts with a punctuation character).
    """
    if not _SAFE_NAME.match(name):
        raise Refused(
            "InvalidArgument",
            f"--name {name!r}: use letters, digits, '.', '_' and '-' (not first), at most 128",
        )
    files = [
        OutputFile("key", out_dir / f"{name}.key", "private key (PKCS#8 PEM, mode 0600)", secret=True),
        OutputFile("certificate", out_dir / f"{name}.crt", "certificate (PEM)"),
        OutputFile("chain", out_dir / f"{name}.chain.pem", "CA chain: issuing, root (PEM)"),
        OutputFile("fullchain", out_dir / f"{name}.fullchain.pem", "full chain: leaf, issuing, root (PEM)"),
        OutputFile("ca_bundle", out_dir / "ca-bundle.pem", "CA bundle: root, issuing (PEM, trust store)", shared=True),
    ]
    if pkcs12_file:
        files.append(
            OutputFile("pkcs12", out_dir / f"{name}.p12", "PKCS#12: key, certificate, chain (mode 0600)", secret=True)
        )
    return OutputPlan(files)


def conflicts(plan: OutputPlan, *, include_shared: bool = True) -> list[Path]:
    """Files of ``plan`` that exist and would be overwritten.

    A shared file (the CA bundle) whose content is known and identical is not a conflict;
    ``include_shared=False`` leaves shared files out (their content is not known yet).
    """
    found = []
    for f in plan.files:
        if (f.shared and not include_shared) or not os.path.lexists(f.path):
            continue
        if f.shared and f.kind in plan.content and _same_content(f.path, plan.content[f.kind]):
            continue
        found.append(f.path)
    return found


def check_writable(plan: OutputPlan) -> None:
    """Refuse before the CA is called when the files of ``plan`` cannot be written: the output
    directory (or its nearest existing parent, when it is still to be created) is not a writable
    directory, or a target path is a directory. Existing files are :func:`conflicts`' concern.

    Raises:
        Refused: code ``InvalidArgument`` naming the directory or file.
    """
    directory = plan.files[0].path.parent
    existing = directory
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise Refused("InvalidArgument", f"--out-dir {directory}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise Refused("InvalidArgument", f"--out-dir {directory}: {existing} is not writable; choose another --out-dir")
    for f in plan.files:
        if f.path.is_dir():
            raise Refused("InvalidArgument", f"{f.path} is a directory; choose another --name or --out-dir")


def not_saved(
    serial: str, certificate_pem: str, exc: Exception, *, key_lost: bool, acm_arn: str | None = None
) -> NotSaved:
    """The error for a certificate the CA issued that could not be written: names the serial, the
    command to fetch it again (``certs.py show``), the ACM ARN when there is one, and whether the
    private key is lost (then: revoke and issue again). Its detail is the certificate's PEM."""
    if isinstance(exc, Refused):
        why = exc.message
    elif isinstance(exc, OSError):
        why = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    else:
        why = str(exc)
    parts = [f"certificate {serial} was issued but not saved: {why}"]
    if acm_arn:
        parts.append(f"it is in ACM as {acm_arn}")
    parts.append(f"the certificate is printed below; fetch it again with 'python utils/certs.py show {serial} --json'")
    if key_lost:
        parts.append(
            f"its private key was not saved: revoke it ('python utils/revoke-cert.py {serial}') and issue again"
        )
    return NotSaved("; ".join(parts), certificate_pem)


def git_work_tree(path: Path) -> Path | None:
    """The git work tree holding ``path`` (a ``.git`` directory or file in it or a parent), or None."""
    here = path.resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists():
            return directory
    return None


def key_in_git_warning(plan: OutputPlan) -> str | None:
    """A warning when ``plan`` writes secret files (key, PKCS#12) inside a git work tree, else None.

    It says whether ``.gitignore`` covers them (``git check-ignore``, when git is installed), so a
    private key is never committed by accident.
    """
    secrets = [f.path for f in plan.files if f.secret]
    if not secrets:
        return None
    root = git_work_tree(secrets[0].parent)
    if root is None:
        return None
    listed = ", ".join(str(p) for p in secrets)
    ignored = _all_ignored(root, secrets)
    if ignored:
        state = "its .gitignore covers them; keep it that way and never commit them"
    elif ignored is None:
        state = "make sure its .gitignore covers them (e.g. *.key, *.p12)"
    else:
        state = "its .gitignore does NOT cover them: add them (e.g. *.key, *.p12) or choose another --out-dir"
    return (
        f"private key files ({listed}) go into the git work tree {root}: {state} "
        "(--no-git-warning silences this)"
    )


def _all_ignored(root: Path, paths: Sequence[Path]) -> bool | None:
    """Whether git ignores every one of ``paths`` (``git check-ignore``); None when git cannot tell."""
    git = shutil.which("git")
    if not git:
        return None
    for path in paths:
        try:
            code = subprocess.run(
                [git, "-C", str(root), "check-ignore", "-q", "--no-index", str(path.resolve())],
                capture_output=True,
                check=False,
                timeout=10,
            ).returncode
        except (OSError, subprocess.SubprocessError):
            return None
        if code == 1:
            return False
        if code != 0:
            return None
    return True


def _same_content(path: Path, data: bytes) -> bool:
    try:
        return path.is_file() and path.read_bytes() == data
    except OSError:
        return False


def _stage(f: OutputFile, data: bytes) -> Path:
    """Write ``data`` to a new temporary file next to ``f.path``; mode 0600 from creation if secret."""
    tmp = f.path.with_name(f".{f.path.name}.{uuid.uuid4().hex[:12]}.tmp")
    mode = 0o600 if f.secret else 0o644
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        if f.secret:
            os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def _link_no_clobber(tmp: Path, dest: Path) -> None:
    """Move ``tmp`` to ``dest`` unless ``dest`` exists (atomically where hard links work).

    Raises:
        FileExistsError: ``dest`` exists.
    """
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(dest):
            raise FileExistsError(dest) from None
        os.replace(tmp, dest)
        return
    tmp.unlink()


def write_outputs(plan: OutputPlan, *, force: bool) -> list[OutputFile]:
    """Write every file of ``plan`` atomically (temporary file in the same directory, then rename).

    Secret files are created with mode 0600 (``os.open``), so they are never readable by others,
    not even for a moment. Without ``force`` no existing file is replaced: a file that appeared
    since the check makes the whole write fail and removes the files this call created. A shared
    file with identical content is left as it is.

    Returns:
        The files written (shared files left untouched are not listed).

    Raises:
        Refused: code ``FileExists`` (without ``force``); nothing written.
        OSError: the directory is not writable; no temporary file left behind.
    """
    if not force and (found := conflicts(plan)):
        raise _exists_error(found)
    todo = [f for f in plan.files if not (f.shared and _same_content(f.path, plan.content[f.kind]))]
    for f in todo:
        f.path.parent.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[OutputFile, Path]] = []
    created: list[Path] = []
    try:
        for f in todo:
            staged.append((f, _stage(f, plan.content[f.kind])))
        for f, tmp in staged:
            if force:
                os.replace(tmp, f.path)
                continue
            try:
                _link_no_clobber(tmp, f.path)
            except FileExistsError:
                for path in created:
                    path.unlink(missing_ok=True)
                raise _exists_error([f.path]) from None
            created.append(f.path)
    finally:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
    _fsync_dir(plan.files[0].path.parent)
    return todo


def _fsync_dir(directory: Path) -> None:
    """Make the renames durable (best effort; not every platform can open a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exists_error(paths: Sequence[Path]) -> Refused:
    listed = ", ".join(str(p) for p in paths)
    verb = "exists" if len(paths) == 1 else "exist"
    return Refused("FileExists", f"{listed} already {verb}; pass --force to overwrite, or choose --name / --out-dir")


def render_files(
    plan: OutputPlan,
    key: PrivateKey,
    issued: Issued,
    ca_bundle: bytes,
    pkcs12_password: bytes | None,
    *,
    legacy_pkcs12: bool,
) -> None:
    """Fill ``plan.content`` with the PEM (and PKCS#12) encodings of the key and certificates."""
    pem = serialization.Encoding.PEM
    leaf = issued.certificate.public_bytes(pem)
    chain = b"".join(c.public_bytes(pem) for c in issued.chain)
    plan.content.update(
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        certificate=leaf,
        chain=chain,
        fullchain=leaf + chain,
        ca_bundle=ca_bundle,
    )
    if any(f.kind == "pkcs12" for f in plan.files):
        if pkcs12_password is None:
            raise Refused("InvalidArgument", "a PKCS#12 file needs a password")
        plan.content["pkcs12"] = make_pkcs12(
            plan.path("pkcs12").stem, key, issued, pkcs12_password, legacy=legacy_pkcs12
        )


def make_pkcs12(friendly_name: str, key: PrivateKey, issued: Issued, password: bytes, *, legacy: bool) -> bytes:
    """PKCS#12 (RFC 7292) with the key, the leaf and the chain, encrypted with ``password``.

    ``legacy`` uses PBE-SHA1-3DES and a SHA-1 MAC for old importers (Windows before 2019,
    older macOS); otherwise AES-256-CBC with PBKDF2 and HMAC-SHA256.
    """
    if legacy:
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(50000)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())
            .build(password)
        )
    else:
        encryption = serialization.BestAvailableEncryption(password)
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode(), key, issued.certificate, list(issued.chain), encryption
    )


def read_pkcs12_password(password_file: str | None, env_var: str, environ: Mapping[str, str], stdin: IO[str]) -> bytes:
    """The PKCS#12 password: from ``password_file`` (first line; ``-`` is stdin), else the
    environment variable ``env_var``, else a prompt (twice) when stdin is a terminal.

    Raises:
        Refused: code ``InvalidArgument`` when there is no password, it is empty, or the two
            prompted entries differ.
    """
    if password_file:
        try:
            text = stdin.readline() if password_file == "-" else Path(password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise Refused("InvalidArgument", f"cannot read --pkcs12-password-file: {exc.strerror}") from None
        password = text.splitlines()[0] if text else ""
        source = "--pkcs12-password-file"
    elif environ.get(env_var):
        password, source = environ[env_var], env_var
    elif stdin.isatty():
        password = getpass.getpass("PKCS#12 password: ")
        if getpass.getpass("PKCS#12 password (again): ") != password:
            raise Refused("InvalidArgument", "the two passwords differ")
        source = "the prompt"
    else:
        raise Refused(
            "InvalidArgument",
            f"--pkcs12 needs a password: --pkcs12-password-file, or the {env_var} environment variable",
        )
    if not password:
        raise Refused("InvalidArgument", f"the PKCS#12 password from {source} is empty")
    return password.encode("utf-8")
