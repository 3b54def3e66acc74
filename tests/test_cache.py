"""The response cache file: opened, or refused in one line before anything runs."""

import sqlite3
from pathlib import Path

import pytest

from llmflow.cache import ResponseCache
from llmflow.errors import ConfigError


def test_a_new_cache_is_created_with_its_directory(tmp_path: Path):
    cache = ResponseCache.open(tmp_path / "a" / "b" / "responses.sqlite")
    cache.close()
    reopened = ResponseCache.open(tmp_path / "a" / "b" / "responses.sqlite")
    reopened.close()


def test_a_file_that_is_not_sqlite_is_one_line(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 10)
    with pytest.raises(ConfigError) as info:
        ResponseCache.open(path)
    assert str(info.value) == f"cache: {path} is not a sqlite database (file is not a database)"
    assert path.read_text().startswith("these are my notes"), "the file is left as it was"


def test_a_directory_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match=rf"cache: {tmp_path} is not a sqlite database"):
        ResponseCache.open(tmp_path)


def test_another_programs_database_is_left_alone(tmp_path: Path):
    path = tmp_path / "mlflow.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE runs (id TEXT)")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="a sqlite database of something else"):
        ResponseCache.open(path)
    db = sqlite3.connect(path)
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("runs",)]
    assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
