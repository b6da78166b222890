"""The tokens file: digests only, comments, bad lines named, re-read on change; `token new` prints a token once."""

from __future__ import annotations

import os

import pytest

from gpt_image_2_mcp.adapters.tokens_file_verifier import (
    ISSUER,
    TokensFileError,
    TokensFileVerifier,
    digest_of,
    new_token,
)
from gpt_image_2_mcp.entrypoints.cli import main

SCOPES = frozenset({"images:read"})


def write(path, text):
    path.write_text(text)
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))  # a visible change even within one tick
    return path


async def test_a_listed_token_is_its_subject_and_anything_else_is_refused(tmp_path):
    alice, alice_line = new_token("alice@example.com")
    bob, bob_line = new_token("bob")
    path = write(tmp_path / "tokens", f"# the team\n{alice_line}\n\n{bob_line}  # bob's laptop\n")
    verifier = TokensFileVerifier(path, SCOPES)
    verified = await verifier.verify(alice)
    assert verified is not None and verified.subject == "alice@example.com" and verified.issuer == ISSUER
    assert verified.scopes == SCOPES and verified.expires_at is None
    assert (await verifier.verify(bob)).subject == "bob"
    assert await verifier.verify(alice + "x") is None and await verifier.verify("") is None
    assert alice not in path.read_text() and digest_of(alice) in path.read_text()


async def test_the_file_is_read_again_when_it_changes_and_a_bad_edit_keeps_the_last_good_one(tmp_path):
    alice, alice_line = new_token("alice")
    bob, bob_line = new_token("bob")
    path = write(tmp_path / "tokens", alice_line + "\n")
    verifier = TokensFileVerifier(path, SCOPES)
    assert await verifier.verify(bob) is None
    write(path, f"{bob_line}\n")  # alice removed, bob added
    assert (await verifier.verify(bob)).subject == "bob" and await verifier.verify(alice) is None
    write(path, "this line is broken\n")
    assert (await verifier.verify(bob)).subject == "bob"


@pytest.mark.parametrize("text", ["alice sha256:abc\n", "alice 5e88\n", "alice\n", f"a b sha256:{'0' * 64}\n"])
def test_a_bad_line_is_named_at_start_up(tmp_path, text):
    with pytest.raises(TokensFileError, match="line 1 is not"):
        TokensFileVerifier(write(tmp_path / "tokens", text), SCOPES)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(TokensFileError, match="cannot read the tokens file"):
        TokensFileVerifier(tmp_path / "nope", SCOPES)


def test_token_new_prints_the_token_once_then_the_line_that_grants_it(capsys):
    assert main(["token", "new", "carol"]) == 0
    out, err = capsys.readouterr()
    token, line = out.splitlines()
    assert token.startswith("gi2_") and len(token) > 40
    assert line == f"carol sha256:{digest_of(token)}"
    assert "shown this once" in err and token not in err
    assert main(["token", "new", "has space"]) == 2
