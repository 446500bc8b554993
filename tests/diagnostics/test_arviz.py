"""Tests for slt_sampler.diagnostics.arviz (DataTree layer); plots: test_plots.py."""

import numpy as np
import pytest
import xarray as xr

from slt_sampler.diagnostics import arviz as sarviz
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
