"""The flagship study resumes row-wise after a truncated results.json (issue 12) and
keeps quick and partial runs from replacing finished rows (issue 9)."""

import importlib.util
import json
from functools import partial
from pathlib import Path

import jax
import pytest

from slt_sampler.workflows import _exact_llc
from slt_sampler.zoo import models as zoo

RUN = Path(__file__).resolve().parents[2] / "studies" / "rlct_known_models" / "run.py"
# with a fixed step size and MALA (no calibration, no end-of-run SGLD probe) a run is
# mostly one compilation
TINY = {"num_steps": 500, "num_chains": 2, "step_size": 2e-6, "gamma_check": ()}


@pytest.fixture
def study(monkeypatch, tmp_path):
    """The study module on a two-model zoo, counting its estimate_llc calls."""
    spec = importlib.util.spec_from_file_location("rlct_known_models_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def tiny_zoo(key):
        k2, k3 = jax.random.split(key)
        return {
            "regular_d2": (partial(zoo.regular, k2, 2), TINY),
            "regular_d3": (partial(zoo.regular, k3, 3), TINY),
        }

    calls = []
    real = module.estimate_llc

    def counting(rng_key, posterior, **kw):
        calls.append(posterior.n)
        return real(rng_key, posterior, **kw)

    monkeypatch.setattr(module, "build_zoo", tiny_zoo)
    monkeypatch.setattr(module, "estimate_llc", counting)
    monkeypatch.setattr(module, "HERE", tmp_path)
    return module, calls


# tiny runs are not converged; estimate_llc says so, rightly
@pytest.mark.filterwarnings(r"ignore:\[(step_size|rhat|ess)\]:RuntimeWarning")
def test_resumes_after_truncated_results(study, tmp_path, monkeypatch):
    module, calls = study
    for plot in ("plot_arviz_trace_rank", "plot_loss_trace"):  # not under test here
        monkeypatch.setattr(module, plot, lambda *args, **kwargs: None)
    out = tmp_path / "run"
    argv = ["--out", str(out), "--sampler", "mala"]
    first = module.main(argv)
    assert [r["model"] for r in first] == ["regular_d2", "regular_d3"]
    assert len(calls) == 2
    path = out / "results.json"
    text = path.read_text()
    cut = text.index('"model": "regular_d3"') + 40  # in the middle of the second row
    path.write_text(text[:cut])

    with pytest.warns(RuntimeWarning, match=r"results\.json.*recovered 1 complete"):
        second = module.main(argv)
    assert len(calls) == 3  # only the second model was recomputed
    assert second[0] == json.loads(json.dumps(first[0]))  # as written, wall time too
    assert [r["model"] for r in second] == ["regular_d2", "regular_d3"]
    assert json.loads(path.read_text()) == json.loads(json.dumps(second))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files


def _fake_run_model(calls):
    def run_model(key, model, overrides, sampler, out):
        calls.append(model.name)
        lam = model.true.lam
        return {
            "model": model.name,
            "d": model.dim,
            "true_lambda": lam,
            "multiplicity": model.true.multiplicity,
            "llc": lam,
            "llc_mcse": 0.1,
            "rel_error": 0.0,
            "sampler": sampler,
            "wall_time": 0.0,
            "steps_per_second": 1.0,
        }

    return run_model


def test_quick_and_partial_runs_keep_full_rows(study, tmp_path, monkeypatch):
    module, _ = study
    calls = []
    monkeypatch.setattr(module, "run_model", _fake_run_model(calls))
    monkeypatch.setattr(module, "plot_llc_vs_truth", lambda *args, **kwargs: None)
    full = module.main(["--models", "regular_d2"])
    out = tmp_path / "out"
    full_path = out / "results.json"
    assert json.loads(full_path.read_text()) == full
    quick = module.main(["--quick", "--models", "regular_d2"])
    assert json.loads((out / "quick" / "results.json").read_text()) == quick
    assert json.loads(full_path.read_text()) == full  # untouched by the quick run
    # a run of another model into the same directory keeps the finished row
    other = module.main(["--models", "regular_d3"])
    assert json.loads(full_path.read_text()) == full + other
    # a quick run pointed at the full run's directory adds its rows beside them
    shared = module.main(["--quick", "--models", "regular_d2", "--out", str(out)])
    assert json.loads(full_path.read_text()) == full + other + shared
    assert len(calls) == 4
    # a rerun recomputes nothing; --fresh recomputes the selected model only
    assert module.main([]) == full + other
    assert len(calls) == 4
    again = module.main(["--fresh", "--models", "regular_d3"])
    assert json.loads(full_path.read_text()) == full + again + shared
    assert len(calls) == 5


def test_unknown_model_is_an_argparse_error(study, capsys):
    module, calls = study
    with pytest.raises(SystemExit):
        module.main(["--models", "regular_d2", "no_such_model"])
    err = capsys.readouterr().err
    assert "no_such_model" in err and "regular_d2" in err and "regular_d3" in err
    assert not calls


def test_rows_of_an_older_exact_sampler_are_rerun(study, monkeypatch):
    """A row computed by an older version of the exact path (its ``METHOD``) is not
    reused: the flagship once showed a 10⁴ DLN of the previous sampler as current."""
    module, _ = study
    calls = []
    monkeypatch.setattr(module, "run_model", _fake_run_model(calls))
    monkeypatch.setattr(module, "plot_llc_vs_truth", lambda *args, **kwargs: None)
    module.main(["--models", "regular_d2"])
    module.main(["--models", "regular_d2"])
    assert len(calls) == 1  # same version: reused
    monkeypatch.setattr(_exact_llc, "METHOD", _exact_llc.METHOD + 1)
    module.main(["--models", "regular_d2"])
    assert len(calls) == 2
