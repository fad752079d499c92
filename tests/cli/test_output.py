"""Printed lines must match Cosmian's ckms byte for byte (scripts parse them)."""

from __future__ import annotations

from ckms import output


def test_id_line_is_tab_and_two_spaces() -> None:
    assert output.id_line("abc") == "\t  Unique identifier: abc"


def test_tags_block_only_when_tags() -> None:
    assert output.tags_block([]) == []
    assert output.tags_block(None) == []
    assert output.tags_block(["a", "b"]) == ["", "  Tags:", "    - a", "    - b"]


def test_paths_are_double_quoted() -> None:
    assert output.quoted("image.enc") == '"image.enc"'
    assert output.quoted('we"ird\\') == '"we\\"ird\\\\"'


def test_render_create_message() -> None:
    text = output.render("The symmetric key was successfully generated.", unique_identifier="u1", tags=["t"])
    assert text == "The symmetric key was successfully generated.\n\t  Unique identifier: u1\n\n  Tags:\n    - t"
