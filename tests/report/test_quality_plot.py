"""The plot of pass rate against latency: every name readable, inside the figure, none over
another, and a latency axis from 0, so that noise does not look like spread."""

from __future__ import annotations

import itertools

import matplotlib
import pytest

from llmflow.report.quality import quality_figure
from tests.report.test_quality_report import row

matplotlib.use("Agg")


def legend_names(fig, renderer):
    (legend,) = [a.get_legend() for a in fig.axes if a.get_legend()]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in legend.get_texts()]


@pytest.mark.parametrize(
    "names",
    [
        ["openai:gpt-4o-mini@t0.2", "openai:gpt-4o-mini@t0.7", "openai:gpt-4o-mini@t1"],
        [
            f"ollama:llama3.1:8b-instruct-q4_K_M[temperature={t / 10}]#{i}"
            for i in range(20)
            for t in (2,)
        ],
    ],
)
def test_names_stay_inside_and_apart_and_latency_starts_at_0(names):
    # the case: every median latency within 0.0975-0.1000 s, pass rates alike
    points = [
        row(name, 2 + i % 2, 5, 0.0975 + 0.0025 * i / len(names)) for i, name in enumerate(names)
    ]
    fig = quality_figure(points)
    left, right = fig.axes[0].get_xlim()
    assert left == 0 and 0.1 < right < 0.2
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    drawn, box = fig.get_tightbbox(renderer), fig.bbox_inches  # all that is drawn, in inches
    assert box.x0 <= drawn.x0 and drawn.x1 <= box.x1 and box.y0 <= drawn.y0 and drawn.y1 <= box.y1
    labels = legend_names(fig, renderer)
    assert len(labels) == len(names)
    for (a, box_a), (b, box_b) in itertools.combinations(labels, 2):
        assert not box_a.overlaps(box_b), f"{a!r} is drawn over {b!r}"
    assert (fig.get_figwidth() * fig.dpi, fig.get_figheight() * fig.dpi) == (800, 450)
