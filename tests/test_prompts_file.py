"""Prompts files: JSONL, CSV and YAML as real tools write them."""

import json
from pathlib import Path

import pytest

from llmflow.config.prompts_file import load_prompts_file
from llmflow.errors import ConfigError

BOM = b"\xef\xbb\xbf"


def test_jsonl_strings_may_hold_unicode_line_separators(tmp_path: Path):
    path = tmp_path / "p.jsonl"
    users = ["one\u2028two", "three\u2029four", "five\u0085six"]
    rows = [json.dumps({"id": f"p{i}", "user": u}, ensure_ascii=False) for i, u in enumerate(users)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert [p.user for p in load_prompts_file(path)] == users


def test_jsonl_with_windows_line_ends(tmp_path: Path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"id": "a", "user": "hi"}\r\n{"id": "b", "user": "yo"}\r\n')
    assert [p.id for p in load_prompts_file(path)] == ["a", "b"]


def test_csv_quoted_fields_keep_their_line_breaks(tmp_path: Path):
    path = tmp_path / "p.csv"
    path.write_bytes(b'id,user\r\na,"first line\nsecond line"\r\nb,"x\r\ny"\r\n')
    assert [(p.id, p.user) for p in load_prompts_file(path)] == [
        ("a", "first line\nsecond line"),
        ("b", "x\r\ny"),
    ]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("p.csv", b"id,user\r\na,caf\xc3\xa9\r\n"),
        ("p.jsonl", b'{"id": "a", "user": "caf\xc3\xa9"}\n'),
        ("p.yaml", b"- {id: a, user: caf\xc3\xa9}\n"),
    ],
)
def test_a_byte_order_mark_is_accepted(tmp_path: Path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(BOM + content)
    assert [(p.id, p.user) for p in load_prompts_file(path)] == [("a", "caf\u00e9")]


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path):
    path = tmp_path / "p.csv"
    path.write_bytes("id,user\na,caf\u00e9\n".encode("cp1252"))
    with pytest.raises(ConfigError) as info:
        load_prompts_file(path, shown_as="p.csv")
    assert str(info.value) == "p.csv: not UTF-8 text (byte 0xe9 at position 13): save it as UTF-8"


def test_a_bad_jsonl_line_is_named(tmp_path: Path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "user": "hi"}\n{"id": "b", "user": \n')
    with pytest.raises(ConfigError, match=r"^p\.jsonl: line 2: not valid JSON: "):
        load_prompts_file(path, shown_as="p.jsonl")


def test_a_yaml_alias_bomb_in_a_prompts_file_is_refused(tmp_path: Path):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    path = tmp_path / "p.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="aliases expand to more than"):
        load_prompts_file(path)


def test_a_duplicate_id_is_named_and_cut_short(tmp_path: Path):
    long_id = "x" * 1000  # the longest an id may be
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps({"id": long_id, "user": u}) for u in "ab"))
    with pytest.raises(ConfigError, match="duplicate prompt id 'xxx") as info:
        load_prompts_file(path)
    assert len(str(info.value)) < len(str(path)) + 120
