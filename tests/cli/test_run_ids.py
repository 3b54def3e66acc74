"""Every --run / RUN_ID option takes the short id the table's title prints, or any unique prefix
(as git does), and says "ambiguous" or "no run" when that is what is wrong."""

from __future__ import annotations

from collections import Counter

import pytest
from mlflow import MlflowClient

from llmflow.tracking.read import read_comparison as load_comparison
from llmflow.tracking.read import sqlite_comparison
from llmflow.tracking.run_lookup import resolve_run
from llmflow.tracking.runs import KIND_PARENT, KIND_VARIANT, TAG_KIND
from tests.helpers import invoke_cli, write_experiment

EXPERIMENT = "provider-comparison"


@pytest.fixture(scope="module")
def ran(tmp_path_factory, fake_ollama) -> dict:
    tmp = tmp_path_factory.mktemp("run_ids")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    model = {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}
    path = write_experiment(tmp, [model], scorers=[{"type": "regex", "value": "^Echo"}])
    result = invoke_cli("run", str(path), "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (variant,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = '{KIND_VARIANT}'"
    )
    return {
        "uri": uri,
        "client": client,
        "experiment": experiment,
        "parent": variant.data.tags["mlflow.parentRunId"],
        "variant": variant.info.run_id,
        "tmp": tmp,
    }


def cli(ran: dict, *args: str):
    result = invoke_cli(*args, "--tracking-uri", ran["uri"])
    assert "Traceback" not in result.output
    return result


def test_the_short_id_of_the_title_names_the_run_everywhere(ran):
    short = ran["parent"][:8]
    compared = cli(ran, "compare", "-e", EXPERIMENT, "--run", short, "-f", "json")
    assert compared.exit_code == 0, compared.output
    assert ran["variant"] in compared.stdout
    reported = cli(ran, "report", "-e", EXPERIMENT, "--run", short, "--out", str(ran["tmp"] / "r"))
    assert reported.exit_code == 0, reported.output
    assert ran["parent"] in (ran["tmp"] / "r" / "report.md").read_text()
    scored = cli(ran, "score", "-e", EXPERIMENT, "--run", short)
    assert scored.exit_code == 0, scored.output
    assert f"run {ran['parent']}:" in scored.stdout
    baseline = cli(ran, "compare", "-e", EXPERIMENT, "--run", short, "--baseline", short[:6])
    assert baseline.exit_code == 0, baseline.output
    registered = cli(ran, "register", "--run", ran["variant"][:8], "--name", "by_prefix")
    assert registered.exit_code == 0, registered.output
    assert f"from run {ran['variant']}" in registered.stdout


def test_both_comparison_readers_take_a_prefix(ran):
    short = ran["parent"][:5].upper()  # as typed: case does not matter
    direct = sqlite_comparison(ran["uri"], EXPERIMENT, short)
    assert direct is not None and direct.parent_run_id == ran["parent"]
    assert load_comparison(ran["client"], EXPERIMENT, short).parent_run_id == ran["parent"]


def test_no_run_and_a_variant_run_are_told_apart(ran):
    missing = cli(ran, "compare", "-e", EXPERIMENT, "--run", "0000dead")
    assert missing.exit_code == 1
    assert "no run '0000dead' in experiment 'provider-comparison'" in missing.stderr
    assert "has no variant runs" not in missing.stderr
    child = cli(ran, "compare", "-e", EXPERIMENT, "--run", ran["variant"][:8])
    assert f"is a variant run of run {ran['parent']}" in child.stderr
    assert f"pass --run {ran['parent'][:8]}" in child.stderr
    not_hex = cli(ran, "register", "--run", "latest'; --")
    assert not_hex.exit_code == 1 and 'no run "latest\'; --" in sqlite:' in not_hex.stderr


def test_an_ambiguous_prefix_says_how_many_runs_share_it(ran):
    client, experiment = ran["client"], ran["experiment"]
    parents = [ran["parent"]]
    for _ in range(16):  # 17 ids over 16 hex digits: two share their first character
        run = client.create_run(experiment.experiment_id, tags={TAG_KIND: KIND_PARENT})
        parents.append(run.info.run_id)
    first, count = Counter(p[0] for p in parents).most_common(1)[0]
    assert sqlite_comparison(ran["uri"], EXPERIMENT, first) is None  # MLflow words the error
    result = cli(ran, "compare", "-e", EXPERIMENT, "--run", first)
    assert result.exit_code == 1
    assert f"ambiguous ({count} runs start with '{first}' in experiment" in result.stderr
    with pytest.raises(Exception, match="ambiguous"):
        resolve_run(client, first, KIND_PARENT, experiment)
    for run_id in parents[1:]:
        client.delete_run(run_id)  # the other tests see one parent again


def test_a_search_cut_at_its_limit_is_ambiguous_not_the_one_parent_it_saw(monkeypatch):
    """Past the search's limit, a parent among the runs returned may not be the only one."""
    from types import SimpleNamespace

    from llmflow.errors import LlmflowError
    from llmflow.tracking import run_lookup

    def run(run_id: str, kind: str):
        tags = {TAG_KIND: kind}
        return SimpleNamespace(info=SimpleNamespace(run_id=run_id), data=SimpleNamespace(tags=tags))

    found = [run("ab" + "0" * 30, KIND_PARENT), run("ab" + "1" * 30, KIND_VARIANT)]
    client = SimpleNamespace(
        tracking_uri="sqlite:///x.db", search_runs=lambda *a, **k: found[: k["max_results"]]
    )
    monkeypatch.setattr(run_lookup, "_MAX_MATCHES", 2)
    experiment = SimpleNamespace(name="e", experiment_id="1")
    with pytest.raises(LlmflowError, match="ambiguous .at least 2 runs start with it"):
        resolve_run(client, "ab", KIND_PARENT, experiment)
