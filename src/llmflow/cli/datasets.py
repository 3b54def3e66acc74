"""`llmflow dataset push`: a prompt set into an MLflow evaluation dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from .common import Debug, LeanGroup, TrackingUri, errors

dataset_app = typer.Typer(
    help="MLflow evaluation datasets as prompt sets.",
    no_args_is_help=True,
    cls=LeanGroup,
    rich_markup_mode=None,  # as the main app: plain help, without importing rich
)


@dataset_app.command("push")
def push(
    prompts_file: Annotated[
        Path,
        typer.Argument(
            help="A prompts file (.jsonl, .csv, .yaml) or an experiment file (its prompts).",
            metavar="PROMPTS_FILE",
            show_default=False,
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="The dataset's name.", show_default=False)],
    experiment: Annotated[
        str | None,
        typer.Option(
            "--experiment",
            "-e",
            help="MLflow experiment to link a new dataset to (made if missing). "
            "Default: an experiment file's own, else MLflow's default.",
            show_default=False,
        ),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete records whose id is not in the file.")
    ] = False,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Create or update an MLflow evaluation dataset from a prompt set, keeping its ids.

    Each prompt becomes one record: inputs {user, system}, expectations {expected_response:
    its expected, llmflow_checks: its assert list}, its id in the tag llmflow.id. A prompt
    whose record says the same already is left alone; a changed one replaces its record.
    Run it with `prompts: {mlflow_dataset: NAME}` in an experiment file (SQL stores only:
    sqlite, PostgreSQL, MySQL, or an mlflow server on one). Prints the dataset's digest, which
    `prompts: {mlflow_dataset: NAME, digest: ...}` pins.

    Example: llmflow dataset push examples/quality.yaml --name quality-set
    """
    from ..tracking.datasets import push_prompts, require_sql_store
    from ..tracking.uri import resolve_tracking_uri

    with errors(debug):
        if not name.strip():
            raise ConfigError("--name: must not be empty")
        uri = resolve_tracking_uri(tracking_uri)
        require_sql_store(uri, "--tracking-uri")
        cases, own_experiment = _prompt_set(prompts_file)
        store = _open(uri)
        experiment = experiment or own_experiment
        experiment_id = store.experiment_id(experiment) if experiment else None
        pushed = push_prompts(
            store.tracking_uri, cases, name, experiment_id, prune, source=str(prompts_file)
        )
    verb = "created" if pushed.created else "updated"
    removed = f", {pushed.removed} removed" if prune else ""
    print(
        f"{verb} dataset {name} ({pushed.dataset_id}): {pushed.added} written, "
        f"{pushed.unchanged} unchanged{removed}; digest {pushed.digest}"
    )


def _prompt_set(path: Path):
    """The prompts of a prompts file, or of an experiment file with the experiment's name."""
    from ..config import load_experiment
    from ..config.prompts_file import load_prompts_file
    from ..user_files import load_yaml, read_text

    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            raw = load_yaml(read_text(path, str(path)), str(path))
        except OSError:
            raw = None  # load_prompts_file says why, in its words
        if isinstance(raw, dict):
            loaded = load_experiment(path)
            return loaded.prompts, loaded.config.experiment
    return load_prompts_file(path, field="PROMPTS_FILE"), None


def _open(tracking_uri: str):
    """The store, made if need be: a dataset may come before any run."""
    from ..tracking.runs import open_store

    return open_store(tracking_uri, create=True)


def attach(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
