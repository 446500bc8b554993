"""estimate_llc(resume_file=...): an interrupted exact run continues where it stopped
and gives the numbers of an uninterrupted run; a file of another run is refused."""

import jax
import numpy as np
import pytest

from slt_sampler import estimate_llc
from slt_sampler.workflows import _exact_llc
from slt_sampler.workflows._run_state import RunStore
from slt_sampler.zoo import models as zoo


@pytest.fixture(scope="module")
def regular():
    return zoo.regular(jax.random.key(0), 10, n=5000)


class Killed(Exception):
    """Stands for the process being killed."""


def _killed_after(blocks: int):
    """``_exact_llc._block`` that raises ``Killed`` when asked for block ``blocks + 1``."""
    block, calls = _exact_llc._block, []

    def fake(*args, **kwargs):
        calls.append(kwargs.get("phase"))
        if len(calls) > blocks:
            raise Killed
        return block(*args, **kwargs)

    return fake, calls


def _run(post, path=None, **kw):
    kw = {"num_chains": 4, "progress": False, "gamma_check": (0.5,), **kw}
    return estimate_llc(jax.random.key(3), post, resume_file=path, **kw)


@pytest.fixture(scope="module")
def uninterrupted(regular):
    return _run(regular.posterior)


def _assert_same(a, b):
    np.testing.assert_array_equal(a.losses, b.losses)
    assert a.result.llc == b.result.llc and a.result.llc_sigma == b.result.llc_sigma
    assert a.gamma_sensitivity == b.gamma_sensitivity
    assert (a.settled, a.burn_in, a.step_size) == (b.settled, b.burn_in, b.step_size)
    assert a.tuning == b.tuning


# killed right after the hot start (half the chains just went back to w*), after
# the first cool-down block, inside the warm-up before the preconditioner is set
# (its positions are kept), in production, and in the γ check that follows the run
@pytest.mark.parametrize(
    "blocks",
    [
        _exact_llc.HOT_BLOCKS,
        _exact_llc.HOT_BLOCKS + 1,
        _exact_llc.HOT_BLOCKS + 3,
        _exact_llc.WARM_BLOCKS + 2,
        None,
    ],
)
def test_a_killed_run_resumes_to_the_uninterrupted_numbers(
    regular, uninterrupted, tmp_path, monkeypatch, blocks
):
    path = tmp_path / "run.npz"
    if blocks is None:  # the main run ran through: die in the γ check's second block
        blocks = uninterrupted.num_steps // _exact_llc.BLOCK + 1
    fake, calls = _killed_after(blocks)
    with monkeypatch.context() as m:
        m.setattr(_exact_llc, "_block", fake)
        with pytest.raises(Killed):
            _run(regular.posterior, path)
    assert path.exists() and len(calls) == blocks + 1
    rest, calls = _killed_after(10**6)
    monkeypatch.setattr(_exact_llc, "_block", rest)
    resumed = _run(regular.posterior, path)
    _assert_same(resumed, uninterrupted)
    total = uninterrupted.num_steps // _exact_llc.BLOCK
    gamma_blocks = max(2, (total - uninterrupted.burn_in // _exact_llc.BLOCK) // 4)
    # nothing ran twice, but an unfinished γ check (it is saved per factor)
    assert len(calls) == (total - blocks if blocks < total else 0) + gamma_blocks


def test_a_finished_run_is_read_back_without_sampling(
    regular, uninterrupted, tmp_path, monkeypatch
):
    path = tmp_path / "run.npz"
    _run(regular.posterior, path)
    fake, calls = _killed_after(0)
    monkeypatch.setattr(_exact_llc, "_block", fake)
    _assert_same(_run(regular.posterior, path), uninterrupted)
    assert calls == []


def test_a_restart_at_a_smaller_step_survives_the_interruption(
    regular, tmp_path, monkeypatch
):
    """Killed right after production restarted at half the step: the resumed run
    keeps the halved step and the restart count."""
    block = _exact_llc._block
    seen = []

    def stuck_first_production(*args, **kwargs):
        res = block(*args, **kwargs)
        seen.append(kwargs.get("phase"))
        if seen.count("production") == 1 and kwargs.get("phase") == "production":
            acc = np.asarray(res.stats["acceptance_rate"]).copy()
            acc[0] = 0.1
            res = res._replace(stats={**res.stats, "acceptance_rate": acc})
        return res

    monkeypatch.setattr(_exact_llc, "_block", stuck_first_production)
    ref = _run(regular.posterior, num_steps=300, gamma_check=())
    path = tmp_path / "run.npz"
    cut = seen.index("production") + 1  # the stuck block ran, then the kill
    seen.clear()

    def killed(*args, **kwargs):
        if len(seen) >= cut:
            raise Killed
        return stuck_first_production(*args, **kwargs)

    monkeypatch.setattr(_exact_llc, "_block", killed)
    with pytest.raises(Killed):
        _run(regular.posterior, path, num_steps=300, gamma_check=())
    monkeypatch.setattr(_exact_llc, "_block", stuck_first_production)
    resumed = _run(regular.posterior, path, num_steps=300, gamma_check=())
    assert "production restarted 1×" in ref.tuning
    _assert_same(resumed, ref)


def test_a_file_of_another_run_is_refused_naming_the_difference(regular, tmp_path):
    path = tmp_path / "run.npz"
    _run(regular.posterior, path, num_steps=200, gamma_check=())
    with pytest.raises(ValueError, match=r"resume_file.*num_steps"):
        _run(regular.posterior, path, num_steps=300, gamma_check=())
    # a reporter reads what the saved run spent without being refused (or continuing)
    meta = RunStore.saved_meta(path)
    assert meta["finished"] and all(c > 0 for c in meta["counters"])
    assert RunStore.saved_meta(tmp_path / "none.npz") == {}
    with pytest.raises(ValueError, match=r"resume_file.*key"):
        estimate_llc(
            jax.random.key(4),
            regular.posterior,
            num_chains=4,
            num_steps=200,
            gamma_check=(),
            progress=False,
            resume_file=path,
        )


def test_bad_resume_file_names_the_argument(regular, tmp_path):
    with pytest.raises(ValueError, match="resume_file.*sgld"):
        _run(regular.posterior, tmp_path / "a.npz", sampler="sgld")
    with pytest.raises(ValueError, match="resume_file.*npz"):
        _run(regular.posterior, tmp_path / "a.json")
    with pytest.raises(TypeError, match="resume_file"):
        _run(regular.posterior, 3)
