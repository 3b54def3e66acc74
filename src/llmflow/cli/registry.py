"""`llmflow register`, `promote` and `models`: the Model Registry side of the CLI."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ..tracking.schema import SOURCE_RUN_TAG
from .common import Debug, LeanGroup, TrackingUri, err, errors, open_store, out


def register(
    run_id: Annotated[
        str, typer.Option("--run", help="A variant (child) run id, or a unique prefix of it.")
    ],
    name: Annotated[
        str | None,
        typer.Option(
            help="Registered model name. Default: register_as, else llm_<provider>_<task>."
        ),
    ] = None,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Register a variant run as a new version of a model (MLflow pyfunc, models from code)."""
    from ..registry import versions
    from ..tracking.schema import PROMPT_ERROR_TAG

    with errors(debug):
        store = open_store(tracking_uri)
        mv = versions.register_run(store.client, run_id, name)
    source = mv.tags.get(SOURCE_RUN_TAG, run_id)
    print(f"registered {mv.name} version {mv.version} from run {source}")
    if reason := mv.tags.get(PROMPT_ERROR_TAG):
        from rich.markup import escape

        err.print(f"[yellow]its prompt was not registered:[/] {escape(reason)}")


def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.", show_default=False)],
    version: Annotated[str, typer.Option("--version", "-v", help="Version to promote.")],
    to: Annotated[str, typer.Option("--to", help="staging or production.")],
    require: Annotated[
        list[str] | None,
        typer.Option(
            "--require",
            help='Gate on a recorded metric, e.g. "latency_p95_s<3", "error_rate==0". Repeatable.',
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Allow production for a version never in staging.")
    ] = False,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Move the staging/production alias (and legacy stage) to a version, if its gates pass.

    Gates are the --require rules plus the experiment file's `promote.require`, checked against
    the metrics recorded on the version when it was registered. Exit code 1 when refused.
    Sending the production version back to staging takes it out of production.
    """
    from ..errors import PromotionRefused
    from ..registry import versions

    with errors(debug):
        store = open_store(tracking_uri)
        try:
            record = versions.promote(store.client, name, version, to, require or [], force)
        except PromotionRefused as refused:
            for reason in refused.reasons:
                err.print(f"[red]refused:[/] {reason}")
            raise typer.Exit(1) from None
    gates = ", ".join(record["gates"]) or "no gates"
    previous = f" (was v{record['previous_version']})" if record["previous_version"] else ""
    line = f"{name} v{version} is now {to}{previous}{_dropped(record)}; passed: {gates}"
    print(line)  # whole: a CI log is not wrapped at 80 columns


models_app = typer.Typer(
    help="Registered models: versions, aliases, stages, key metrics.",
    invoke_without_command=True,
    cls=LeanGroup,
    rich_markup_mode=None,  # as the main app: plain help, without importing rich
)


@models_app.callback()
def models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """List registered models with their versions, aliases, stages and key metrics."""
    if ctx.invoked_subcommand is not None:
        return
    from ..registry import versions

    with errors(debug):
        listed, versionless = versions.list_registry(open_store(tracking_uri).client)
    if as_json:
        print(json.dumps([v.__dict__ for v in listed], indent=2))
        return
    if not listed and not versionless:
        print(
            "no registered models yet: `llmflow run` registers the entries with `register_as:`"
            " (every one with --register), `llmflow register` a variant run"
        )
        return
    if listed:
        _print_models(listed)
    if versionless:
        print(f"registered without any version: {', '.join(versionless)}")


def _print_models(listed) -> None:
    """A table fitted to the terminal; piped or redirected, markdown with every column."""
    from .tables import fit_table, markdown_table

    rows = [_version_row(v) for v in listed]
    if not out.is_terminal:
        sys.stdout.write(markdown_table(_MODELS_HEADER, rows))
        return
    table = fit_table(
        out.console,
        "Registered models",
        _MODELS_HEADER,
        rows,
        left=_MODELS_HEADER[:6],  # the others are numbers
        label_columns=2,
        essential=("Name", "Version", "Aliases", "p95 (s)", _RUN_COST, "Pass rate"),
        whole="--json has them all",
    )
    out.print(table)


# a version records its run's total spend (estimated_cost_usd), not a call's
_RUN_COST = "Run cost (all calls)"
_MODELS_HEADER = (
    "Name",
    "Version",
    "Aliases",
    "Stage",
    "Provider",
    "Model",
    "p50 (s)",
    "p95 (s)",
    _RUN_COST,
    "Error rate",
    "Pass rate",
)
_MODELS_METRICS = (
    "latency_p50_s",
    "latency_p95_s",
    "estimated_cost_usd",
    "error_rate",
    "pass_rate",
)


def _version_row(v) -> list[str]:
    """Each metric as `llmflow compare` shows it (`$0.000268`, `40.0%`); a version registered
    with no cost recorded was unpriced."""
    from ..metrics import BY_KEY

    cells = [BY_KEY[key].format(v.metrics.get(key)) for key in _MODELS_METRICS]
    if "estimated_cost_usd" not in v.metrics:
        cells[2] = "unpriced"
    return [
        v.name,
        f"v{v.version}",
        ", ".join(v.aliases) or "-",
        v.stage,
        v.provider,
        v.model,
        *cells,
    ]


@models_app.command("history")
def models_history(
    name: Annotated[str, typer.Argument(help="Registered model name.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    tracking_uri: TrackingUri = None,
    debug: Debug = False,
) -> None:
    """Every promotion of a model, oldest first: who, when, to what, from which version."""
    from ..registry import versions

    with errors(debug):
        records = versions.history(open_store(tracking_uri).client, name)
    if as_json:
        print(json.dumps(records, indent=2))
        return
    if not records:
        print(f"{name}: never promoted (`llmflow promote {name} -v VERSION --to staging`)")
        return
    for r in records:
        held = r["previous_version"]
        previous = f"replacing v{held}" if held else f"no version was in {r['to']} before"
        forced = " (forced)" if r["forced"] else ""
        gates = ", ".join(r["gates"]) or "no gates"
        line = f"{r['at']}  v{r['version']} -> {r['to']}{forced}{_dropped(r)}  {previous}"
        line += f"  by {r['by']}"
        print(f"{line}  passed: {gates}")


def _dropped(record: dict) -> str:
    dropped = record.get("dropped")  # absent from promotions recorded before it existed
    return f", no longer {' or '.join(dropped)}" if dropped else ""


def attach(app: typer.Typer) -> None:
    app.command()(register)
    app.command()(promote)
    app.add_typer(models_app, name="models")
