"""C2SP signed notes and tlog checkpoints with Ed25519.

A signed note (c2sp.org/signed-note, golang.org/x/mod/sumdb/note) is a
text ending in a newline, a blank line, then signature lines
``— <key name> <base64(4-byte key ID || signature)>\\n`` (U+2014 EM DASH,
space).  The key ID is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``.
Key texts use Go's formats: verifier ``name+hex8(keyid)+base64(0x01||pub)``
and signer ``PRIVATE+KEY+name+hex8(keyid)+base64(0x01||seed)``.

A checkpoint (c2sp.org/tlog-checkpoint) is a note whose text is
``origin\\nsize\\nbase64(root)\\n`` plus optional non-empty extension lines.

Verification is strict: base64 and hex must be canonical, so every altered
byte of a note or key is rejected; a note verifies only if at least one
signature line carries the key's name and ID and every such line verifies.
Lines from other keys (cosignatures) are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

__all__ = [
    "KEY_ENV_VAR",
    "Checkpoint",
    "InsecureKeyFileError",
    "Signer",
    "Verifier",
    "default_key_path",
    "format_checkpoint",
    "key_id",
    "load_or_create_signing_key",
    "parse_checkpoint",
    "parse_vkey",
    "sign_note",
    "verify_note",
]

KEY_ENV_VAR = "AGENTAUDIT_SIGNING_KEY"
ALG_ED25519 = 0x01
MAX_SIGNATURES = 100
_SIG_PREFIX = "\u2014 "
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _b64decode(text: str) -> bytes:
    """Strict standard base64: padded, canonical (re-encodes to the same text)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("invalid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("non-canonical base64")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _valid_name(name: str) -> bool:
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() or c < " " for c in name)
        and _utf8_ok(name)
    )


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def key_id(name: str, public_key: bytes) -> bytes:
    """First 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    ).digest()[:4]


# -- keys ------------------------------------------------------------------


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 note verifier key."""

    name: str
    key_id: bytes
    public_key: bytes

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def key_text(self) -> str:
        """``name+hex8(keyid)+base64(0x01 || public key)``."""
        return (
            f"{self.name}+{self.key_id.hex()}+{_b64encode(bytes([ALG_ED25519]) + self.public_key)}"
        )


def _parse_key_fields(name: str, hex_id: str, key64: str) -> tuple[bytes, bytes]:
    if not _valid_name(name) or not _HEX8.fullmatch(hex_id):
        raise ValueError("malformed key name or key ID")
    raw = _b64decode(key64)
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise ValueError("not an Ed25519 key (algorithm 0x01, 32 bytes)")
    return bytes.fromhex(hex_id), raw[1:]


def parse_vkey(vkey: str) -> Verifier:
    """Parse a verifier key text; raise ValueError if malformed or inconsistent."""
    name, _, rest = vkey.partition("+")
    hex_id, _, key64 = rest.partition("+")
    kid, public = _parse_key_fields(name, hex_id, key64)
    if key_id(name, public) != kid:
        raise ValueError("verifier key ID does not match the name and public key")
    return Verifier(name, kid, public)


class Signer:
    """A named Ed25519 note signing key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not _valid_name(name):
            raise ValueError(f"invalid key name {name!r}: non-empty, no spaces or '+'")
        self.name = name
        self.private_key = private_key
        self.public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(name, self.public_key)

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_key_text(cls, text: str) -> Signer:
        """Parse Go's ``PRIVATE+KEY+name+hex8(keyid)+base64(0x01 || seed)``."""
        fields = text.split("+", 4)
        if len(fields) != 5 or fields[:2] != ["PRIVATE", "KEY"]:
            raise ValueError("not a PRIVATE+KEY signer key")
        kid, seed = _parse_key_fields(*fields[2:])
        signer = cls(fields[2], Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id != kid:
            raise ValueError("signer key ID does not match the name and key")
        return signer

    def seed(self) -> bytes:
        return self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def key_text(self) -> str:
        """The secret ``PRIVATE+KEY+...`` text (Go's encoding)."""
        body = _b64encode(bytes([ALG_ED25519]) + self.seed())
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{body}"

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.public_key)

    def verifier_key(self) -> str:
        """The public verifier key text to hand to verifiers."""
        return self.verifier().key_text()

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def __repr__(self) -> str:
        return f"Signer({self.verifier_key()!r})"


# -- notes -----------------------------------------------------------------


def _check_text(text: str) -> None:
    if not text.endswith("\n") or text.startswith("\n") or "\n\n" in text:
        raise ValueError("note text must be non-empty lines, each ending in a newline")
    if _CONTROL.search(text) or not _utf8_ok(text):
        raise ValueError("note text must be valid UTF-8 without control characters")


def sign_note(text: str, signer: Signer) -> str:
    """Sign `text` and return the signed note."""
    _check_text(text)
    signature = signer.sign(text.encode("utf-8"))
    return f"{text}\n{_SIG_PREFIX}{signer.name} {_b64encode(signer.key_id + signature)}\n"


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Text and (name, key ID || signature) pairs; ValueError if malformed."""
    if _CONTROL.search(note) or not _utf8_ok(note):
        raise ValueError("note contains control characters or invalid UTF-8")
    split = note.rfind("\n\n")
    if split < 0:
        raise ValueError("note has no signature block")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise ValueError("signature block must end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise ValueError("too many signatures")
    sigs = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise ValueError("malformed signature line")
        name, _, sig64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not _valid_name(name) or not sig64:
            raise ValueError("malformed signature line")
        raw = _b64decode(sig64)
        if len(raw) < 5:
            raise ValueError("signature too short")
        sigs.append((name, raw))
    return text, sigs


def verify_note(note: str, vkey: str) -> bool:
    """True iff `note` carries a valid signature by the key `vkey`. Never raises."""
    try:
        verifier = parse_vkey(vkey)
        text, sigs = _split_note(note)
        message = text.encode("utf-8")
        matching = [
            raw[4:] for name, raw in sigs if name == verifier.name and raw[:4] == verifier.key_id
        ]
        return bool(matching) and all(verifier.verify(message, sig) for sig in matching)
    except Exception:  # malformed input of any kind
        return False


# -- checkpoints -----------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The body of a tlog checkpoint."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        return format_checkpoint(self.origin, self.size, self.root, self.extensions)


def format_checkpoint(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...] | list[str] = ()
) -> str:
    """Checkpoint body ``origin\\nsize\\nbase64(root)\\n`` (plus extension lines)."""
    if type(size) is not int or not 0 <= size < 2**64:
        raise ValueError(f"invalid tree size {size!r}")
    if not isinstance(root, bytes) or len(root) != 32:
        raise ValueError("root must be a 32-byte hash")
    text = f"{origin}\n{size}\n{_b64encode(root)}\n" + "".join(f"{e}\n" for e in extensions)
    for line in (origin, *extensions):
        if not line or "\n" in line:
            raise ValueError("origin and extension lines must be non-empty single lines")
    _check_text(text)
    return text


def parse_checkpoint(note: str) -> Checkpoint:
    """Parse a checkpoint from a signed note (or a bare body). Does not verify signatures."""
    split = note.rfind("\n\n")
    text = note if split < 0 else note[: split + 1]
    try:
        _check_text(text)
    except ValueError as exc:
        raise ValueError(f"malformed checkpoint: {exc}") from None
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise ValueError("malformed checkpoint: needs origin, size and root lines")
    origin, size_text, root64, *extensions = lines
    if not _DECIMAL.fullmatch(size_text) or int(size_text) >= 2**64:
        raise ValueError(f"malformed checkpoint size {size_text!r}")
    try:
        root = _b64decode(root64)
    except ValueError:
        raise ValueError("malformed checkpoint root hash") from None
    if len(root) != 32:
        raise ValueError("checkpoint root hash must be 32 bytes")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


# -- key files -------------------------------------------------------------


class InsecureKeyFileError(PermissionError):
    """A signing key file is accessible by group or others."""


def default_key_path() -> Path:
    """``$XDG_CONFIG_HOME/agentaudit/signing.key`` (default ``~/.config``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agentaudit" / "signing.key"


def _read_key_file(path: Path) -> Signer:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"signing key {path} is not a regular file")
        if os.name != "nt" and st.st_mode & 0o077:
            raise InsecureKeyFileError(
                f"signing key {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must not be "
                f"accessible by group or others (run: chmod 600 {path})"
            )
        with os.fdopen(fd, "r", encoding="utf-8", closefd=False) as fh:
            content = fh.read()
    finally:
        os.close(fd)
    try:
        return Signer.from_key_text(content.strip())
    except ValueError as exc:
        raise ValueError(f"signing key {path} is malformed: {exc}") from None


def _create_key_file(path: Path, name: str) -> Signer:
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(parent, 0o700)
    signer = Signer.generate(name)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(signer.key_text() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return signer


def load_or_create_signing_key(name: str, path: Path | None = None) -> Signer:
    """The log's signing key.

    Source, first match wins: `path` (created if missing); the environment
    variable ``AGENTAUDIT_SIGNING_KEY`` holding either the ``PRIVATE+KEY``
    text or the path of a file containing it; the default key file (created
    on first use, mode 0600, directory 0700).  `name` names a newly created
    key; an existing key keeps its own name.  Key files accessible by group
    or others are refused with InsecureKeyFileError.
    """
    if path is None:
        env = os.environ.get(KEY_ENV_VAR, "").strip()
        if env.startswith("PRIVATE+KEY+"):
            return Signer.from_key_text(env)
        if env:
            return _read_key_file(Path(env).expanduser())
        path = default_key_path()
    path = Path(path).expanduser()
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    try:
        return _create_key_file(path, name)
    except FileExistsError:  # created concurrently: use the winner's key
        return _read_key_file(path)
