import sqlite3
from pathlib import Path

from mlflow import MlflowClient

from llmflow.tracking.sqlite_template import prepare_new_sqlite_store


def schema_and_default(db: Path) -> tuple[str, str]:
    with sqlite3.connect(db) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        location = conn.execute(
            "SELECT artifact_location FROM experiments WHERE experiment_id = 0"
        ).fetchone()[0]
    return version, location


def test_new_store_is_a_migrated_copy_like_mlflows_own(tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the template is built from another working directory
    assert prepare_new_sqlite_store(f"sqlite:///{tmp_path / 'first.db'}", cache)
    assert len(list(cache.glob("mlflow-*-empty.db"))) == 1

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    copied = work / "mlflow.db"
    assert prepare_new_sqlite_store(f"sqlite:///{copied}", cache)
    direct = work / "direct.db"
    MlflowClient(f"sqlite:///{direct}").search_experiments()  # MLflow's own creation
    assert schema_and_default(copied) == schema_and_default(direct)
    assert schema_and_default(copied)[1] == str(work / "mlruns" / "0")

    client = MlflowClient(f"sqlite:///{copied}")
    run = client.create_run(client.create_experiment("x"))
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_existing_stores_and_other_uris_are_left_alone(tmp_path: Path):
    existing = tmp_path / "old.db"
    existing.write_bytes(b"")
    assert not prepare_new_sqlite_store(f"sqlite:///{existing}", tmp_path / "cache")
    assert existing.read_bytes() == b""
    assert not prepare_new_sqlite_store("http://127.0.0.1:5000", tmp_path / "cache")
    assert not prepare_new_sqlite_store(f"sqlite:///{tmp_path / 'no-dir' / 'x.db'}", tmp_path)


def test_a_query_in_the_uri_is_not_part_of_the_file(tmp_path: Path):
    """`sqlite:///path?timeout=30`: the store is `path`, which SQLAlchemy opens with the
    query's options; a reading command finds it there."""
    from llmflow.tracking.runs import open_store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}?timeout=30"
    assert prepare_new_sqlite_store(uri, tmp_path / "cache")
    assert [p.name for p in tmp_path.glob("*.db")] == ["mlflow.db"]
    client = open_store(uri, create=False).client
    assert client.get_experiment("0").name == "Default"
