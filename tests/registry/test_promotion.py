"""Promotion against a registry written by several hands at once: aliases and stages agree."""

import threading

import pytest
from mlflow import MlflowClient

from llmflow.registry import lookups
from llmflow.registry import versions as registry_versions

TRIALS = 6


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    """One store for the module (creating one costs seconds); each test has its own models."""
    return f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"


@pytest.fixture
def client(tracking_uri):
    return MlflowClient(tracking_uri)


def new_model(client: MlflowClient, name: str, versions: int = 2) -> None:
    client.create_registered_model(name)
    for _ in range(versions):
        client.create_model_version(name, source="file:///nowhere/model")


def promote_at_once(tracking_uri: str, name: str, moves: list[tuple[str, str]]) -> None:
    """Each (version, to) from its own thread and client, released together."""
    start = threading.Barrier(len(moves))
    failed: list[BaseException] = []

    def move(version: str, to: str) -> None:
        client = MlflowClient(tracking_uri)
        start.wait()
        try:
            registry_versions.promote(client, name, version, to, force=True)
        except BaseException as e:  # noqa: BLE001 -- the main thread reports it
            failed.append(e)

    threads = [threading.Thread(target=move, args=m) for m in moves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failed, failed


def aliases_and_stages(client: MlflowClient, name: str) -> dict[str, list[str]]:
    found = client.search_model_versions(f"name = '{name}'")
    versions = [client.get_model_version(name, mv.version) for mv in found]
    seen = {
        a: sorted(str(v.version) for v in versions if a in v.aliases)
        for a in registry_versions.ALIASES
    }
    for stage in registry_versions.STAGES.values():
        seen[stage] = sorted(str(v.version) for v in versions if v.current_stage == stage)
    return seen


def assert_consistent(client: MlflowClient, name: str) -> dict[str, list[str]]:
    seen = aliases_and_stages(client, name)
    production, staging = seen["production"], seen["staging"]
    assert len(production) <= 1 and len(staging) <= 1, seen
    assert seen["Production"] == production, seen
    # a version holding both aliases is in Production
    assert seen["Staging"] == [v for v in staging if v not in production], seen
    return seen


@pytest.mark.parametrize("held", [False, True], ids=["alias-new", "alias-held"])
@pytest.mark.parametrize("to", ["production", "staging"])
def test_two_promotions_at_once_leave_one_holder_that_has_the_stage(client, tracking_uri, to, held):
    for trial in range(TRIALS):
        name = f"race_{to}_{held}_{trial}"
        new_model(client, name, versions=3)
        if held:  # the alias exists: both promotions update it rather than create it
            registry_versions.promote(client, name, "3", to, force=True)
        promote_at_once(tracking_uri, name, [("1", to), ("2", to)])
        seen = assert_consistent(client, name)
        assert seen[to] in (["1"], ["2"]), seen


def test_going_back_to_staging_while_another_goes_to_production(client, tracking_uri):
    for trial in range(TRIALS):
        name = f"swap_{trial}"
        new_model(client, name)
        registry_versions.promote(client, name, "1", "production", force=True)
        promote_at_once(tracking_uri, name, [("1", "staging"), ("2", "production")])
        assert_consistent(client, name)


def test_production_back_to_staging_leaves_production(client):
    new_model(client, "back")
    registry_versions.promote(client, "back", "1", "staging")
    registry_versions.promote(client, "back", "1", "production")
    record = registry_versions.promote(client, "back", "1", "staging")
    seen = assert_consistent(client, "back")
    assert seen["staging"] == ["1"] and seen["production"] == [] and seen["Staging"] == ["1"]
    assert record["dropped"] == ["production"]


def test_the_previous_holder_is_archived(client):
    new_model(client, "moved")
    registry_versions.promote(client, "moved", "1", "production", force=True)
    registry_versions.promote(client, "moved", "2", "production", force=True)
    assert client.get_model_version("moved", "1").current_stage == "Archived"
    assert assert_consistent(client, "moved")["production"] == ["2"]


def test_reconcile_follows_the_alias(client):
    """What an interleaving can leave behind: stages that point elsewhere than the aliases."""
    new_model(client, "drifted", versions=3)
    client.set_registered_model_alias("drifted", "production", "2")
    for version, stage in (("1", "Production"), ("3", "Staging")):
        client.transition_model_version_stage("drifted", version, stage)
    assert registry_versions.reconcile(client, "drifted") == [
        ("1", "Archived"),
        ("2", "Production"),
        ("3", "Archived"),
    ]
    assert assert_consistent(client, "drifted")["Production"] == ["2"]
    assert registry_versions.reconcile(client, "drifted") == []


def test_a_lost_race_to_create_an_alias_is_tried_again():
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST

    class LosesTheFirstInsert:
        calls = 0

        def set_registered_model_alias(self, name, alias, version):
            self.calls += 1
            if self.calls == 1:
                raise MlflowException("UNIQUE constraint failed", error_code=BAD_REQUEST)

    client = LosesTheFirstInsert()
    registry_versions._set_alias(client, "m", "staging", "1")
    assert client.calls == 2


def test_other_alias_errors_are_not_swallowed(client):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):
        registry_versions._set_alias(client, "no_such_model", "staging", "1")
    new_model(client, "unset")
    assert lookups.alias_holder(client, "unset", "production") is None  # what its except is for


@pytest.mark.parametrize("error", [KeyError("uid 1234"), OSError("no login name")])
def test_who_without_a_login_name(monkeypatch, error):
    def getuser():
        raise error

    monkeypatch.setattr(registry_versions.getpass, "getuser", getuser)
    assert registry_versions._who() == "unknown"
