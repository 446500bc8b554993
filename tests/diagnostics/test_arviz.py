"""Tests for slt_sampler.diagnostics.arviz (DataTree layer) and .plots (PNG figures)."""

import numpy as np
import pytest
import xarray as xr

from slt_sampler.diagnostics import arviz as sarviz
from slt_sampler.diagnostics import plots
from slt_sampler.estimators import _mcse

CHAINS, DRAWS = 3, 40


@pytest.fixture
def run():
    rng = np.random.default_rng(7)
    losses = (0.5 + 0.01 * rng.normal(size=(CHAINS, DRAWS))).astype(np.float32)
    stats = {
        "lp": rng.normal(size=(CHAINS, DRAWS)),
        "acceptance_rate": rng.uniform(size=(CHAINS, DRAWS)).astype(np.float32),
        "diverging": rng.uniform(size=(CHAINS, DRAWS)) < 0.1,
        "step_size": np.full((CHAINS, DRAWS), 1e-4),
        "n_steps": rng.integers(1, 64, size=(CHAINS, DRAWS)),
    }
    posterior = {
        "w": rng.normal(size=(CHAINS, DRAWS, 2, 3)),
        "b": rng.normal(size=(CHAINS, DRAWS)),
    }
    attrs = {
        "llc": 1.25,
        "llc_mcse": 0.03,
        "n": 1000,
        "beta": 1 / np.log(1000),
        "gamma": np.float32(100.0),
        "sampler": "sgld",
        "localized": True,
    }
    return losses, stats, posterior, attrs


# -------------------------------------------------------------------------- to_datatree


def test_to_datatree_schema(run):
    losses, stats, posterior, attrs = run
    dt = sarviz.to_datatree(
        losses, sample_stats=stats, posterior=posterior, attrs=attrs
    )
    assert isinstance(dt, xr.DataTree)
    assert set(dt.children) == {"posterior", "sample_stats"}
    ss = dt["sample_stats"]
    assert set(ss.data_vars) == {"L_n", *stats}
    assert ss["L_n"].dims == ("chain", "draw")
    np.testing.assert_array_equal(ss["L_n"].values, losses)
    assert ss["L_n"].dtype == np.float32
    assert ss["diverging"].dtype == bool
    np.testing.assert_array_equal(ss["chain"].values, np.arange(CHAINS))
    np.testing.assert_array_equal(ss["draw"].values, np.arange(DRAWS))
    assert dt["posterior"]["w"].dims[:2] == ("chain", "draw")
    assert dt["posterior"]["w"].shape == (CHAINS, DRAWS, 2, 3)
    assert dt.attrs["llc"] == 1.25 and dt.attrs["sampler"] == "sgld"
    assert type(dt.attrs["gamma"]) is float  # numpy scalar converted


def test_to_datatree_minimal_and_jax_input():
    import jax.numpy as jnp

    dt = sarviz.to_datatree(jnp.ones((2, 5)))
    assert set(dt.children) == {"sample_stats"}
    assert dt["sample_stats"]["L_n"].shape == (2, 5)
    assert dt.attrs == {}


def test_arviz_stats_runs_on_datatree(run):
    """The tree is consumable by ArviZ 1.x and agrees with our array functions."""
    import arviz_stats

    losses = np.random.default_rng(8).normal(size=(4, 200))
    dt = sarviz.to_datatree(losses)
    ess = arviz_stats.ess(dt, group="sample_stats", var_names="L_n")
    rhat = arviz_stats.rhat(dt, group="sample_stats", var_names="L_n")
    np.testing.assert_allclose(float(ess["L_n"]), _mcse.ess_bulk(losses), rtol=1e-6)
    np.testing.assert_allclose(float(rhat["L_n"]), _mcse.rhat(losses), rtol=1e-6)


@pytest.mark.parametrize("shape", [(10,), (2, 0), (2, 3, 4), ()])
def test_to_datatree_rejects_bad_losses(shape):
    with pytest.raises(
        ValueError, match=r"`losses` must be a 2-D array shaped \(chain, draw\)"
    ):
        sarviz.to_datatree(np.zeros(shape))


@pytest.mark.parametrize("arg", ["sample_stats", "posterior"])
@pytest.mark.parametrize("shape", [(3, 39), (40, 3), (3,)])
def test_to_datatree_rejects_mismatched_leading_dims(arg, shape):
    with pytest.raises(
        ValueError, match=rf"`{arg}\['x'\]` must lead with the \(chain, draw\)"
    ):
        sarviz.to_datatree(np.zeros((CHAINS, DRAWS)), **{arg: {"x": np.zeros(shape)}})


def test_to_datatree_rejects_duplicate_loss():
    with pytest.raises(ValueError, match="passed once, as `losses`"):
        sarviz.to_datatree(np.zeros((2, 4)), sample_stats={"L_n": np.zeros((2, 4))})


@pytest.mark.parametrize("value", [None, [1, 2], np.zeros(3), {"a": 1}, 1j])
def test_to_datatree_rejects_bad_attrs(value):
    with pytest.raises(TypeError, match=r"`attrs\['bad'\]` must be a scalar"):
        sarviz.to_datatree(np.zeros((2, 4)), attrs={"bad": value})


def test_to_datatree_rejects_non_mapping():
    with pytest.raises(TypeError, match="`sample_stats` must be a dict"):
        sarviz.to_datatree(np.zeros((2, 4)), sample_stats=[np.zeros((2, 4))])


# -------------------------------------------------------------------------- save / load


def _assert_roundtrip(dt, back):
    xr.testing.assert_identical(back, dt)  # values, dims, coords, attrs of every node
    for node in dt.subtree:
        other = back[node.path]
        assert node.attrs == other.attrs
        for name, var in node.to_dataset(inherit=False).variables.items():
            assert other[name].dtype == var.dtype, (node.path, name)


def test_save_load_roundtrip_directory(run, tmp_path):
    losses, stats, posterior, attrs = run
    dt = sarviz.to_datatree(
        losses, sample_stats=stats, posterior=posterior, attrs=attrs
    )
    out = sarviz.save_datatree(dt, tmp_path / "run")
    assert (out / "manifest.json").is_file()
    back = sarviz.load_datatree(out)
    _assert_roundtrip(dt, back)
    assert back.attrs["localized"] is True and back.attrs["n"] == 1000
    # overwrite in place works
    sarviz.save_datatree(dt, out)
    _assert_roundtrip(dt, sarviz.load_datatree(str(out)))


def test_save_load_roundtrip_netcdf4_file(run, tmp_path):
    losses, stats, posterior, attrs = run
    dt = sarviz.to_datatree(
        losses, sample_stats=stats, posterior=posterior, attrs=attrs
    )
    path = tmp_path / "run.nc"
    if not sarviz._has_netcdf4_engine():
        with pytest.raises(ValueError, match="Install h5netcdf"):
            sarviz.save_datatree(dt, path)
        pytest.skip("h5netcdf / netCDF4 not installed: single-file .nc unavailable")
    back = sarviz.load_datatree(sarviz.save_datatree(dt, path))
    xr.testing.assert_identical(back, dt)


def test_load_rejects_unknown_path(tmp_path):
    with pytest.raises(ValueError, match=r"no manifest\.json"):
        sarviz.load_datatree(tmp_path)


def test_save_rejects_non_datatree(tmp_path):
    with pytest.raises(TypeError, match=r"`dt` must be an xarray\.DataTree"):
        sarviz.save_datatree({"a": 1}, tmp_path / "x")


# -------------------------------------------------------------------------------- plots


def _assert_png(path):
    assert path.is_file() and path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("init_loss", [None, 0.49, np.array([0.49, 0.5, 0.48])])
def test_plot_loss_trace_writes_png(run, tmp_path, init_loss):
    from matplotlib.figure import Figure

    losses = run[0]
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


ROWS = [
    {"model": "RRR", "true_lambda": 1.5, "llc": 1.47, "llc_mcse": 0.02},
    {"model": "Gaussian d=10", "true_lambda": 5.0, "llc": 5.3, "llc_mcse": 0.1},
    {"model": "bad run", "true_lambda": 0.5, "llc": -0.2, "llc_mcse": 0.05},
    {"model": "no MCSE", "true_lambda": 2.0, "llc": 2.05, "llc_mcse": float("nan")},
]


def test_plot_llc_vs_truth_writes_png(tmp_path):
    path = tmp_path / "llc.png"
    fig = plots.plot_llc_vs_truth(ROWS, path=path)
    _assert_png(path)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert {t.get_text() for t in ax.texts} >= {"RRR", "Gaussian d=10", "no MCSE"}


@pytest.mark.parametrize(
    "rows, problem",
    [
        ([], "got list"),
        (ROWS[0], "got dict"),
        ([{"model": "a", "llc": 1.0, "llc_mcse": 0.1}], r"missing \['true_lambda'\]"),
        ([{**ROWS[0], "true_lambda": 0.0}], "is not > 0"),
        ([{**ROWS[0], "llc": float("inf")}], "is not finite"),
        ([{**ROWS[0], "llc_mcse": -1.0}], "is negative"),
        ([1.0], "not a dict"),
    ],
)
def test_plot_llc_vs_truth_rejects_bad_rows(tmp_path, rows, problem):
    with pytest.raises(
        ValueError, match=rf"`rows` must be a non-empty list.*{problem}"
    ):
        plots.plot_llc_vs_truth(rows, path=tmp_path / "x.png")


def test_arviz_native_trace_and_rank_plot(tmp_path):
    from slt_sampler.diagnostics.plots import plot_arviz_trace_rank

    x = np.random.default_rng(0).normal(size=(4, 300))
    out = plot_arviz_trace_rank(sarviz.to_datatree(x), path=tmp_path / "az.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
    assert not list(tmp_path.glob("*.part*.png"))
