"""The LLC-at-scale figures: which estimate each row plots against which reference."""

import math

import pytest

from slt_sampler.diagnostics import _scale_figure as fig

DLN = {"model": "dln", "d": 825, "true_lambda": 133.5, "llc": 137.3, "llc_sigma": 0.6}
MLP_SGLD = {  # λ unknown, the default run exact, calibrated SGLD checked against it
    "model": "digits_mlp",
    "d": 1210,
    "true_lambda": None,
    "llc": 80.0,
    "llc_sigma": 1.0,
    "sampler": "mams",
    "sgld_llc": 76.0,
    "sgld_llc_sigma": 2.0,
    "sgld_settled": False,
}
MLP_REF = {**MLP_SGLD, "exact_llc": 79.0, "sgld_llc": None, "sampler": "sgld"}


def test_each_row_plots_its_estimate_against_its_reference():
    assert fig._point(DLN) == (133.5, True, 137.3, 0.6, True)
    # an exact default run is the reference of the SGLD check, not a point of its own
    assert fig._point(MLP_SGLD) == (80.0, False, 76.0, 2.0, False)
    assert fig._point(MLP_REF) == (79.0, False, 80.0, 1.0, True)
    assert fig._point({**MLP_SGLD, "sgld_llc": None}) is None  # nothing to judge
    assert fig._point({"model": "x", "llc": None}) is None


def test_accuracy_figure_draws_one_errorbar_per_judged_row():
    rows = [DLN, MLP_SGLD, {**MLP_SGLD, "sgld_llc": None, "model": "other"}]
    f = fig.plot_scale_accuracy(rows)
    left, right = f.axes
    assert len(left.containers) == len(right.containers) == 2
    (y_dln,), (y_mlp,) = (c.lines[0].get_ydata() for c in left.containers)
    assert math.isclose(y_dln, 137.3) and math.isclose(y_mlp, 76.0)
    # the title names the sizes shown (825 and 1210 parameters: both about 10³)
    assert left.get_title() == "λ̂ against λ, 10³ parameters"


def test_title_spans_the_decades_of_the_rows_shown():
    assert fig._sizes([113, 82_500]) == "10² to 10⁵"
    assert fig._sizes([1_000_000, 8500]) == "10⁴ to 10⁶"


def test_run_length_figure_marks_every_default_answer_with_its_error_bar():
    row = {
        **DLN,
        "num_steps": 1000,
        "llc_vs_steps": [[500, 130.0, 1.0], [1000, 137.3, 0.5]],
        "llc_seeds": [136.0, None],  # a seed run that reported nothing is skipped
        "llc_sigma_seeds": [0.8, None],
        "num_steps_seeds": [1500, 1200],
        "llc_2x": 137.0,
        "llc_2x_sigma": 0.4,
        "num_steps_2x": 4000,
    }
    assert fig._answers(row) == [(1000.0, 137.3, 0.6), (1500.0, 136.0, 0.8)]
    ax = fig.plot_llc_vs_run_length([row]).axes[0]
    answers, two_x = ax.containers
    x, y = answers.lines[0].get_data()
    assert list(x) == [1000.0, 1500.0]
    assert y == pytest.approx([137.3 / 133.5, 136.0 / 133.5])
    # the bars are ± 2σ_total of each run
    (bars,) = answers.lines[2]
    low = bars.get_segments()[1][0][1]
    assert math.isclose(low, (136.0 - 1.6) / 133.5)
    assert math.isclose(two_x.lines[0].get_xdata()[0], 4000.0)
