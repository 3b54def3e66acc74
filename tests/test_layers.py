"""The import graph of src/llmflow, read from the source (no import is run): no circle, and no
arrow from a lower layer to a higher one, save the exceptions listed here with their reason.

The layers, bottom up (a module may import its own layer and the ones below it):

 0. base          plain data and declarations: types, errors, metrics, stats, redact, user_files,
                  the comparison's rows,
                  run ids, the journal's line format, the provider specs and their Protocol
                  (providers/__init__, base, spec, sse), the promotion gates' grammar, the
                  process-wide tricks (lean_import, gc_pause, _process)
 1. config        the experiment file: schema (scorer specs included), loading of experiment,
                  prompt and training files, validation errors, the environment
 2. plan          variants x cases x repeats, prices, sample sizes
 3. scoring       labels, checks, judges (what they are asked, what answers mean), the
                  classification metrics, the judges' ledger
 4. providers     one adapter per vendor (they know nothing of tracking or the file)
 5. engine        runner, cache, budget, journal, running the judges, training the sklearn
                  model, a run's types, stop signals
 6. tracking      every MLflow read and write, and the metrics the checks feed
 7. report        comparison rows -> tables, plots, interpretation (stored_report: a stored
                  run's rows, read by tracking/read.py, handed to the report)
 8. registry      versions, aliases, promotion
 9. worker        the process beside the store (llmflow/worker/): its protocol, both sides,
                  the traces, the store tasks, finishing a run
10. orchestrator  one run in the calls' process (experiment, session, provider_opening), the
                  `score` command's rescoring, serving a registered model
11. cli           the face: parsing, rendering, exit codes; the docs generated from the code

Also: every import of llmflow's own modules is at module level, except in the modules listed in
LAZY_IMPORTS (the CLI keeps `--help` fast; the others are yet to be moved up by their owners,
and may only shrink).
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "llmflow"

WORKER = ("llmflow.worker",)
# the most specific prefix wins: llmflow.providers.spec is base, llmflow.providers.gemini is not
LAYERS: dict[str, int] = {
    **dict.fromkeys(
        (
            "llmflow.__init__",
            "llmflow.types",
            "llmflow.errors",
            "llmflow.metrics",
            "llmflow.stats",
            "llmflow.power",
            "llmflow.significance",
            "llmflow.redact",
            "llmflow.user_files",
            "llmflow.run_ids",
            "llmflow.record_lines",
            "llmflow.rows",
            "llmflow.lean_import",
            "llmflow.gc_pause",
            "llmflow._process",
            "llmflow.providers.__init__",
            "llmflow.providers.base",
            "llmflow.providers.spec",
            "llmflow.providers.sse",
            "llmflow.registry.__init__",
            "llmflow.registry.gates",
            "llmflow.serving.__init__",
        ),
        0,
    ),
    "llmflow.config": 1,
    **dict.fromkeys(("llmflow.plan", "llmflow.pricing", "llmflow.sizing", "llmflow.prompt_set"), 2),
    **dict.fromkeys(("llmflow.scoring", "llmflow.judge_journal"), 3),
    "llmflow.providers": 4,
    **dict.fromkeys(
        (
            "llmflow.runner",
            "llmflow.cache",
            "llmflow.budget",
            "llmflow.journal",
            "llmflow.judging",
            "llmflow.sklearn_training",
            "llmflow.run_types",
            "llmflow.stopping",
            "llmflow.batch",
        ),
        5,
    ),
    **dict.fromkeys(("llmflow.tracking", "llmflow.quality_outputs", "llmflow.mlflow_judging"), 6),
    **dict.fromkeys(("llmflow.report", "llmflow.stored_report"), 7),
    "llmflow.registry": 8,
    **dict.fromkeys(WORKER, 9),
    **dict.fromkeys(
        (
            "llmflow.experiment",
            "llmflow.session",
            "llmflow.provider_opening",
            "llmflow.rescore",
            "llmflow.rescore_judges",
            "llmflow.serving",
        ),
        10,
    ),
    **dict.fromkeys(("llmflow.cli", "llmflow.docs_gen", "llmflow.docs_fields"), 11),
}

# arrows that break the rule today, each with its reason; this list may only shrink
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}
# circles today, each edge with its owner; this list may only shrink
ALLOWED_CIRCLE_EDGES: dict[tuple[str, str], str] = {}
# modules that still import llmflow's own modules inside functions: how many such imports
LAZY_IMPORTS: dict[str, int] = {
    # keeps `llmflow --help` fast: a command imports its work when it runs
    "llmflow.cli": 1,
    "llmflow.cli.batches": 10,
    "llmflow.cli.commands": 2,
    "llmflow.cli.common": 6,
    "llmflow.cli.datasets": 6,
    "llmflow.cli.entry": 1,
    "llmflow.cli.reading": 23,
    "llmflow.cli.registry": 8,
    "llmflow.cli.running": 4,
    # not yet moved up, by their owners (worker, vocab); MLflow-heavy modules among them
    "llmflow.registry.policy": 2,
    "llmflow.registry.registration": 4,
    "llmflow.registry.versions": 1,
    "llmflow.report.classification": 1,
    "llmflow.report.pairs_text": 1,
    "llmflow.report.publish": 2,
    "llmflow.report.quality": 1,
    "llmflow.rescore": 16,
    "llmflow.rescore_judges": 2,
    "llmflow.session": 4,
    "llmflow.tracking.run_inputs": 1,
    "llmflow.tracking.runs": 5,
    # the worker: its server after the process is prepared; the finish's MLflow-heavy modules
    "llmflow.worker.finish": 6,
    "llmflow.worker.handlers": 4,
    "llmflow.worker.main": 2,
}


def module_files() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _type_only(tree: ast.Module) -> set[int]:
    """The nodes under `if TYPE_CHECKING:`: annotations, never run."""
    nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return nodes


def _targets(node: ast.AST, package: str, modules: dict[str, Path]) -> list[str]:
    """The llmflow modules an import statement loads (a name imported from a package is the
    submodule when there is one, else the package's __init__)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join([*base, *([node.module] if node.module else [])])
    else:
        module = node.module or ""
    found = []
    for alias in node.names:
        if f"{module}.{alias.name}" in modules:
            found.append(f"{module}.{alias.name}")
        elif module in modules:
            found.append(module)
    return found


def import_graph() -> tuple[dict[str, dict[str, int]], Counter[str]]:
    """module -> {imported module: line}, type-only imports left out; and per module, how many
    of its imports of llmflow modules are inside a function."""
    modules = module_files()
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    lazy: Counter[str] = Counter()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        skipped = _type_only(tree)
        for scope in ast.walk(tree):
            if not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(scope):
                if _targets(node, package, modules):
                    lazy[name] += 1
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            for target in _targets(node, package, modules):
                if target != name:
                    graph[name].setdefault(target, node.lineno)
    return graph, lazy


def layer_of(module: str, is_package: bool) -> int:
    keys = [f"{module}.__init__"] if is_package else []
    parts = module.split(".")
    keys += [".".join(parts[:n]) for n in range(len(parts), 1, -1)]  # never "llmflow" alone
    for key in keys:
        if key in LAYERS:
            return LAYERS[key]
    raise AssertionError(f"{module}: no layer: add it to LAYERS in tests/test_layers.py")


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The groups of more than one module that each reach one another."""
    reach = {v: _reachable(graph, v) for v in graph}
    found = {tuple(sorted(w for w in reach[v] if v in reach[w])) for v in graph if v in reach[v]}
    return sorted(list(group) for group in found if len(group) > 1)


def _reachable(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo.extend(graph.get(v, ()))
    return seen


def test_every_module_has_a_layer():
    packages = {name for name, path in module_files().items() if path.name == "__init__.py"}
    for module in module_files():
        layer_of(module, module in packages)


def test_no_import_goes_up_a_layer():
    graph, _ = import_graph()
    packages = {name for name, path in module_files().items() if path.name == "__init__.py"}
    upward = []
    for source, targets in graph.items():
        for target, line in targets.items():
            low, high = layer_of(source, source in packages), layer_of(target, target in packages)
            if high > low and (source, target) not in ALLOWED_UPWARD:
                upward.append(f"{source}:{line} (layer {low}) -> {target} (layer {high})")
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_circle():
    graph, _ = import_graph()
    pruned = {
        source: {t: n for t, n in targets.items() if (source, t) not in ALLOWED_CIRCLE_EDGES}
        for source, targets in graph.items()
    }
    assert circles(pruned) == []


def test_the_allowed_exceptions_are_still_needed():
    graph, lazy = import_graph()
    for source, target in [*ALLOWED_UPWARD, *ALLOWED_CIRCLE_EDGES]:
        assert target in graph[source], f"{source} -> {target} is gone: drop its exception"
    grown = {m: n for m, n in lazy.items() if n > LAZY_IMPORTS.get(m, 0)}
    assert not grown, f"imports of llmflow modules inside functions, move them up: {grown}"
    shrunk = {m: (lazy.get(m, 0), n) for m, n in LAZY_IMPORTS.items() if lazy.get(m, 0) < n}
    assert not shrunk, f"fewer lazy imports now (found, allowed): lower LAZY_IMPORTS: {shrunk}"


def test_the_graph_sees_a_circle_and_an_upward_arrow():
    """The checks above can fail: a circle and an arrow up, made by hand, are found."""
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {}}
    assert circles(graph) == [["a", "b", "c"]]
    assert layer_of("llmflow.config.schema", False) < layer_of("llmflow.scoring.judge", False)
    assert layer_of("llmflow.providers.spec", False) == 0
    assert layer_of("llmflow.providers", True) == 0
    assert layer_of("llmflow.providers.gemini", False) == 4
