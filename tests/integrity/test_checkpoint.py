"""C2SP signed notes / tlog checkpoints: Go interop vectors, tampering, key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agentaudit.integrity.checkpoint import (
    Checkpoint,
    InsecureKeyFileError,
    Signer,
    default_key_path,
    format_checkpoint,
    load_or_create_signing_key,
    parse_checkpoint,
    parse_vkey,
    sign_note,
    verify_note,
)
from agentaudit.integrity.merkle import leaf_hash, root

# -- Go interop vectors ----------------------------------------------------
# From golang.org/x/mod sumdb/note/note_test.go (TestSign, TestOpen,
# TestNewVerifier, TestNewSigner).

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

# A real sum.golang.org signed tree head, as quoted in
# github.com/transparency-dev/trillian-tessera internal/parse/parse_test.go
# (BenchmarkCheckpointUnsafe; the literal there omits the final newline).
# The key is Go's built-in one, golang/go src/cmd/go/internal/modfetch/key.go.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n"
    "31700353\n"
    "qINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n"
    "\n"
    "— sum.golang.org Az3grnmrIUEDFqHzAElIQCPNoRFRAAdFo47fooyWKMHb89k11GJh5zHIfNCOBmwn/C3YI8oW9/C8DJ87F61QqspBYwM=\n"
)


def test_go_signer_is_byte_identical() -> None:
    signer = Signer.from_key_text(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id.hex() == "c74f20a3"
    assert signer.key_text() == PETER_SKEY
    assert signer.verifier_key() == PETER_VKEY
    assert sign_note(GO_TEXT, signer) == GO_TEXT + "\n" + PETER_SIG


def test_go_notes_verify() -> None:
    both = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert verify_note(GO_TEXT + "\n" + PETER_SIG, PETER_VKEY)
    assert verify_note(both, PETER_VKEY)
    assert verify_note(both, ENOCH_VKEY)
    assert not verify_note(GO_TEXT + "\n" + PETER_SIG, ENOCH_VKEY)


def test_go_malformed_notes_rejected() -> None:
    bad = [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:],
        GO_TEXT + "\n" + PETER_SIG.replace("x08g", "xxxx"),
        GO_TEXT + "\n" + PETER_SIG * 101,
    ]
    for note in bad:
        assert not verify_note(note, PETER_VKEY), note


def test_go_verifier_key_manglings_rejected() -> None:
    parse_vkey(PETER_VKEY)
    b = PETER_VKEY.encode()
    candidates = {b[i:j] for i in range(len(b) + 1) for j in range(i + 1, len(b) + 1)}
    candidates.discard(b)
    for i in range(len(b)):
        candidates.add(b[:i] + bytes([(b[i] + 1) % 256]) + b[i + 1 :])
    candidates.add(b"PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    candidates.add(b"PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    note = GO_TEXT + "\n" + PETER_SIG
    for cand in candidates:
        text = cand.decode("utf-8", "surrogateescape")
        with pytest.raises(ValueError):
            parse_vkey(text)
        assert not verify_note(note, text)


def test_go_signer_key_manglings_rejected() -> None:
    b = PETER_SKEY.encode()
    candidates = {b[i:j] for i in range(len(b) + 1) for j in range(i + 1, len(b) + 1)}
    candidates.discard(b)
    for i in range(len(b)):
        candidates.add(b[:i] + bytes([(b[i] + 1) % 256]) + b[i + 1 :])
    for cand in candidates:
        with pytest.raises(ValueError):
            Signer.from_key_text(cand.decode("utf-8", "surrogateescape"))


def test_real_sum_golang_org_checkpoint() -> None:
    assert verify_note(SUMDB_NOTE, SUMDB_VKEY)
    cp = parse_checkpoint(SUMDB_NOTE)
    assert cp.origin == "go.sum database tree"
    assert cp.size == 31700353
    assert cp.root.hex() == "a88352d464458561f076451ea8b1283f8c843244c1073c41906c0642556555cb"
    assert cp.extensions == ()
    assert not verify_note(SUMDB_NOTE.replace("31700353", "31700354"), SUMDB_VKEY)
    assert not verify_note(SUMDB_NOTE, PETER_VKEY)


# -- round trip and tampering ----------------------------------------------


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate("log.example/agentaudit")


def _checkpoint_note(signer: Signer) -> str:
    leaves = [leaf_hash(bytes([i])) for i in range(10)]
    return sign_note(format_checkpoint("log.example/agentaudit", 10, root(leaves)), signer)


def test_round_trip(signer: Signer) -> None:
    note = _checkpoint_note(signer)
    vkey = signer.verifier_key()
    assert verify_note(note, vkey)
    cp = parse_checkpoint(note)
    assert cp == Checkpoint("log.example/agentaudit", 10, cp.root)
    assert cp.text() == note[: note.rindex("\n\n") + 1]
    again = Signer.from_key_text(signer.key_text())
    assert again.verifier_key() == vkey
    assert sign_note(cp.text(), again) == note  # Ed25519 is deterministic


def test_every_single_byte_alteration_fails(signer: Signer) -> None:
    note = _checkpoint_note(signer)
    vkey = signer.verifier_key()
    raw = note.encode("utf-8")
    for i in range(len(raw)):
        for delta in (1, 0x20, 0x80):
            altered = raw[:i] + bytes([raw[i] ^ delta]) + raw[i + 1 :]
            text = altered.decode("utf-8", "surrogateescape")
            assert not verify_note(text, vkey), (i, delta)
        assert not verify_note((raw[:i] + raw[i + 1 :]).decode("utf-8", "surrogateescape"), vkey)
    assert not verify_note(note + "\n", vkey)
    assert not verify_note(note[:-1], vkey)


def test_wrong_keys_fail(signer: Signer) -> None:
    note = _checkpoint_note(signer)
    other_same_name = Signer.generate(signer.name)
    other_name = Signer("other.example", signer.private_key)
    assert not verify_note(note, other_same_name.verifier_key())
    assert not verify_note(note, other_name.verifier_key())  # same key, other name and key ID


def test_cosignatures_are_ignored_but_allowed(signer: Signer) -> None:
    note = _checkpoint_note(signer)
    witness = Signer.generate("witness.example")
    text = note[: note.rindex("\n\n") + 1]
    cosigned = note + sign_note(text, witness).split("\n\n")[-1]
    assert verify_note(cosigned, signer.verifier_key())
    assert verify_note(cosigned, witness.verifier_key())
    unknown_first = (
        text + "\n" + sign_note(text, witness).split("\n\n")[-1] + note.split("\n\n")[-1]
    )
    assert verify_note(unknown_first, signer.verifier_key())
    # A second line claiming our key that does not verify rejects the note.
    forged = cosigned + note.split("\n\n")[-1].replace("\n", "").rstrip("=")[:-4] + "AAAA=\n"
    assert not verify_note(forged, signer.verifier_key())


@pytest.mark.parametrize(
    "note",
    [
        "",
        "\n\n",
        "no signatures\n",
        "text\n\n— \n",
        "text\n\n—  AAAA\n",
        "text\n\n— name\n",
        "text\n\n— name !!!!\n",
        "text\n\n— name AAAA\n",
        "text\r\n\n— name AAAAAAAA\n",
        "\ud800\n\n— name AAAAAAAA\n",
        None,
        b"bytes\n\n",
        42,
    ],
)
def test_malformed_inputs_never_raise(note: object, signer: Signer) -> None:
    assert verify_note(note, signer.verifier_key()) is False  # type: ignore[arg-type]
    assert verify_note(_checkpoint_note(signer), note) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["", "\n", "no newline", "a\n\nb\n", "\nlead\n", "tab\there\n", "\ud800\n"]
)
def test_sign_note_rejects_bad_text(text: str, signer: Signer) -> None:
    with pytest.raises(ValueError):
        sign_note(text, signer)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\t", "nl\n", "\u00a0nbsp"])
def test_bad_key_names(name: str) -> None:
    with pytest.raises(ValueError):
        Signer.generate(name)


# -- checkpoint bodies -----------------------------------------------------

ROOT = bytes(range(32))


def test_format_and_parse_checkpoint() -> None:
    body = format_checkpoint("example.com/log", 0, ROOT)
    assert body == "example.com/log\n0\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    assert parse_checkpoint(body) == Checkpoint("example.com/log", 0, ROOT)
    ext = format_checkpoint("o", 7, ROOT, ("ext one", "ext two"))
    assert parse_checkpoint(ext) == Checkpoint("o", 7, ROOT, ("ext one", "ext two"))
    assert Checkpoint("o", 7, ROOT, ("ext one", "ext two")).text() == ext


@pytest.mark.parametrize(
    ("origin", "size", "root_hash", "ext"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("o", -1, ROOT, ()),
        ("o", True, ROOT, ()),
        ("o", 2**64, ROOT, ()),
        ("o", 1, ROOT[:31], ()),
        ("o", 1, ROOT.hex(), ()),
        ("o", 1, ROOT, ("",)),
        ("o", 1, ROOT, ("a\nb",)),
    ],
)
def test_format_checkpoint_rejects(
    origin: str, size: int, root_hash: bytes, ext: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError):
        format_checkpoint(origin, size, root_hash, ext)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "o\n1\n",
        "o\n01\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "o\n-1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "o\n+1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "o\n0x1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "o\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
        "o\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n",
        "o\n1\nnot base64!\n",
        "\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "o\n1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ],
)
def test_parse_checkpoint_rejects(body: str) -> None:
    with pytest.raises(ValueError):
        parse_checkpoint(body)


# -- key files -------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_default_key_created_private_and_reused(tmp_path: Path) -> None:
    path = default_key_path()
    assert path == tmp_path / "config" / "agentaudit" / "signing.key"  # conftest XDG_CONFIG_HOME
    first = load_or_create_signing_key("log.example")
    assert path.exists()
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert path.read_text() == first.key_text() + "\n"
    again = load_or_create_signing_key("other-name")
    assert again.key_text() == first.key_text()  # an existing key keeps its name


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_group_or_world_readable_key_refused(tmp_path: Path) -> None:
    path = tmp_path / "k" / "signing.key"
    load_or_create_signing_key("log.example", path)
    for mode in (0o644, 0o640, 0o604, 0o660):
        path.chmod(mode)
        with pytest.raises(InsecureKeyFileError, match="chmod 600"):
            load_or_create_signing_key("log.example", path)
    path.chmod(0o600)
    load_or_create_signing_key("log.example", path)
    path.chmod(0o400)
    load_or_create_signing_key("log.example", path)


def test_env_key_text_and_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTAUDIT_SIGNING_KEY", PETER_SKEY)
    assert load_or_create_signing_key("ignored").verifier_key() == PETER_VKEY
    key_file = tmp_path / "env.key"
    fd = os.open(key_file, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, (PETER_SKEY + "\n").encode())
    os.close(fd)
    monkeypatch.setenv("AGENTAUDIT_SIGNING_KEY", str(key_file))
    assert load_or_create_signing_key("ignored").key_text() == PETER_SKEY
    if os.name != "nt":
        key_file.chmod(0o644)
        with pytest.raises(InsecureKeyFileError):
            load_or_create_signing_key("ignored")
    monkeypatch.setenv("AGENTAUDIT_SIGNING_KEY", str(tmp_path / "missing.key"))
    with pytest.raises(FileNotFoundError):
        load_or_create_signing_key("ignored")
    assert not default_key_path().exists()


def test_explicit_path_wins_and_corrupt_file_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTAUDIT_SIGNING_KEY", PETER_SKEY)
    path = tmp_path / "explicit.key"
    created = load_or_create_signing_key("log.example", path)
    assert created.name == "log.example"
    assert created.verifier_key() != PETER_VKEY
    fd = os.open(tmp_path / "bad.key", os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"PRIVATE+KEY+garbage\n")
    os.close(fd)
    with pytest.raises(ValueError, match="malformed"):
        load_or_create_signing_key("x", tmp_path / "bad.key")
