"""The docs stay true to the code: the generated blocks are current, every relative link
resolves, every experiment shown validates, and the commands in the README's and docs/' bash
blocks run as written from a copy of the repository with an empty HOME."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmflow import docs_fields, docs_gen, load_experiment

from .markdown_blocks import REPO, Block, all_blocks, pages

FIX = "python -m llmflow.docs_gen"


def test_the_generated_blocks_are_those_the_code_gives():
    stale = docs_gen.stale_pages(REPO)
    assert not stale, f"{', '.join(stale)}: stale generated blocks; run {FIX} and commit"


def test_a_changed_metric_makes_its_page_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for page in docs_gen.PAGES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / page, tmp_path / page)
    monkeypatch.setitem(docs_gen.GENERATORS, "metrics-table", lambda: "| a new metric |\n")
    assert docs_gen.stale_pages(tmp_path) == ["docs/metrics.md"]


def test_a_field_without_a_meaning_is_named(monkeypatch: pytest.MonkeyPatch):
    meanings = dict(docs_fields.MEANINGS["ModelEntry"])
    del meanings["n_ctx"]
    monkeypatch.setitem(docs_fields.MEANINGS, "ModelEntry", meanings)
    with pytest.raises(SystemExit, match=r"ModelEntry\.n_ctx .*python -m llmflow\.docs_gen"):
        docs_gen.experiment_reference()


def test_no_meaning_outlives_its_field():
    from llmflow.config import Experiment

    models = {model.__name__: model for model in docs_gen._models_below(Experiment)}
    assert set(docs_fields.MEANINGS) == set(models)
    for name, meanings in docs_fields.MEANINGS.items():
        fields = {info.alias or field for field, info in docs_gen._fields(models[name]).items()}
        assert set(meanings) == fields, f"{name}: docs_fields.py and the schema differ"


def test_the_readme_is_a_front_page():
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 200, f"README.md has {lines} lines: move the detail into docs/"


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_relative_link_resolves():
    broken = []
    for page in [*pages(), REPO / "CHANGELOG.md"]:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        for target in _LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists() or (anchor and anchor not in _anchors(path)):
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken


def test_every_experiment_shown_validates(tmp_path: Path):
    shown = [b for b in all_blocks() if b.language == "yaml" and "\nmodels:" in f"\n{b.code}"]
    assert shown
    examples = shutil.copytree(REPO / "examples", tmp_path / "examples")  # the files they name
    for block in shown:
        if "experiment" not in yaml.safe_load(block.code):
            continue
        path = examples / "shown.yaml"
        path.write_text(block.code, encoding="utf-8")
        load_experiment(path)  # a ConfigError names the field


def test_every_python_example_compiles_and_imports_what_exists():
    import llmflow

    for block in (b for b in all_blocks() if b.language == "python"):
        compile(block.code, block.where, "exec")
        for names in re.findall(r"^from llmflow import (.+)$", block.code, re.MULTILINE):
            for name in names.split(","):
                assert name.strip() in llmflow.__all__, f"{block.where}: {name.strip()}"


def test_every_block_says_its_language_and_every_skip_its_reason():
    for block in all_blocks():
        assert block.language, f"{block.where}: write ```bash, ```yaml, ```text..."
        if block.marker == "skip":
            assert block.reason, f"{block.where}: say why the block is not run"
        if block.marker:
            assert block.language == "bash", f"{block.where}: markers are for bash blocks"


def _runnable(marker: str | None) -> list[Block]:
    return [b for b in all_blocks() if b.language == "bash" and b.marker == marker and b.commands()]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The repository as a fresh clone of this working tree has it (ignored files left out)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: no clone to copy")
    root = tmp_path / "clone"
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    return root


def _run_all(blocks: list[Block], cwd: Path, timeout_s: float) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMFLOW_")}
    env["HOME"] = str(cwd.parent / "home")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    Path(env["HOME"]).mkdir(exist_ok=True)
    done: set[str] = set()
    for block in blocks:
        for command in block.commands():
            if command in done:  # shown on two pages: run once
                continue
            done.add(command)
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
            assert result.returncode == 0, (
                f"{block.where}: `{command}` exited {result.returncode}\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )


def test_the_quick_commands_run_as_written(clone: Path):
    blocks = _runnable(None)
    assert any("llmflow --help" in b.code for b in blocks)
    _run_all(blocks, clone, timeout_s=120)


@pytest.mark.local_model
def test_the_local_model_commands_run_as_written(clone: Path):
    pytest.importorskip("llama_cpp", reason="needs the [local] extra")
    blocks = _runnable("local-model")
    assert blocks[0].page == "README.md" and "quickstart" in blocks[0].code
    _run_all(blocks, clone, timeout_s=900)


def test_the_site_builds_without_a_warning(tmp_path: Path):
    pytest.importorskip("mkdocs", reason="needs the [docs] extra")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # material's notice of its end of life
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
