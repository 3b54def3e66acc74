"""What a parent run keeps of its inputs besides its copy of the experiment file: the prompt set
as read (a valid prompts file itself) and each training file's digest. With them, `llmflow
score` scores a run again from the run alone, wherever the prompts file was or has gone.

The prompt set is also the run's dataset input (MLflow's Dataset column), named after its file
or MLflow dataset, with a digest of the prompts as read: runs on the same prompts share it,
whichever file or dataset they came from (`dataset.digest = '...'` in a run search finds
them). What was read from MLflow (the dataset, a registry prompt's version) is tagged."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .artifacts import has_artifact
from .schema import MLFLOW_SOURCE_PREFIX, PROMPTS_ARTIFACT, TRAINING_ARTIFACT

if TYPE_CHECKING:
    from ..config import LoadedExperiment, PromptCase
    from ..prompt_set import PromptSetFile

DATASET_CONTEXT = "evaluation"  # the mlflow.data.context of the prompt set's input


def log_inputs(
    client: Any, run_id: str, loaded: LoadedExperiment, prompt_set: PromptSetFile
) -> None:
    """The prompt set as read (after task classify's preparation: the file the parent wrote)
    and the training digests."""
    client.log_artifact(run_id, str(prompt_set.path), PurePosixPath(PROMPTS_ARTIFACT).parent)
    client.log_inputs(run_id, datasets=[_prompt_set_input(loaded, prompt_set)])
    for name, source in loaded.mlflow_sources.items():
        client.set_tag(run_id, MLFLOW_SOURCE_PREFIX + name, source)
    if loaded.training_sha256:
        training = [
            {"file": Path(name).name, "sha256": digest}
            for name, digest in loaded.training_sha256.items()
        ]
        client.log_dict(run_id, {"training": training}, TRAINING_ARTIFACT)


def _prompt_set_input(loaded: LoadedExperiment, prompt_set: PromptSetFile) -> Any:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    prompts = loaded.config.prompts
    if (dataset_id := loaded.mlflow_sources.get("prompts")) is not None:
        name, kind, source = (
            str(getattr(prompts, "mlflow_dataset", "")),
            "mlflow_evaluation_dataset",
            {"dataset_id": dataset_id},
        )
    elif isinstance(prompts, str):
        name, kind, source = Path(prompts).name, "local", {"uri": prompts}
    else:
        name, kind, source = loaded.path.name, "local", {"uri": loaded.path.name}
    dataset = Dataset(
        name=name,
        digest=prompt_set.digest,
        source_type=kind,
        source=json.dumps(source),
        profile=json.dumps({"num_rows": prompt_set.rows}),
    )
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", DATASET_CONTEXT)])


def stored_prompts(client: Any, run_id: str, into: str) -> tuple[PromptCase, ...] | None:
    """The prompt set the run read, as it stored it; None for a run made before it did."""
    from ..config.prompts_file import load_prompts_file

    if not has_artifact(client, run_id, PROMPTS_ARTIFACT):
        return None
    path = Path(client.download_artifacts(run_id, PROMPTS_ARTIFACT, into))
    return load_prompts_file(path, shown_as=f"{PROMPTS_ARTIFACT} of run {run_id}")
