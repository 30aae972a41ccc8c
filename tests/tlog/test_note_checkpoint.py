"""C2SP signed notes (Go's sumdb/note vectors), checkpoints, recovery statements and key files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from siemgate.tlog.checkpoint import Checkpoint, CheckpointError, Recovery, open_checkpoint, open_recovery
from siemgate.tlog.keys import KeyFileError, PublicKeyring, SignerKeyring, fingerprint
from siemgate.tlog.note import MAX_NOTE_BYTES, NoteError, NoteSigner, NoteVerifier, key_id, open_note, sign_note

# golang.org/x/mod/sumdb/note's documented example: Ed25519 is deterministic, so the note must be
# reproduced byte for byte.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
    "dngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"


def test_go_vector_signs_and_verifies_byte_for_byte() -> None:
    signer = NoteSigner.parse(GO_SKEY)
    assert signer.skey() == GO_SKEY
    assert signer.verifier().vkey() == GO_VKEY
    assert sign_note(GO_TEXT, [signer]) == GO_NOTE
    opened = open_note(GO_NOTE, [NoteVerifier.parse(GO_VKEY)])
    assert opened.text == GO_TEXT
    assert key_id("PeterNeumann", NoteVerifier.parse(GO_VKEY).public_key) == 0xC74F20A3


def test_tampered_or_unsigned_notes_are_refused() -> None:
    peter = NoteVerifier.parse(GO_VKEY)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), [peter])
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        open_note(GO_NOTE, [NoteVerifier.parse(ENOCH_VKEY)])
    # A same-named key with another ID is unknown (ignored), so nothing trusted signed it.
    with pytest.raises(NoteError, match="trusted"):
        open_note(GO_NOTE, [NoteVerifier("PeterNeumann", NoteVerifier.parse(ENOCH_VKEY).public_key)])
    with pytest.raises(NoteError, match="blank line"):
        open_note(GO_TEXT, [peter])
    with pytest.raises(NoteError, match="control character"):
        open_note(GO_NOTE.replace("answer", "ans\x00wer"), [peter])
    with pytest.raises(NoteError, match="UTF-8"):
        open_note(b"\xff" + GO_NOTE.encode(), [peter])
    with pytest.raises(NoteError, match="em dash"):
        open_note(GO_NOTE.replace("\u2014", "-"), [peter])
    many = GO_TEXT + "\n" + "\u2014 Other AAAAAAAA\n" * 65
    with pytest.raises(NoteError, match="more than"):
        open_note(many, [peter])
    with pytest.raises(NoteError, match="end with a newline"):
        sign_note("no newline", [NoteSigner.parse(GO_SKEY)])


def test_unknown_signatures_are_ignored_and_known_ones_all_checked() -> None:
    other = NoteSigner.generate("Other")
    both = sign_note(GO_TEXT, [NoteSigner.parse(GO_SKEY), other])
    assert open_note(both, [NoteVerifier.parse(GO_VKEY)]).text == GO_TEXT
    # A known key whose signature does not verify rejects the note even when another one verifies.
    blob = both.splitlines()[-1].split(" ")[-1]
    bad = both.replace(blob, blob[:8] + "AAAAAAAA" + blob[16:])  # same key ID, broken signature
    with pytest.raises(NoteError):
        open_note(bad, [NoteVerifier.parse(GO_VKEY), other.verifier()])


def test_a_note_padded_past_the_size_bound_is_refused_before_any_work() -> None:
    """A server can pad a checkpoint with an unknown key's signature line of megabytes: ignored
    as unknown, it used to be accepted (and kept in a follower's state) after half a minute of
    character checks; a str note is bounded like a bytes one."""
    import time

    peter = NoteVerifier.parse(GO_VKEY)
    padding = "\u2014 Other " + "A" * MAX_NOTE_BYTES + "\n"
    for note in (GO_NOTE + padding, (GO_NOTE + padding).encode()):
        started = time.monotonic()
        with pytest.raises(NoteError, match=f"larger than {MAX_NOTE_BYTES} bytes"):
            open_note(note, [peter])
        assert time.monotonic() - started < 5.0  # half a minute before
    with pytest.raises(NoteError, match="larger than"):
        open_checkpoint("x\n" * MAX_NOTE_BYTES, PublicKeyring.parse(GO_VKEY))
    assert open_note(GO_NOTE + padding[: MAX_NOTE_BYTES // 2] + "\n", [peter]).text == GO_TEXT


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong ID
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # truncated key
        "PeterNeumann+c74f20a3+AhpjZHkFGw==",  # wrong type
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space in name
        "PeterNeumann",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        NoteVerifier.parse(vkey)


ROOT = bytes(range(32))


def test_checkpoint_text_round_trips_and_is_strict() -> None:
    cp = Checkpoint("example.com/siemgate/A/auditevents", 1048576, ROOT, 1767225600)
    assert cp.text() == (
        "example.com/siemgate/A/auditevents\n1048576\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\ntime 1767225600\n"
    )
    assert Checkpoint.parse(cp.text()) == cp
    bad = [
        cp.text().replace("1048576", "01048576"),
        cp.text().replace("time 1767225600\n", ""),
        cp.text().replace("time", "Timestamp:"),
        cp.text() + "extra\n",
        cp.text().replace("AAEC", "AAE"),
        cp.text().replace("example.com/siemgate/A/auditevents", "has space"),
        cp.text()[:-1],
    ]
    for text in bad:
        with pytest.raises(CheckpointError):
            Checkpoint.parse(text)


def test_recovery_statement_round_trips_and_is_never_a_checkpoint() -> None:
    rec = Recovery("example.com/siemgate/A/auditevents", 10, ROOT, 7, bytes(32), 1767225600, "restored backup")
    assert Recovery.parse(rec.text()) == rec
    with pytest.raises(CheckpointError):
        Checkpoint.parse(rec.text())
    with pytest.raises(CheckpointError):
        Recovery.parse(rec.text().replace("reason restored backup", "reason "))


def test_key_files_rotation_retirement_and_modes(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    ring = SignerKeyring.create(path, "example.com/siemgate")
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(KeyFileError, match="already exists"):
        SignerKeyring.create(path, "example.com/siemgate")
    origin = "example.com/siemgate/A/auditevents"
    old_cp = Checkpoint(origin, 3, ROOT, 1000)
    old_note = sign_note(old_cp.text(), ring.signers_for(origin))
    rotated = ring.rotated()
    assert len(rotated.signers_for(origin)) == 2
    retired = rotated.retired_key(ring.keys[0].key_id)
    retired.save(path)
    reloaded = SignerKeyring.load(path)
    assert [k.retired is None for k in reloaded.keys] == [False, True]
    public = PublicKeyring.parse(reloaded.public().text())
    # The old checkpoint still verifies with the published file after rotation.
    assert open_checkpoint(old_note, public).checkpoint == old_cp
    # A checkpoint the retired key signs with a later time is not accepted on its signature.
    late = Checkpoint(origin, 4, ROOT, int(reloaded.keys[0].retired or 0) + 10)
    with pytest.raises(NoteError):
        open_checkpoint(sign_note(late.text(), ring.signers_for(origin)), public)
    # Keys cover only the logs under their name.
    assert public.verifiers_for("example.com/siemgateX/A/auditevents") == []
    assert fingerprint(ring.keys[0].signer.verifier().public_key).startswith("SHA256:")
    with pytest.raises(KeyFileError, match="last active key"):
        reloaded.retired_key(reloaded.keys[1].key_id)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        SignerKeyring.load(path)


def test_recovery_notes_verify_with_the_log_key(tmp_path: Path) -> None:
    ring = SignerKeyring.create(tmp_path / "keys", "example.com/siemgate")
    rec = Recovery("example.com/siemgate/A/auditevents", 10, ROOT, 7, bytes(32), 1767225600, "restore")
    note = sign_note(rec.text(), ring.signers_for(rec.origin))
    assert open_recovery(note, ring.public()).recovery == rec
