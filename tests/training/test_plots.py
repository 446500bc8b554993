"""The training figures draw theory beside measurement, with titles and labelled axes."""

import numpy as np

from slt_sampler.diagnostics._training_plots import (
    plot_covariance_comparison,
    plot_covariance_error_vs_lr,
    plot_energy_drift,
    plot_energy_histograms,
    plot_llc_sgd_vs_posterior,
)


def _labelled(fig):
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_every_figure_is_written_titled_and_labelled(tmp_path):
    rng = np.random.default_rng(0)
    eye = np.eye(3) * 1e-3
    figs = [
        plot_covariance_comparison(
            eye * 1.02, eye, eye * 0.97, path=tmp_path / "c.png"
        ),
        plot_energy_histograms(
            [
                {
                    "name": "m",
                    "sgd": rng.gamma(2, size=500),
                    "posterior": rng.gamma(2, size=500),
                    "lam": 2.0,
                    "half_dim": 2.0,
                    "gamma_shape": 2.0,
                }
            ],
            path=tmp_path / "h.png",
        ),
        plot_llc_sgd_vs_posterior(
            [
                {
                    "name": "m",
                    "llc_sgd": 5.8,
                    "llc_sgd_se": 0.1,
                    "llc_posterior": 3.4,
                    "llc_posterior_se": 0.1,
                    "lam": 3.5,
                    "dim": 12,
                }
            ],
            path=tmp_path / "l.png",
        ),
        plot_covariance_error_vs_lr(
            [
                {
                    "lr": lr,
                    "cov_rel_error_lyapunov": 0.02,
                    "cov_rel_error_posterior": 0.04,
                    "cov_rel_error_lyapunov_discrete": 0.02,
                    "cov_se": 0.01,
                    "lyapunov_discretisation": lr / 2,
                }
                for lr in (0.01, 0.1)
            ],
            path=tmp_path / "e.png",
        ),
        plot_energy_drift(
            [
                {
                    "name": "q",
                    "steps": np.arange(5),
                    "curves": {"leapfrog": np.ones(5)},
                    "theory": {"Euler": np.arange(5.0)},
                    "band": 1.0,
                }
            ],
            path=tmp_path / "d.png",
        ),
    ]
    for fig in figs:
        _labelled(fig)
        assert fig.legends or any(ax.get_legend() for ax in fig.axes)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c.png",
        "d.png",
        "e.png",
        "h.png",
        "l.png",
    ]
