"""The comparison and the report, rendered from rows: reads nothing (tracking/read.py reads runs;
stored_report.py hands a stored run's rows here).

cells.py       a row's values as cells, each number as metrics.py formats it
comparison.py  the comparison's rows (rows.py) as a table, markdown, csv and json
data.py        the rows with each variant's call rows, for distributions and sweeps; also in memory
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
    "to_csv",
    "to_json",
    "to_markdown",
    "table_cells",
]
