"""llc_over_training: one compile for all checkpoints, resumable, honest λ̂ at
minima, clear errors for checkpoints of the wrong structure."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import CalibrationConfig
from slt_sampler.samplers import run as driver
from slt_sampler.workflows.llc_over_training import llc_over_training
from slt_sampler.zoo import models as zoo

KW = {"step_size": 2e-5, "num_steps": 1000, "num_chains": 2, "refresh": None}


@pytest.fixture(scope="module")
def model():
    return zoo.regular(jax.random.key(0), 3, n=1000)


def near_minimum(model, k, seed=0, scale=1e-4):
    """k checkpoints within ``scale`` of the minimiser (stacked like the params)."""
    noise = jax.random.normal(jax.random.key(seed), (k,) + model.w_star[0].shape)
    return [model.w_star[0][None] + scale * noise]


def test_one_compile_for_all_checkpoints_and_lambda_at_minima(model):
    """New centres reuse the compiled sampler: a second run over 6 other checkpoints
    compiles nothing. At minima of a regular model every λ̂ estimates d/2 = 1.5."""
    first = llc_over_training(
        jax.random.key(1), model.posterior, near_minimum(model, 3), **KW
    )
    assert first.compiles <= 1
    res = llc_over_training(
        jax.random.key(2), model.posterior, near_minimum(model, 6, seed=1), **KW
    )
    assert res.compiles == 0
    assert res.losses.shape == (6, 2, 750)
    assert not res.below.any()
    z = (res.llc - 1.5) / res.llc_sigma
    assert np.all(np.abs(z) < 4), (res.llc, res.llc_sigma)
    assert 0.05 < np.mean(res.llc_sigma) < 1.0  # error bars neither absent nor absurd


def test_calibration_and_refresh_share_the_one_executable(monkeypatch):
    """Calibrating (several trial steps from a deliberately large first step) and
    recalibrating where the curvature changed compile no second sampler. The
    checkpoints are one RRR minimiser moved along the rescaling symmetry
    (A, B) -> (cA, B/c): all minima, with curvature growing like c²."""
    monkeypatch.setattr(driver, "_COMPILED", {})  # a fresh process
    rrr = zoo.reduced_rank(jax.random.key(0), 3, 3, 2, 1, n=1000, minimiser="balanced")
    a, b = rrr.w_star
    cs = jnp.array([1.0, 1.0, 3.0, 3.0])
    ck = [a[None] * cs[:, None, None], b[None] / cs[:, None, None]]
    res = llc_over_training(
        jax.random.key(5),
        rrr.posterior,
        ck,
        num_steps=1000,
        num_chains=2,
        calibrate_at=0,
        calibration=CalibrationConfig(init_step_size=1e-2),
    )
    assert res.compiles == 1 and len(driver._COMPILED) == 1
    notes = " ".join(res.refreshed)
    assert "calibrated at checkpoint 0" in notes and "trial 1)" not in notes, notes
    assert "calibrated at checkpoint 2" in notes, notes
    assert res.step_size[2] < res.step_size[0] / 2  # the stiffer minimum, a smaller ε


def test_resume_skips_finished_checkpoints(model, tmp_path):
    ck = near_minimum(model, 4, seed=2)
    full = llc_over_training(
        jax.random.key(3), model.posterior, ck, path=tmp_path, **KW
    )
    (tmp_path / "ckpt_00002.npz").unlink()  # as if interrupted before checkpoint 2
    again = llc_over_training(
        jax.random.key(3), model.posterior, ck, path=tmp_path, **KW
    )
    np.testing.assert_array_equal(again.llc, full.llc)
    np.testing.assert_array_equal(again.losses, full.losses)
    assert again.checkpoint_seconds[0] == full.checkpoint_seconds[0]  # loaded
    with pytest.raises(ValueError, match="other settings"):
        llc_over_training(
            jax.random.key(3),
            model.posterior,
            ck,
            path=tmp_path,
            **{**KW, "num_chains": 4},
        )
    moved = [ck[0] + 1e-3]
    with pytest.raises(ValueError, match="checkpoints changed"):
        llc_over_training(
            jax.random.key(3), model.posterior, moved, path=tmp_path, **KW
        )


def test_datatree_summary_and_plot(model, tmp_path):
    res = llc_over_training(
        jax.random.key(4),
        model.posterior,
        near_minimum(model, 5, seed=3),
        steps=np.arange(5) * 100,
        **KW,
    )
    dt = res.to_datatree()
    assert dt["sample_stats"]["L_n"].dims == ("checkpoint", "chain", "draw")
    np.testing.assert_array_equal(dt["checkpoints"]["llc"].values, res.llc)
    np.testing.assert_array_equal(dt["checkpoints"]["step"].values, res.steps)
    text = repr(res)
    assert text.startswith("LLCOverTraining") and len(text.splitlines()) < 25
    res.plot(tmp_path / "llc.png")
    assert (tmp_path / "llc.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("checkpoints", "kw", "match"),
    [
        ({"w": jnp.zeros((3, 1, 3))}, {}, "checkpoints must be the stacked"),
        ([jnp.zeros((1, 3))], {}, "leading\\s+checkpoint axis"),
        ([jnp.zeros((3, 1, 4))], {}, "shape \\(3, 1, 4\\)"),
        ([jnp.full((3, 1, 3), jnp.nan)], {}, "NaN"),
        ([jnp.zeros((3, 1, 3))], {"steps": [0, 1]}, "one finite training step"),
        ([jnp.zeros((3, 1, 3))], {"steps": [0, 2, 1]}, "strictly increasing"),
        ([jnp.zeros((3, 1, 3))], {"calibrate_at": 3}, "calibrate_at"),
        ([jnp.zeros((3, 1, 3))], {"refresh": 0.5}, "refresh must be > 1"),
    ],
)
def test_bad_input_names_the_argument(model, checkpoints, kw, match):
    with pytest.raises(ValueError, match=match):
        llc_over_training(
            jax.random.key(0), model.posterior, checkpoints, **{**KW, **kw}
        )
