"""What a parent run keeps of its inputs besides its copy of the experiment file: the prompt set
as read (a valid prompts file itself) and each training file's digest. With them, `llmflow
score` scores a run again from the run alone, wherever the prompts file was or has gone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifacts import has_artifact
from .schema import PROMPTS_ARTIFACT, TRAINING_ARTIFACT

if TYPE_CHECKING:
    from ..config import LoadedExperiment, PromptCase


def log_inputs(client: Any, run_id: str, loaded: LoadedExperiment) -> None:
    """The prompt set as read (after task classify's preparation) and the training digests."""
    rows = (p.model_dump(mode="json", by_alias=True, exclude_unset=True) for p in loaded.prompts)
    client.log_text(
        run_id, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), PROMPTS_ARTIFACT
    )
    if loaded.training_sha256:
        training = [
            {"file": Path(name).name, "sha256": digest}
            for name, digest in loaded.training_sha256.items()
        ]
        client.log_dict(run_id, {"training": training}, TRAINING_ARTIFACT)


def stored_prompts(client: Any, run_id: str, into: str) -> tuple[PromptCase, ...] | None:
    """The prompt set the run read, as it stored it; None for a run made before it did."""
    from ..config.prompts_file import load_prompts_file

    if not has_artifact(client, run_id, PROMPTS_ARTIFACT):
        return None
    path = Path(client.download_artifacts(run_id, PROMPTS_ARTIFACT, into))
    return load_prompts_file(path, shown_as=f"{PROMPTS_ARTIFACT} of run {run_id}")
