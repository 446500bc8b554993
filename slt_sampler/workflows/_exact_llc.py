"""The exact path of :func:`~slt_sampler.estimate_llc`: MAMS, warmed up and run in
blocks of one compiled shape, stopped when λ̂'s total error reaches its target.

An exact (Metropolis-adjusted) sampler has no step-size bias, so λ̂'s error is its
Monte-Carlo error plus any drift the run has not outgrown, and a run can stop as soon
as that is small enough. The sampler is MAMS (Robnik, Cohn-Gordon & Seljak 2025,
arXiv:2503.01707; :class:`~slt_sampler.samplers.mams.MAMS`). Its warm-up is done here,
not by BlackJAX's tuner (which compiles a second program and, on the 300-parameter
DLN, took 12-30 s against 0.4 s of sampling): every block, warm-up, production and γ
checks, is a :func:`~slt_sampler.sample` call of ``BLOCK`` steps with the same shapes,
so the whole estimate compiles one sampler, and a second estimate of a model of the
same shapes compiles nothing.

**Mixed starts** (the first ``HOT_BLOCKS`` of the warm-up): chains started at w*
approach λ̂ from below on singular models, for thousands of steps on deep linear
networks, while they spread along the flat directions of the minimum set. The chains
share this transient, so R-hat cannot see it, and runs that stopped after ~1,000 steps
read about one σ_total low (0.5-1.3% on DLNs of 10²-10³ parameters, up to 0.6% at
10⁴, against runs ten times longer). So all chains first run ``HOT_BLOCKS`` blocks at
β/``HOT_FACTOR``, where they spread faster; then the first half go back to w* and only
the second half keep their spread, from which λ̂ falls as they cool. The pooled mean
of the two groups lies between them, and half their excess disagreement enters the
total error as ``bracket`` (:func:`~slt_sampler.estimators.llc.error_budget`), so the
error bar covers the part of the transient neither group has outrun. Measured with
default runs on 12 keys per model against long runs (mean bias in units of σ_total,
the z-scores' spread, and the median wall time against starts at w* on the same
keys): the [8, 6, 5, 7] rank-2 DLN (113 parameters) −1.08σ → −0.20σ (z sd 0.61,
0.92× the time), the [10, 10, 10, 10] rank-3 DLN −1.11σ → −0.88σ (sd 1.10, 0.96×),
the [18, 16, 14, 16, 18] rank-4 DLN (1,024 parameters) −1.20σ → −0.67σ (sd 0.37,
0.76×). The runs are not longer: hot-started chains have already met the stiffer
regions that made runs from w* restart (below). In probes, all eight chains
hot-started read +0.5σ to +0.7σ high, and a hotter start (β/64) or a larger hot step
made the 1,024-parameter runs 3-4.6× longer (R-hat waits for the groups to meet).
Over 30 seeds of the [10, 10, 10, 10] DLN against 20,000-step runs
(benchmarks/llc_calibration.py) the z-scores have mean −0.48 and sd 1.21 with the
cool-down and production's burn-in below (−0.56 and 1.07 without the burn-in, METHOD
11; −0.59 and 1.10 before the search's fallback below, METHOD 9; −0.25
and 0.96 without the cool-down, METHOD 8; −0.03 and 0.75 with it and a
search one block longer, whose extra block made the median answer 1.5× slower),
against −0.89 and 0.87 with every chain at w*.

**Cool-down** (after the hot blocks, before the step search): at β, the hot-started
chains are far above β's typical set and its gradients there are about
``HOT_FACTOR`` times those they saw at β/``HOT_FACTOR``, so a step that suits the
others freezes them. On the 8,100-parameter [50, 45, 40, 45, 50] DLN they rejected
every proposal at ε from 0.0132 to 0.106 (L_n constant for five blocks) while the
chains from w* accepted 0.99 at 0.0264; they moved only at 0.0066. A search that
met them there ended at a step 4-20× below what production could use (on the
87,100-parameter depth-5 DLN at 0.0031, where production accepted 0.977 and could
not grow its step, against 0.011-0.065 before the hot start). So cool-down blocks at
β run every chain at the hot step / ``COOL_FACTOR`` (halved after a block in which
the hot-started chains accept less than ``COOL_MIN_ACCEPTANCE``) until the
hot-started chains' λ̂ stops falling (:func:`_cooled`), at most
``MAX_COOL_BLOCKS``; the step search then starts afresh from ``EPS_GUESS``. On that
8,100-parameter DLN they cooled in two blocks (their λ̂ from 14 times its value to
4% above it), and the search and production ran at 0.0132-0.0187; on the
10,000-parameter [50]*5 DLN in one, and both ran at 0.0155. Not yet on the
87,100-parameter DLN: in two blocks (the second at 0.0031) the hot-started chains'
λ̂ fell from 82,000 to 6,800 and then by only ~1% per quarter block, so they were
judged cooled; the search's first step (0.0248) froze them again (λ̂ constant at
6,659), and in the block after the preconditioner the chains from w* accepted
0.56-0.73 of 0.0062, so the search ended at 0.0031, a quarter of the step the
chains keep near equilibrium (about 0.0124, the least accepting chain near 0.5).
Continued by hand, the hot-started chains stayed at λ̂ ≈ 6,000-6,100 for 2,500
steps, while the chains from w* rose from 5,300 to about 5,950 over 2,000 steps at
0.0124-0.0248 (faster at the larger step until they too reached stiffer regions);
the groups then stayed about 1.3% apart (no chain crossed), which the bracket
covers.

**Warm-up** (discarded, ``WARM_BLOCKS`` blocks, the hot ones and one cool-down block
included): ε is found by bisection in log ε on the acceptance rate, towards 0.9
(:class:`_StepSearch`; acceptance falls off a cliff near the integrator's stability
limit, so a smooth model of it overshoots). The first search block follows the
cool-down, whose chains from w* have left w*; without a cool-down (one chain) it is
measured near w*, flatter than where the chains go, and counts only if its step was
rejected (a step too large near w* is too large further out). The positions of the
next blocks set a diagonal preconditioner (their variance, normalised to keep ε's
scale); the search keeps its bracket across it (forgetting it made the search on the
[50]*5 DLN re-test a smaller step and production grow into a rejected one, three
blocks lost), or re-tests its last good step. The search ends at the largest step
that met the target; if none did, at its last tested step when production would keep
that one (:func:`step_too_large` false: mean acceptance at least ``MIN_ACCEPTANCE``,
no chain below ``MIN_CHAIN_ACCEPTANCE``), else at half of it, untested. On the
87,100-parameter depth-5 DLN no search block met the target (0.0248, then 0.0124 at
a mean near 0.86, then 0.0062 after the preconditioner at about 0.8, the chains from
w* at 0.56-0.73 in that one block), and the untested half, 0.0031, was accepted
0.977 by production, too high to fail and too low to grow (``MAX_ACCEPTANCE``),
while the chains keep about 0.0124 near equilibrium. With the fallback (METHOD 10)
production began at 0.0062, its chains from w* accepted 0.53-0.65, and it halved to
0.0031: those rejections were float32 rounding in MAMS's kinetic energy, not the
chains' stiffness (:mod:`~slt_sampler.samplers.mams`, "Rounding"; METHOD 11 computes
it without cancellation, and from the same positions they accepted 0.99-1.00 at
0.0062). On the small models of
benchmarks/llc_calibration.py (30 seeds each) the fallback ended the search on 8
regular and 1 DLN seed, at the step production used to grow back to (the same final
step; z-scores −0.29 and 1.03 on the regular model, −0.31 and 0.94 before).
Trajectories are
``INTEGRATION_STEPS`` integrator steps long on average up to ``D_REF`` parameters and
grow as √d above, faster above ``D_KNEE``, to at most ``MAX_INTEGRATION_STEPS``
(:func:`_integration_steps`:
larger networks have flatter, slower directions, along which short trajectories only
diffuse).

**Production**: if a block's mean acceptance falls below ``MIN_ACCEPTANCE``, or one
chain's below ``MIN_CHAIN_ACCEPTANCE`` (the chains reached regions stiffer than the
warm-up saw), ε is halved and production restarts, what ran counting as warm-up. On
deep linear networks the chains spread along the minimum set for hundreds of steps
after the warm-up, into regions where the warm-up's step is rejected more and more
often; a chain that rejects stays where it is, so those regions are under-sampled and
λ̂ reads low while the acceptance falls (the exact law is reached, but slowly). On the
8,100-parameter [50, 45, 40, 45, 50] rank-5 DLN the block acceptance fell 0.95, 0.89,
0.76, ... 0.45 over 900 production steps at the warm-up's ε, with λ̂ by block
756.9-761.8; after the halving it stayed at 0.97-0.99 and λ̂ read 760.4-768.1 (mean
763). With a restart only below a mean of 0.5 the default run stopped after 400 of
those early steps at 760.1 ± 0.8, 2.6 below a rerun of twice its length.
The other way, until a production block is kept, a block whose mean acceptance is at
least ``MAX_ACCEPTANCE`` (and no chain below ``MIN_GROW_CHAIN_ACCEPTANCE``) grows ε
towards the target (:func:`step_too_small`), at most ``MAX_GROWS`` times and never
past the geometric mean with a step that restarted smaller; production restarts the
same way (the search can end below the step production can use). Growth only at
the start, and only
from a step that nearly everything accepts: on the [10, 10, 10, 10] DLN (30 seeds
against 20,000-step runs) growing from a mean of 0.97 whenever it came gave z-scores
of sd 1.34 (1.20 at the start only; 1.01 without growth), as runs grew into steps
at which single chains accepted 0.3-0.5 of their proposals; from 0.99 (no chain
below 0.98) at the start only, 0.99.

Blocks continue the chains until split-R-hat < 1.02 and the bulk ESS is at least 200
(below ~100 the MCSE itself is unreliable), both judged within each group of starts
(:func:`~slt_sampler.estimators.llc.group_convergence`: the larger R-hat, the summed
ESS; the gap between the groups is the bracket term, and waiting for the groups to
meet held the 10⁴-parameter DLNs for thousands of steps at R-hat 1.2-1.5; a group
still approaching the other from its side, every chain moving towards it and the gap
shrinking (:func:`~slt_sampler.estimators.llc.approaching`), is judged by the
unsplit R-hat, which a trend its chains share does not raise: on the
87,100-parameter depth-5 DLN the chains from w* all still rose by about 1% of λ̂
between the halves of 600-1,100 kept steps while the groups were 3-4% apart, so
split-R-hat within that group stayed at 1.04-1.14 for thousands of steps after the
total error, the bracket included, was 3%, while its unsplit R-hat was
1.000-1.005), and the total error
``sqrt(MCSE² + drift² + bracket²)``
(:func:`~slt_sampler.estimators.llc.error_budget`) is at most ``target_rel_error`` of
|λ̂| (the drift term grows when the two halves of the trace disagree, so a drifting
run does not stop), or ``max_steps`` is reached.

**Burn-in of production** (:func:`burn_blocks`): these criteria, λ̂ and its errors
are computed on production with its first blocks discarded by MSER truncation
(White 1997) applied to each group's block means, at most half of production. The
warm-up ends on a schedule, not when the chains have arrived: on the
87,100-parameter depth-5 DLN the chains from w* were still rising by 0.3-0.5% of λ̂
per block (5,541 to 5,732 over ten blocks) and the hot-started ones falling by
0.1-0.3%, so with every production block kept split-R-hat stayed at 1.11-1.26, and
the early blocks held the total error above 3% (4.6% to 3.8%) until diluted by many
more; discarding what MSER truncated (4-6 of the first 8-12 blocks), the same
blocks gave 3.3% to 2.7% and R-hat 1.05-1.08. A stationary trace loses little
(MSER's minimum then falls at a random early block: 13% of the blocks of white
noise on average). Runs that stop at their first check (4 blocks) are unchanged; on
the [10, 10, 10, 10] DLN's 30 calibration seeds (above) 11 runs discarded blocks
and the median run took 1.56 s against 1.62 s.
"""

from __future__ import annotations

import math
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..estimators.llc import approaching, error_budget, group_convergence, llc
from ..samplers.calibrate import max_curvature
from ..samplers.mams import MAMS
from ..samplers.run import _progress, broadcast_chains, sample
from ._run_state import RunStore

BLOCK = 100  # MAMS steps per block: every block of an estimate has this shape
KEEP = 10  # positions kept per chain per block (for the preconditioner)
TARGET_ACCEPTANCE = 0.9
# the first step tried, in units of the narrowest width 1/sqrt(max curvature at w*):
# the tuned steps of the study's DLNs (113 to 82,500 parameters) were 1.4-5.8 of it
# (0.5·sqrt(d) of it before, 16-36× too large at 10⁴-10⁵ parameters, which cost
# warm-up blocks of near-zero acceptance). Too small for some: on the [60, 50, 50, 60]
# DLN and the digits MLP the search, doubling once per block, ended at acceptance 1.00
# (ε 0.0245 where METHOD 6 tuned 0.056), so those runs take more steps than needed
EPS_GUESS = 2.5
HOT_BLOCKS = 2  # first warm-up blocks, at β / HOT_FACTOR (module docstring)
HOT_FACTOR = 16.0
HOT_EPS_GUESS = 10.0  # the hot blocks' first step, in units of 1/sqrt(ρ) like EPS_GUESS
# then cool-down blocks at β (module docstring) at the hot step / COOL_FACTOR, halved
# while the hot-started chains accept less than COOL_MIN_ACCEPTANCE, until their λ̂
# falls by at most COOL_TOL of itself (plus noise) over a block (_cooled; at most
# MAX_COOL_BLOCKS blocks)
COOL_FACTOR = 8.0
COOL_MIN_ACCEPTANCE = 0.5
COOL_TOL = 0.1
MAX_COOL_BLOCKS = 4
# after the hot blocks (counted from the first block after them):
STEP_BLOCKS = 1  # ε-only blocks before the preconditioner is measured
PRECONDITION_AFTER = 3  # blocks whose positions set the preconditioner (the last 2)
WARM_BLOCKS = 6  # warm-up blocks: the hot ones, one cool-down block or the first
# search block (no cool-down with one chain), and the rest of the search
MIN_ACCEPTANCE = 0.8  # a production block below this mean acceptance halves ε and
MIN_CHAIN_ACCEPTANCE = 0.5  # so does one whose least accepting chain is below this;
MAX_RESTARTS = 4  # production then restarts (at most this many times)
RESTART_FACTOR = 0.5  # ε's factor at a restart
MAX_ACCEPTANCE = 0.99  # a production block at or above this mean acceptance, and
MIN_GROW_CHAIN_ACCEPTANCE = 0.98  # no chain below this, grows ε (step_too_small)
MAX_GROWS = 3  # at most this many times, only before a production block was kept
MAX_GROW_FACTOR = 2.0  # and never past the geometric mean with a step that
GROW_AT_LEAST = 1.1  # restarted smaller; production then restarts like a halving
MIN_BLOCKS = 4  # production blocks before the first stopping check
# average integrator steps per proposal (Halton-varied lengths): INTEGRATION_STEPS up
# to D_REF parameters, growing as sqrt(d / D_REF) to D_KNEE and as d^GROWTH above, at
# most MAX_INTEGRATION_STEPS (_integration_steps)
INTEGRATION_STEPS = 4.0
D_REF = 75
D_KNEE = 300
GROWTH = 0.71
MAX_INTEGRATION_STEPS = 128.0
RHAT_MAX = 1.02  # split-R-hat of the L_n trace needed to stop
MIN_ESS = 200  # and its bulk ESS (the MCSE itself is unreliable below ~100)
# chains are sharded over several devices only from this many parameters: on 2 CPU
# devices, default runs of DLNs took 2.2×, 1.4× and 0.9× as long per step sharded as
# on one device at 113, 300 and 864 parameters, and 0.66× at 1,024
SHARD_MIN_PARAMS = 1000
SHOW_AFTER = 2.0  # seconds per block above which a terminal shows a progress bar
BAR_INTERVAL = 0.5  # least seconds between the bar's redraws
METHOD = 13  # raised when the path's algorithm changes (2: trajectories grow with d;
# 3: from 75 parameters instead of 300, so twice as long above 300; 4: every chain
# takes the same, Halton-varied, trajectory length at each step; 5: trajectories grow
# as d^0.71 above 300 parameters, to at most 128 steps instead of 32; 6: production
# restarts at a smaller step when a block's mean acceptance is below 0.8 or one chain's
# below 0.5, instead of only a mean below 0.5; 7: half the chains start from a hot
# spread, the other half at w*, with 4 warm-up blocks after the 2 hot ones instead
# of 6, and their disagreement in the total error; the first step 2.5/sqrt(ρ), not
# 0.5·sqrt(d/ρ); 8: R-hat and ESS judged within each group of starts, production
# restarts at a larger step when a block accepts nearly everything, the hot blocks
# only shrink ε; 9: the hot-started chains cool down at β at a small step before
# the step search; 10: a search whose tested steps all missed the target ends at the
# last one if production would keep it, not at its untested half; 11: MAMS's
# kinetic-energy change computed without float32 cancellation, samplers.mams; 12:
# production's first blocks are discarded while the L_n trace trends there, MSER;
# 13: a group of starts still approaching the other is judged by unsplit R-hat)


class ExactRun(NamedTuple):
    """What the exact path measured (``trace``: warm-up and production L_n)."""

    sampler: MAMS
    trace: np.ndarray
    warmup_steps: int
    final_position: object
    settled: bool
    compile_seconds: float
    run_seconds: float
    tuning: str
    stuck_blocks: int = 0  # production blocks of too low acceptance after the restarts
    dispersed: np.ndarray | None = None  # (chain,) True for the hot-started chains
    cool_blocks: int = 0  # warm-up blocks in which the hot-started chains cooled
    burn_in: int = 0  # steps discarded: the warm-up and production's first blocks


def _num_params(w) -> int:
    return int(ravel_pytree(w)[0].size)


def _log_interval() -> float:
    """``workflows.llc.LOG_INTERVAL``, read when used (that module imports this one)."""
    from . import llc

    return llc.LOG_INTERVAL


class _Progress:
    """A tqdm bar of the exact run's steps (warm-up, production, γ checks). With
    ``show=None`` it appears once a block takes longer than ``SHOW_AFTER`` seconds, so
    the runs of small models print nothing; when stderr is not a terminal (a long run
    logged to a file) it is a plain line at most every ``LOG_INTERVAL`` seconds
    (:mod:`slt_sampler.workflows.llc`'s, one setting for every sampler's lines)."""

    def __init__(self, show: bool | None):
        self.show, self.bar, self.done = show, None, 0
        self.log_at = None  # perf_counter of the last plain line, once logging
        self.postfix: dict = {}

    def update(self, seconds: float, **postfix) -> None:
        self.done += BLOCK
        self.postfix = dict(postfix)  # this block's status: no stale warm-up ε
        if self.bar is None and self.log_at is None:
            if not (self.show or (self.show is None and seconds > SHOW_AFTER)):
                return
            if self.show or sys.stderr.isatty():
                self.bar = _progress(None, MAMS, True, BAR_INTERVAL)
            else:
                self.log_at = -math.inf
        if self.bar is not None:
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(self.done - self.bar.n)
        elif time.perf_counter() - self.log_at >= _log_interval():
            self.log_at = time.perf_counter()
            items = ", ".join(f"{k}={v}" for k, v in self.postfix.items())
            print(f"MAMS: {self.done} steps, {items}", file=sys.stderr, flush=True)

    def note(self, **postfix) -> None:
        """Show ``postfix`` now (the stopping check's λ̂ after a block)."""
        self.postfix.update(postfix)
        if self.bar is not None:
            self.bar.set_postfix(postfix)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _max_devices(start) -> int | None:
    """One device below ``SHARD_MIN_PARAMS`` parameters per chain, else all."""
    per_chain = sum(int(np.prod(x.shape[1:])) for x in jax.tree.leaves(start))
    return 1 if per_chain < SHARD_MIN_PARAMS else None


def _block(key, smp, posterior, start, num_chains, counters, progress=None, **what):
    t0 = time.perf_counter()
    res = sample(
        key,
        smp,
        posterior,
        start,
        num_chains=num_chains,
        num_steps=BLOCK,
        thinning=BLOCK // KEEP,
        keep_positions=True,
        progress=False,
        chains_axis=True,
        max_devices=_max_devices(start),
    )
    counters[0] += res.compile_seconds
    counters[1] += res.run_seconds
    if progress is not None:
        acc = float(np.mean(res.stats["acceptance_rate"]))
        progress.update(time.perf_counter() - t0, **what, acceptance=f"{acc:.2f}")
    return res


def _finite(res) -> bool:
    return bool(np.all(np.isfinite(res.losses)))


class _StepSearch:
    """Bisection in log ε on the acceptance rate: ``lo`` the largest step seen with
    acceptance ≥ the target, ``hi`` the smallest below it. Acceptance falls off a
    cliff near the integrator's stability limit (on the 300-parameter DLN: 0.98 at
    ε = 0.15, 0.11 at 0.21, 0.004 at 0.29), so a smooth model of it overshoots."""

    def __init__(self, eps: float):
        self.eps, self.lo, self.hi = eps, None, None

    def update(self, acceptance: float) -> None:
        if acceptance >= TARGET_ACCEPTANCE:
            self.lo = self.eps if self.lo is None else max(self.lo, self.eps)
        else:
            self.hi = self.eps if self.hi is None else min(self.hi, self.eps)
        if self.hi is None:
            self.eps *= 2.0
        elif self.lo is None:
            self.eps *= 0.5 if acceptance > 0.3 else 0.25
        else:
            self.eps = math.sqrt(self.lo * self.hi)

    def forget_good(self) -> None:
        """Drop the good end of the bracket, keep the rest (a step accepted where
        the chains were flatter than where they go)."""
        self.lo = None

    def restart(self) -> None:
        """A new metric (normalised to keep ε's scale): keep a bracket and its
        midpoint; with only a good step, try it again rather than its double."""
        if self.hi is None:
            self.eps = self.lo if self.lo is not None else self.eps
            self.lo = None

    @property
    def best(self) -> float:
        return self.lo if self.lo is not None else self.eps


def burn_blocks(blocks, dispersed) -> int:
    """How many of production's first blocks to discard: MSER (White 1997, *Simulation*
    69:323) on the block means of L_n within each group of starts (the chains from w*
    and the ``dispersed`` ones; all chains when one group is empty), the larger of the
    groups' truncations. For the block means ``y_k, …, y_{m−1}`` kept after discarding
    ``k`` blocks, MSER is ``Σ (y_j − ȳ)² / (m − k)²``, minimised over ``k`` up to half
    the blocks (the statistic is unreliable near the end of the series; Franklin &
    White 2008, Proc. Winter Simulation Conference) and leaving at least
    ``MIN_BLOCKS``. ``blocks`` is a list of (chain, step) L_n arrays."""
    m = len(blocks)
    k_max = min(m // 2, m - MIN_BLOCKS)
    if k_max <= 0:
        return 0
    means = np.stack([np.asarray(b, dtype=np.float64).mean(axis=1) for b in blocks])
    mask = np.asarray(dispersed, dtype=bool)
    groups = [g for g in (~mask, mask) if g.any()]
    k = 0
    for g in groups:
        y = means[:, g].mean(axis=1)
        mser = [
            np.sum((y[j:] - y[j:].mean()) ** 2) / (m - j) ** 2 for j in range(k_max + 1)
        ]
        k = max(k, int(np.argmin(mser)))
    return k


def _hot_acceptance(res, dispersed) -> float:
    """The mean acceptance rate of the ``dispersed`` chains over a block."""
    return float(np.mean(np.asarray(res.stats["acceptance_rate"])[dispersed]))


def _cooled(res, dispersed, n_beta, init_loss) -> bool:
    """Whether the hot-started (``dispersed``) chains have cooled down: they accept
    at least ``COOL_MIN_ACCEPTANCE``, and their λ̂ (``nβ(L_n − L_n(w*))``, averaged
    over the k of them) fell from the block's third quarter to its last by at most
    ``COOL_TOL`` of its last-quarter value plus ``2·sqrt(λ̂/k)``, a noise floor: at
    equilibrium the standard deviation of nβ L_n is about sqrt(λ) (exactly so on a
    regular model, where nβ(L_n − L_n(w*)) is nearly Gamma(λ, 1)), so the mean of k
    chains over any stretch is uncertain by at most sqrt(λ/k). Started at
    β/``HOT_FACTOR``, the chains begin at about ``HOT_FACTOR`` times the λ̂ of β; the
    first half of the block is left to that fall (small models cool within it)."""
    if _hot_acceptance(res, dispersed) < COOL_MIN_ACCEPTANCE:
        return False
    losses = n_beta * (np.asarray(res.losses, dtype=float)[dispersed] - init_loss)
    q = BLOCK // 4
    first, second = losses[:, 2 * q : 3 * q], losses[:, 3 * q :]
    fall = float(np.mean(first) - np.mean(second))
    lam = abs(float(np.mean(second)))
    return fall <= COOL_TOL * lam + 2.0 * math.sqrt(lam / len(losses))


def _cool_extra(cool_blocks: int) -> int:
    """Warm-up blocks a cool-down of ``cool_blocks`` blocks adds: its first takes the
    place of the first search block."""
    return max(0, cool_blocks - 1)


def _cool_note(blocks: int, eps: float | None) -> str:
    """The tuning text of the cool-down (nothing without one)."""
    if not blocks:
        return ""
    return (
        f" and the others cooled down at β over {blocks * BLOCK} steps (ε ending at "
        f"{eps:.3g})"
    )


def _integration_steps(d: int) -> float:
    """Average integrator steps per proposal for ``d`` parameters:
    ``INTEGRATION_STEPS · sqrt(d / D_REF)`` up to ``D_KNEE`` parameters, growing as
    ``d^GROWTH`` above, at most ``MAX_INTEGRATION_STEPS``.

    Why it grows: a deep linear network's localised posterior has flat directions
    (its symmetries) whose spread the chains, started at w*, reach only slowly, and
    λ̂ creeps up with them; short trajectories move along them diffusively. Measured
    on the 8,500-parameter [60, 50, 50, 60] rank-10 DLN (8 chains from w*, equal
    gradient budget): at 4 steps per proposal λ̂ crept from 1201 to 1209 over 3,200
    steps (a run twice as long read 1217.6, 7 reported σ away); at 16 and 64 steps it
    read 1217 and 1220 from the first production block. On the 300-parameter
    [10, 10, 10, 10] DLN effective samples of L_n per gradient peak at about 8 steps
    (5.6, 8.6, 4.6, 3.9 per 1000 gradients at 4, 8, 16, 32) and λ̂ does not creep.
    The MAMS scaling for a well-conditioned target is d^(1/4) (ε ∝ d^(-1/4) at a
    fixed trajectory length); the conditioning of the flat directions worsens with
    size and needs more (d^(1/4) gave 9 steps and λ̂ 1212-1213 on the DLN above).

    Why ``d^0.71`` above 300 parameters: it passes through the two measured points,
    8 steps at 300 parameters and 83 at 8,100, where fewer still creep. On the
    8,100-parameter depth-4 [50, 45, 40, 45, 50] rank-5 DLN (8 chains, fixed runs,
    per-100-step block means of λ̂): at 32 steps λ̂ rose from about 755 in the
    warm-up to 759.0-759.7 over 4,000 steps (3 seeds; ESS and R-hat passed after
    1,000, where runs stopped reading 754-756); at 42 steps (√d growth uncapped) one
    run read 758.7 after 2,300 steps; at 83 steps the blocks reached 760-765 by
    step 500 and two runs read 762.4 ± 0.5 and 761.3 ± 0.9. The price is per step
    (2.6× the 32-step cost there). The creep is smaller, not gone: with the restart rule
    (module docstring) the depth-3 and depth-6 10^4 DLNs of studies/llc_at_scale read
    0.2% and 0.6% below reruns of twice the length (2.6 and 3.5 σ_total).
    Earlier, growth from 75 parameters rather than 300 (√d both) had moved the
    864-parameter depth-6 [14, 12, 12, 10, 12, 12, 14] rank-1 DLN from 47.9-49.0
    over 8 seeds to 49.0-49.2 over 4 (a 17,700-step run reads 49.8). Models below
    75 parameters (no slow flat directions measured there) keep 4 steps and their
    cost."""
    steps = INTEGRATION_STEPS * math.sqrt(max(1.0, min(d, D_KNEE) / D_REF))
    steps *= max(1.0, d / D_KNEE) ** GROWTH
    return min(steps, MAX_INTEGRATION_STEPS)


def step_too_large(acceptance) -> bool:
    """Whether a production block's acceptance rates (one per chain) call for a
    smaller step: their mean below ``MIN_ACCEPTANCE`` or any below
    ``MIN_CHAIN_ACCEPTANCE`` (a chain stuck where the step is rejected)."""
    acc = np.asarray(acceptance, dtype=float)
    return bool(acc.mean() < MIN_ACCEPTANCE or acc.min() < MIN_CHAIN_ACCEPTANCE)


def step_too_small(acceptance) -> float:
    """The factor by which to grow ε after a production block with these acceptance
    rates (one per chain), 1.0 to keep it: their mean at least ``MAX_ACCEPTANCE`` and
    none below ``MIN_GROW_CHAIN_ACCEPTANCE``. The rejection rate of a
    Metropolis-adjusted integrator grows about as ε² at small ε (its energy error's
    standard deviation does), so the factor aims at the target rejection rate:
    ``sqrt((1 − TARGET_ACCEPTANCE) / (1 − mean))``, at most ``MAX_GROW_FACTOR``."""
    acc = np.asarray(acceptance, dtype=float)
    mean = float(acc.mean())
    if mean < MAX_ACCEPTANCE or acc.min() < MIN_GROW_CHAIN_ACCEPTANCE:
        return 1.0
    factor = math.sqrt((1 - TARGET_ACCEPTANCE) / max(1 - mean, 1e-12))
    return float(min(MAX_GROW_FACTOR, max(1.0, factor)))


def _mams(eps, imm, dtype) -> MAMS:
    """MAMS at step ``eps`` with diagonal preconditioner ``imm`` (one entry per
    parameter, which also sets the trajectory length)."""
    steps = _integration_steps(int(np.size(imm)))
    return MAMS(jnp.asarray(eps, dtype), jnp.asarray(steps, dtype), imm)


def run_mams(
    rng_key,
    posterior,
    w_star,
    *,
    num_chains: int,
    num_steps: int | None,
    max_steps: int,
    target_rel_error: float,
    init_loss: float,
    raise_if_nan,
    progress: _Progress | None = None,
    store: RunStore | None = None,
) -> ExactRun:
    """Warm up MAMS at ``w_star`` and run it (module docstring). ``num_steps`` fixes
    the production length (rounded up to whole blocks); ``None`` stops adaptively.
    ``raise_if_nan(res, sampler)`` is called on a block whose losses are not finite;
    ``progress`` (a :class:`_Progress`) is told of every block. With a ``store`` (a
    :class:`~slt_sampler.workflows._run_state.RunStore`) the state is saved after
    every block and a saved state is continued: the blocks that follow are the same
    as an uninterrupted run's (same keys, same starting positions)."""
    counters = [0.0, 0.0]
    d = _num_params(w_star)
    k_h, k_run = jax.random.split(rng_key)
    rho = abs(max_curvature(k_h, posterior, w_star))  # compiled by the minimum check
    dtype = jnp.result_type(posterior.beta)
    unravel = ravel_pytree(w_star)[1]
    eps0 = EPS_GUESS / math.sqrt(max(rho, 1e-30))  # EPS_GUESS · σ_min
    search = _StepSearch(HOT_EPS_GUESS / math.sqrt(max(rho, 1e-30)))
    hot = posterior.replace(beta=posterior.beta / HOT_FACTOR)
    imm = jnp.ones(d, dtype)
    start = broadcast_chains(w_star, num_chains)
    # the last half start from the hot spread, the others at w* (one chain: at w*)
    dispersed = np.arange(num_chains) >= num_chains - num_chains // 2
    fixed = None if num_steps is None else max(1, math.ceil(num_steps / BLOCK))
    budget = fixed or max(MIN_BLOCKS, max_steps // BLOCK)
    # everything a continued run needs (the state saved after every block)
    s = {
        "blocks": 0,  # blocks run (the key of the next one is fold_in(k_run, blocks))
        "warm_blocks": 0,  # warm-up blocks done (the cool-down's included)
        "cooling": False,  # whether the hot-started chains are cooling down
        "cool_eps": None,  # the cool-down's step
        "cool_blocks": 0,  # cool-down blocks done
        "search": [search.eps, search.lo, search.hi],
        "eps": None,  # production step, once production began
        "restarts": 0,
        "grows": 0,  # production blocks after which ε grew (step_too_small)
        "too_large": None,  # the smallest production ε that restarted smaller
        "kept": False,  # whether a production block was kept (ε then only shrinks)
        "stuck": 0,
        "kept_step": None,  # [ε, mean acceptance] of the last search block, if
        # production would have kept that step (step_too_large false)
        "ended_below_target": None,  # that acceptance, if the search ended there
        "status": {"phase": "production"},
        "settled": fixed is not None,
        "finished": False,
        "counters": counters,
    }
    warm, kept, prod, acc = [], [], [], []

    def save():
        if store is None:
            return
        s["search"] = [search.eps, search.lo, search.hi]
        arrays = {
            "start": jax.vmap(lambda w: ravel_pytree(w)[0])(start),
            "imm": imm,
            "warm": np.concatenate(warm, axis=1),
            "prod": np.concatenate(prod, axis=1) if prod else np.zeros((0,)),
            "acc": np.asarray(acc, dtype=float),
        }
        if kept:
            arrays["kept"] = np.stack(kept)
        store.save(s, arrays)

    if store is not None and store.load():
        s.update(store.meta)
        counters[:] = s["counters"]
        s["counters"] = counters
        a = store.arrays
        search.eps, search.lo, search.hi = s["search"]
        imm = jnp.asarray(a["imm"], dtype)
        start = jax.vmap(unravel)(jnp.asarray(a["start"]))
        warm = list(np.split(a["warm"], a["warm"].shape[1] // BLOCK, axis=1))
        if s["eps"] is not None and a["prod"].size:
            prod = list(np.split(a["prod"], a["prod"].shape[1] // BLOCK, axis=1))
        acc = [float(x) for x in a["acc"]]
        kept = [jnp.asarray(k) for k in a["kept"]] if "kept" in a else []
        if progress is not None:
            progress.done = s["blocks"] * BLOCK

    def next_key():
        s["blocks"] += 1
        return jax.random.fold_in(k_run, s["blocks"] - 1)

    spread = jnp.asarray(dispersed)
    n_beta = float(posterior.n) * float(posterior.beta)
    # a cool-down takes the place of the first search block (c = 0 below), whose
    # chains from w* it has already moved on
    while s["warm_blocks"] < WARM_BLOCKS + _cool_extra(s["cool_blocks"]):
        b = s["warm_blocks"]
        cooling = s["cooling"]
        eps = s["cool_eps"] if cooling else search.eps
        smp = _mams(eps, imm, dtype)
        if b < HOT_BLOCKS:
            phase = "warm-up (hot start)"
        else:
            phase = "warm-up (cool-down)" if cooling else "warm-up"
        res = _block(
            next_key(),
            smp,
            hot if b < HOT_BLOCKS else posterior,
            start,
            num_chains,
            counters,
            progress,
            phase=phase,
            eps=f"{eps:.3g}",
        )
        if not _finite(res):
            raise_if_nan(res, smp)
        warm.append(res.losses)
        start = res.final_state.position
        s["warm_blocks"] = b + 1
        if cooling:
            s["cool_blocks"] += 1
            s["cooling"] = not _cooled(res, dispersed, n_beta, init_loss)
            if s["cool_blocks"] >= MAX_COOL_BLOCKS:
                s["cooling"] = False
            elif _hot_acceptance(res, dispersed) < COOL_MIN_ACCEPTANCE:
                s["cool_eps"] *= 0.5
            save()
            continue
        accepted = float(np.mean(res.stats["acceptance_rate"]))
        if b >= HOT_BLOCKS or accepted < TARGET_ACCEPTANCE:
            # the hot blocks only shrink ε: doubling a good step there ran into the
            # integrator's stability cliff (acceptance 0.98, then 0.00 at twice the
            # step on the 10,000-parameter DLN), and the chains spread in neither
            search.update(accepted)
        if b >= HOT_BLOCKS:  # a step production would keep (the search's fallback)
            per_chain = np.mean(res.stats["acceptance_rate"], axis=1)
            s["kept_step"] = None if step_too_large(per_chain) else [eps, accepted]
        if b == HOT_BLOCKS - 1:  # the first half back to w*, a search at β
            start = jax.tree.map(
                lambda x, c: jnp.where(
                    spread.reshape((-1,) + (1,) * (x.ndim - 1)), x, c
                ),
                start,
                broadcast_chains(w_star, num_chains),
            )
            if dispersed.any():  # the hot-started chains cool down first
                s["cooling"], s["cool_eps"] = True, search.best / COOL_FACTOR
            search = _StepSearch(eps0)
            save()
            continue
        # search blocks since the hot ones, a cool-down counting as the first (c = 0)
        c = b - HOT_BLOCKS - _cool_extra(s["cool_blocks"])
        if c == 0:  # measured half near w*, which is flatter than the typical set:
            search.forget_good()  # a step rejected there is still too large
        if STEP_BLOCKS <= c < PRECONDITION_AFTER:
            kept.append(jax.vmap(jax.vmap(lambda w: ravel_pytree(w)[0]))(res.positions))
        if c == PRECONDITION_AFTER - 1:
            flat = jnp.concatenate(kept, axis=1).reshape(-1, d)
            var = jnp.var(flat, axis=0)
            var = jnp.where(var > 0, var, jnp.mean(var))
            imm = (var / jnp.mean(var)).astype(dtype)  # ε keeps its scale on average
            search.restart()
            kept = []
        save()
    if s["eps"] is None:
        s["eps"] = search.best
        if search.lo is None and s["kept_step"] is not None:
            # no tested step met the target (since the last reset), but the last
            # one passes production's test: end there, not at an untested half
            s["eps"], s["ended_below_target"] = s["kept_step"][0], s["kept_step"][1]
    smp = _mams(s["eps"], imm, dtype)
    beta = float(posterior.beta)
    while not s["finished"] and len(prod) < budget:
        res = _block(
            next_key(),
            smp,
            posterior,
            start,
            num_chains,
            counters,
            progress,
            **s["status"],
            eps=f"{s['eps']:.3g}",
        )
        if not _finite(res):
            raise_if_nan(res, smp)
        start = res.final_state.position
        per_chain = np.mean(res.stats["acceptance_rate"], axis=1)
        too_large = step_too_large(per_chain)
        grown = s["eps"] * step_too_small(per_chain)
        if s["too_large"] is not None:  # never past a step that was too large
            grown = min(grown, math.sqrt(s["eps"] * s["too_large"]))
        if (
            grown > GROW_AT_LEAST * s["eps"]
            and s["grows"] < MAX_GROWS
            and not s["kept"]
        ):
            # the warm-up's step was tuned among chains still far from where they
            # settle (the hot-started ones): a larger step, what ran as warm-up
            warm += prod + [res.losses]
            prod, acc = [], []
            s["eps"] = grown
            s["grows"] += 1
            smp = _mams(s["eps"], imm, dtype)
            s["status"] = {"phase": "production (restarted at a larger ε)"}
            save()
            continue
        if too_large and s["restarts"] < MAX_RESTARTS:
            # the chains reached stiffer regions than the warm-up saw: a smaller
            # step, and what ran so far counts as warm-up
            warm += prod + [res.losses]
            prod, acc = [], []
            s["too_large"] = min(s["eps"], s["too_large"] or math.inf)
            s["eps"] *= RESTART_FACTOR
            s["restarts"] += 1
            smp = _mams(s["eps"], imm, dtype)
            s["status"] = {"phase": "production (restarted at a smaller ε)"}
            save()
            continue
        s["stuck"] += too_large
        s["kept"] = True
        prod.append(res.losses)
        acc.append(float(np.mean(per_chain)))
        if fixed is None and len(prod) >= MIN_BLOCKS:
            k = burn_blocks(prod, dispersed)
            trace = np.concatenate(prod[k:], axis=1)
            done, s["status"] = _done(
                trace, init_loss, posterior.n, beta, target_rel_error, dispersed
            )
            if k:
                s["status"]["burn-in"] = f"+{k * BLOCK}"
            if progress is not None:
                progress.note(**s["status"])
            if done:
                s["settled"] = s["finished"] = True
        save()
    s["finished"] = True
    save()
    eps, restarts, grows = s["eps"], s["restarts"], s["grows"]
    warmup_steps = sum(x.shape[1] for x in warm)
    burned = burn_blocks(prod, dispersed)
    hot = int(dispersed.sum())
    tuning = (
        f"MAMS warmed up over {warmup_steps} steps (the first {HOT_BLOCKS * BLOCK} at "
        f"β/{HOT_FACTOR:g}, after which {num_chains - hot} of the {num_chains} chains "
        f"went back to w*{_cool_note(s['cool_blocks'], s['cool_eps'])}; ε adapted "
        f"to acceptance "
        f"{TARGET_ACCEPTANCE}, diagonal preconditioner from the chains): ε = "
        f"{eps:.3g}, {float(smp.num_integration_steps):.3g} integrator steps per "
        f"proposal on average; production acceptance {np.mean(acc):.2f}"
    )
    if s["ended_below_target"] is not None:
        tuning += (
            f"; the step search ended at the last step it tested (acceptance "
            f"{s['ended_below_target']:.2f}: below {TARGET_ACCEPTANCE}, above "
            f"production's floor {MIN_ACCEPTANCE})"
        )
    if burned:
        tuning += (
            f"; the first {burned * BLOCK} production steps were discarded too (the "
            f"L_n trace was still trending there: MSER truncation)"
        )
    if grows:
        tuning += (
            f"; production restarted {grows}× at a larger step (its acceptance was "
            f"above {MAX_ACCEPTANCE}: the warm-up counts those steps)"
        )
    if restarts:
        tuning += (
            f"; production restarted {restarts}× at a smaller step (the acceptance "
            "fell as the chains moved on: the warm-up counts those steps)"
        )
    return ExactRun(
        smp,
        np.concatenate(warm + prod, axis=1),
        warmup_steps,
        start,
        s["settled"],
        counters[0],
        counters[1],
        tuning,
        s["stuck"],
        dispersed,
        s["cool_blocks"],
        warmup_steps + burned * BLOCK,
    )


def _done(trace, init_loss, n, beta, target, dispersed) -> tuple[bool, dict]:
    """Split-R-hat < ``RHAT_MAX`` within each group of starts (unsplit for a group
    still approaching the other, :func:`~slt_sampler.estimators.llc.approaching`),
    bulk ESS ≥ ``MIN_ESS`` and total error (MCSE, drift between the trace's two
    halves and the bracket between the chains started at w* and the ``dispersed``
    ones) at most ``target`` of |λ̂|; and what the progress bar shows of them."""
    result = llc(trace, init_loss, n=n, beta=beta)
    total = error_budget(result, trace, dispersed=dispersed).total
    moving = None if dispersed is None else approaching(trace, dispersed)
    rhat, ess = group_convergence(trace, dispersed, allow_approach=True, moving=moving)
    status = {
        "phase": "production",
        "llc": f"{result.llc:.4g} ± {total / max(abs(result.llc), 1e-30):.1%}",
        "rhat": f"{rhat:.3f}",
        "ess": f"{ess:.0f}",
    }
    if moving is not None:
        names = [n for n, a in zip(("w*", "hot"), moving) if a]
        if names:  # judged by unsplit R-hat: the trend is the approach (bracket)
            status["approaching"] = "+".join(names)
    if not (rhat < RHAT_MAX and ess >= MIN_ESS):
        return False, status
    return bool(total <= target * abs(result.llc)), status


def gamma_checks(
    key,
    smp,
    posterior,
    start,
    factors,
    blocks,
    init_loss,
    num_chains,
    progress=None,
    store: RunStore | None = None,
):
    """Raw λ̂ and MCSE at γ·factor for each factor: ``blocks`` blocks of the same shape
    from where the main run ended, the first half discarded (nothing recompiles).
    With a ``store`` each factor's result is saved as it ends, and a saved one is
    not run again."""
    counters = [0.0, 0.0]
    out = {}
    beta = float(posterior.beta)
    saved = {} if store is None else dict(store.meta.get("gamma_checks", {}))
    for j, factor in enumerate(factors):
        g = float(posterior.gamma) * factor
        if repr(g) in saved:
            out[g] = tuple(float("nan") if v is None else v for v in saved[repr(g)])
            continue
        post = posterior.replace(gamma=g)
        pos, parts = start, []
        for b in range(blocks):
            res = _block(
                jax.random.fold_in(jax.random.fold_in(key, j), b),
                smp,
                post,
                pos,
                num_chains,
                counters,
                progress,
                phase=f"γ check {g:.3g}",
            )
            parts.append(res.losses)
            pos = res.final_state.position
        trace = np.concatenate(parts, axis=1)
        if not np.all(np.isfinite(trace)):
            out[g] = (float("nan"), float("nan"))
            continue
        r = llc(trace[:, trace.shape[1] // 2 :], init_loss, n=posterior.n, beta=beta)
        out[g] = (r.llc, r.llc_mcse)
        if store is not None:
            saved[repr(g)] = [_json_float(v) for v in out[g]]
            store.put(gamma_checks=saved)
    return out, counters


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


AUTO_MAX_PARAMS = 20_000  # above this a per-datum full-data gradient costs too much
AUTO_MAX_DATA_TIMES_PARAMS = 10**8  # a full-data gradient costs about n·d multiply-adds
AUTO_MAX_PARAMS_SHORTCUT = 200_000  # with a full_loss_fn (cost independent of n)


def resolve_sampler(name: str, posterior, w_star, sgld_settings: bool) -> str:
    """``"auto"``: SGLD when SGLD's own settings were passed (``sgld_settings``: a step
    size or a calibration config); else MAMS (exact, no step-size bias) where a
    full-data gradient is cheap — a ``full_loss_fn`` shortcut and at most
    ``AUTO_MAX_PARAMS_SHORTCUT`` parameters, or at most ``AUTO_MAX_PARAMS`` parameters
    and ``n·d ≤ AUTO_MAX_DATA_TIMES_PARAMS`` — else SGLD.

    Why MAMS up to 2·10⁵ parameters with a shortcut: calibrated SGLD is not
    trustworthy at 10⁴ parameters and above on deep linear networks (its chains drift
    along the rescaling symmetry to where the calibrated step runs hot: +15% and
    unsettled after 320,000 steps on the 8,500-parameter [60, 50, 50, 60] DLN), while
    MAMS on the 82,500-parameter [200, 150, 150, 200] rank-20 DLN settled in 18
    minutes on 2 CPU cores (λ̂ 11,590 ± 5 against Aoyagi's λ = 11,184)."""
    if name != "auto":
        return name
    if sgld_settings:
        return "sgld"
    d = _num_params(w_star)
    if posterior.full_loss_fn is not None:
        return "mams" if d <= AUTO_MAX_PARAMS_SHORTCUT else "sgld"
    cheap = posterior.n * d <= AUTO_MAX_DATA_TIMES_PARAMS
    return "mams" if d <= AUTO_MAX_PARAMS and cheap else "sgld"


def estimate_exact(
    rng_key,
    posterior,
    *,
    num_chains,
    num_steps,
    max_steps,
    target_rel_error,
    burn_in,
    gamma_check,
    init_loss,
    report,
    center_check,
    progress=None,
    resume_file=None,
):
    """The MAMS branch of :func:`~slt_sampler.estimate_llc` (same checks, same
    result type; ``burn_in`` defaults to the warm-up and the production blocks
    :func:`burn_blocks` truncates; ``progress`` as there: ``None``
    shows a bar on a terminal when blocks are slow; ``resume_file`` as there)."""
    from ..samplers.checks import Problem
    from .llc import LLCEstimate, _raise_if_diverged, finish_result

    k_run, k_gamma = jax.random.split(rng_key)
    bar = _Progress(progress)
    store = None
    if resume_file is not None:
        store = RunStore(
            resume_file,
            {
                "method": METHOD,
                "key": np.asarray(jax.random.key_data(rng_key)).ravel().tolist(),
                "n": int(posterior.n),
                "beta": float(posterior.beta),
                "gamma": float(posterior.gamma),
                "init_loss": float(init_loss),
                "num_params": _num_params(posterior.center),
                "num_chains": int(num_chains),
                "num_steps": num_steps,
                "max_steps": int(max_steps),
                "target_rel_error": float(target_rel_error),
                "gamma_check": [float(f) for f in gamma_check],
            },
        )
    run = run_mams(
        k_run,
        posterior,
        posterior.center,
        num_chains=num_chains,
        num_steps=num_steps,
        max_steps=max_steps,
        target_rel_error=target_rel_error,
        init_loss=init_loss,
        raise_if_nan=_raise_if_diverged,
        progress=bar,
        store=store,
    )
    trace = run.trace
    if not run.settled:
        report.add(
            [
                Problem(
                    "not_settled",
                    f"the L_n trace was not yet stationary (R-hat < {RHAT_MAX} "
                    f"within each group of starts, ESS >= {MIN_ESS}) with a total "
                    f"error <= {target_rel_error:.0%} of λ̂ after max_steps = "
                    f"{max_steps} steps: λ̂ may still be drifting. Raise max_steps.",
                )
            ]
        )
    if run.stuck_blocks:
        report.add(
            [
                Problem(
                    "low_acceptance",
                    f"{run.stuck_blocks} production blocks had a mean acceptance "
                    f"below {MIN_ACCEPTANCE} or a chain below {MIN_CHAIN_ACCEPTANCE} "
                    f"after {MAX_RESTARTS} step halvings: chains that reject stay "
                    "where they are, so λ̂ may read low. Check it with "
                    "sampler='nuts' (which adapts its step per trajectory).",
                )
            ]
        )
    burn_in = run.burn_in if burn_in is None else burn_in
    result, budget = finish_result(
        trace[:, burn_in:],
        init_loss,
        posterior,
        None,
        report,
        center_check,
        dispersed=run.dispersed,
    )
    prod_blocks = (trace.shape[1] - run.burn_in) // BLOCK
    checks, (g_compile, g_run) = gamma_checks(
        k_gamma,
        run.sampler,
        posterior,
        run.final_position,
        gamma_check,
        max(2, prod_blocks // 4),
        init_loss,
        num_chains,
        bar,
        store,
    )
    bar.close()
    sens = {
        float(posterior.gamma): result.llc_raw,
        **{g: v[0] for g, v in checks.items()},
    }
    sens_mcse = {
        float(posterior.gamma): result.llc_mcse,
        **{g: v[1] for g, v in checks.items()},
    }
    return LLCEstimate(
        result=result,
        sampler="mams",
        step_size=float(run.sampler.step_size),
        batch_size=None,
        n=posterior.n,
        beta=float(posterior.beta),
        gamma=float(posterior.gamma),
        num_chains=num_chains,
        num_steps=trace.shape[1],
        burn_in=burn_in,
        losses=trace,
        loss_kind="full",
        calibration=None,
        gamma_sensitivity=dict(sorted(sens.items())),
        steps_per_second=num_chains * trace.shape[1] / max(run.run_seconds, 1e-12),
        compile_seconds=run.compile_seconds + g_compile,
        run_seconds=run.run_seconds + g_run,
        settled=run.settled,
        end_configurational_temperature=None,
        problems=report.finish(),
        center_check=center_check,
        gamma_sensitivity_mcse=dict(sorted(sens_mcse.items())),
        error_budget=budget,
        tuning=run.tuning,
        dispersed=run.dispersed,
    )
