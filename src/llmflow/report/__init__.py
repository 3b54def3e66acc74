"""The comparison and the report, built from MLflow alone (or from CallRecords in memory).

comparison.py  one row per variant, from the child runs' params and metrics (table/md/csv/json)
data.py        per-call data (the calls.json tables) for distributions and sweeps; also in memory
interpret.py   the written interpretation: claims only with the numbers behind them
plots.py       PNG figures (matplotlib, Agg)
render.py      report.md, report.html (self-contained), results.csv, results.json
baseline.py    deltas against a baseline run, marked when outside the noise
"""

from .comparison import (
    Comparison,
    ComparisonRow,
    comparison_artifacts,
    format_cost,
    load_comparison,
    table_cells,
    to_csv,
    to_json,
    to_markdown,
)

__all__ = [
    "Comparison",
    "ComparisonRow",
    "comparison_artifacts",
    "format_cost",
    "load_comparison",
    "to_csv",
    "to_json",
    "to_markdown",
    "table_cells",
]
