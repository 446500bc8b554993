"""Tests for slt_sampler.diagnostics.plots (PNG figures)."""

import itertools
import re

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from slt_sampler.diagnostics import arviz as sarviz
from slt_sampler.diagnostics import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    assert path.is_file() and path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == PNG


# ----------------------------------------------------------------------- loss trace


@pytest.mark.parametrize("init_loss", [None, 0.49, np.array([0.49, 0.5, 0.48])])
def test_plot_loss_trace_writes_png(tmp_path, init_loss):
    losses = 0.5 + 0.01 * np.random.default_rng(7).normal(size=(3, 40))
    path = tmp_path / "sub" / "trace.png"
    fig = plots.plot_loss_trace(
        losses, path=path, title="t", init_loss=init_loss, burn_in=10
    )
    assert isinstance(fig, Figure)
    _assert_png(path)
    assert len(fig.axes) == 2


def test_plot_loss_trace_single_chain_and_nan(tmp_path):
    losses = np.random.default_rng(0).normal(size=(1, 50))
    losses[0, 20] = np.nan
    plots.plot_loss_trace(losses, path=tmp_path / "one.png")
    _assert_png(tmp_path / "one.png")


@pytest.mark.parametrize("shape", [(50,), (2, 1), (2, 3, 4)])
def test_plot_loss_trace_rejects_bad_shape(tmp_path, shape):
    with pytest.raises(ValueError, match=r"`losses` must be a 2-D array"):
        plots.plot_loss_trace(np.zeros(shape), path=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("burn_in", [-1, 39, 2.5])
def test_plot_loss_trace_rejects_bad_burn_in(tmp_path, burn_in):
    with pytest.raises(ValueError, match="`burn_in` must be an integer"):
        plots.plot_loss_trace(
            np.zeros((2, 40)), path=tmp_path / "x.png", burn_in=burn_in
        )


def test_plot_loss_trace_rejects_bad_init_loss(tmp_path):
    with pytest.raises(
        ValueError, match=r"`init_loss` must be a scalar or have shape \(chain,\)"
    ):
        plots.plot_loss_trace(
            np.zeros((2, 40)), path=tmp_path / "x.png", init_loss=[1.0, 2.0, 3.0]
        )


# ------------------------------------------------------------------- λ̂ against λ

ROWS = [
    {"model": "RRR", "true_lambda": 1.5, "llc": 1.47, "llc_mcse": 0.02},
    {"model": "Gaussian d=10", "true_lambda": 5.0, "llc": 5.3, "llc_mcse": 0.1},
    {"model": "bad run", "true_lambda": 0.5, "llc": -0.2, "llc_mcse": 0.05},
    {"model": "no MCSE", "true_lambda": 2.0, "llc": 2.05, "llc_mcse": float("nan")},
]


def crowded_rows():
    """12 models with λ from 1 to 950, clustered near 5, in the study's row format;
    some unsettled, half without llc_sigma, one λ̂ = NaN, one λ̂ < 0, keys missing."""
    lams = [1.0, 5.0, 25.0, 8.0, 6.5, 15.0, 5.0, 5.0, 6.0, 6.0, 42.0, 950.0]
    rng = np.random.default_rng(3)
    rows = []
    for i, lam in enumerate(lams):
        m = 1 + i % 3
        rows.append(
            {
                "model": f"model_{i}_" + "x" * (i % 4),
                "true_lambda": lam,
                "finite_nbeta_lambda": lam - (m - 1) / np.log(1000),
                "llc": lam * (1 + 0.05 * rng.normal()),
                "llc_mcse": 0.01 * lam,
                "llc_sigma": 0.03 * lam if i % 2 else None,
                "settled": i % 3 != 1,
                "rel_error": 0.0,
            }
        )
    rows[4]["llc"] = float("nan")
    rows[9]["llc"] = -0.4
    del rows[2]["settled"], rows[5]["llc_sigma"], rows[7]["finite_nbeta_lambda"]
    return rows


def _label_boxes(fig):
    renderer = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].texts if t.get_gid() == plots._LABEL_GID]
    return labels, [t.get_window_extent(renderer) for t in labels]


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


def test_plot_llc_vs_truth_crowded(tmp_path):
    path = tmp_path / "llc.png"
    fig = plots.plot_llc_vs_truth(crowded_rows(), path=path)
    _assert_png(path)
    ax, ax_rel = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels, boxes = _label_boxes(fig)
    assert sorted(int(t.get_text()) for t in labels) == list(range(1, 13))
    for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2):
        assert not _overlap(a, b), (labels[i].get_text(), labels[j].get_text())
    frame = ax.get_window_extent(fig.canvas.get_renderer())
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 for b in boxes)
    assert all(frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    # panel (b) names every model, numbered in order of λ
    ticks = [t.get_text() for t in ax_rel.get_yticklabels()]
    assert ticks[0] == "1  model_0_" and ticks[-1].startswith("12  model_11")


def test_plot_llc_vs_truth_unsettled_style_and_legend(tmp_path):
    fig = plots.plot_llc_vs_truth(crowded_rows(), path=tmp_path / "llc.png")
    ax = fig.axes[0]
    face = {}
    for coll in ax.collections:
        if coll.get_gid() in ("settled", "unsettled") and len(coll.get_offsets()):
            face[coll.get_gid()] = tuple(coll.get_facecolor()[0])
    assert face["unsettled"] == to_rgba("white")
    assert face["settled"] != face["unsettled"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    for needle in ("not settled", "finite-nβ", "±2σ", "MCSE", "no finite", "λ̂ ≤ 0"):
        assert any(needle in text for text in legend), needle
    targets = [c for c in ax.collections if c.get_gid() == "target"]
    assert len(targets[0].get_offsets()) == 11  # one row has no finite-nβ target
    assert fig._suptitle.get_text() and ax.get_xlabel() and ax.get_ylabel()


def test_plot_llc_vs_truth_narrow_range_is_linear(tmp_path):
    fig = plots.plot_llc_vs_truth(ROWS, path=tmp_path / "llc.png")
    _assert_png(tmp_path / "llc.png")
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"  # 0.5 .. 5.3: a factor 11 < 20
    ticks = {t.get_text() for t in fig.axes[1].get_yticklabels()}
    assert ticks == {"1  bad run", "2  RRR", "3  no MCSE", "4  Gaussian d=10"}


@pytest.mark.parametrize(
    "rows",
    [
        [{"model": "only", "true_lambda": 2.0, "llc": float("nan")}],
        [{"model": "inf", "true_lambda": 2.0, "llc": float("inf"), "llc_mcse": 0.1}],
        [{"model": "a", "true_lambda": 1.0, "llc": 1.1, "settled": None}] * 3,
    ],
)
def test_plot_llc_vs_truth_tolerates_missing_values(tmp_path, rows):
    plots.plot_llc_vs_truth(rows, path=tmp_path / "x.png")
    _assert_png(tmp_path / "x.png")


@pytest.mark.parametrize(
    "rows, problem",
    [
        ([], "got list"),
        (ROWS[0], "got dict"),
        ([{"model": "a", "llc": 1.0, "llc_mcse": 0.1}], r"missing \['true_lambda'\]"),
        ([{**ROWS[0], "true_lambda": 0.0}], "is not > 0"),
        ([{**ROWS[0], "llc": "big"}], "is not a number"),
        ([{**ROWS[0], "llc_mcse": -1.0}], "is negative"),
        ([{**ROWS[0], "llc_sigma": -1.0}], "is negative"),
        ([1.0], "not a dict"),
    ],
)
def test_plot_llc_vs_truth_rejects_bad_rows(tmp_path, rows, problem):
    with pytest.raises(
        ValueError, match=rf"`rows` must be a non-empty list.*{problem}"
    ):
        plots.plot_llc_vs_truth(rows, path=tmp_path / "x.png")


# ------------------------------------------------------------------ ArviZ figure


def _ar1(chains, draws, rho, seed=0):
    rng = np.random.default_rng(seed)
    x = np.empty((chains, draws))
    x[:, 0] = rng.normal(size=chains)
    noise = np.sqrt(1 - rho**2) * rng.normal(size=(chains, draws))
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x


def _all_texts(fig):
    texts = list(fig.texts) + [fig._suptitle, fig._supxlabel]
    for ax in fig.axes:
        texts += list(ax.texts) + [ax.title, ax._left_title, ax._right_title]
    return [t.get_text() for t in texts if t is not None]


def test_arviz_trace_rank_explains_p_value(tmp_path):
    # four chains of one AR(1) law: they agree, but are strongly autocorrelated
    dt = sarviz.to_datatree(_ar1(4, 4000, 0.98), attrs={"model": "toy_model"})
    fig = plots.plot_arviz_trace_rank(dt, path=tmp_path / "az.png")
    _assert_png(tmp_path / "az.png")
    assert not list(tmp_path.glob("*.part*.png"))
    texts = _all_texts(fig)
    assert fig._suptitle.get_text().startswith("toy_model")
    p_texts = [t for t in texts if re.search(r"\bp ?=", t)]
    assert p_texts, "the rank-uniformity p-value is shown"
    for text in p_texts:
        assert "thinned ×" in text and "independent" in text, text
        assert float(re.search(r"\bp ?= ?([\d.]+)", text).group(1)) > 0.01
    caption = fig._supxlabel.get_text()
    assert "R-hat" in caption and "ESS" in caption and "autocorrelat" in caption


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).normal(size=(1, 200)),
        np.where(np.eye(3, 200, 5) > 0, np.nan, 1.0 + np.arange(600.0).reshape(3, 200)),
        np.random.default_rng(1).normal(size=(2, 5)),
    ],
    ids=["one-chain", "nan", "short"],
)
def test_arviz_trace_rank_edge_cases(tmp_path, values):
    fig = plots.plot_arviz_trace_rank(
        sarviz.to_datatree(values), path=tmp_path / "az.png"
    )
    assert (tmp_path / "az.png").read_bytes()[:8] == PNG
    assert fig._suptitle.get_text() == "L_n diagnostics"
    for text in _all_texts(fig):
        assert not re.search(r"\bp ?=", text) or "thinned" in text
