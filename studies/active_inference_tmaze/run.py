"""Study: an active-inference agent on the T-maze, a 5-location maze and reversals.

Question: does one variational free energy, minimised three ways (perceive, learn,
act), give epistemic behaviour (cue first), honest horizon limits, monotone inference,
fast Dirichlet learning and controllable reversal speed? Plus the ELBO identity on a
linear-Gaussian model.

Run:  .venv/bin/python studies/active_inference_tmaze/run.py [--quick] [--seed 0]
Writes results.json and PNG plots to --out (default studies/active_inference_tmaze/out).
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats
from tqdm import tqdm

from slt_sampler.diagnostics.results import write_json_atomic
from slt_sampler.thermo import agent as ag


def cp_interval(k, n, level=0.95):
    lo = 0.0 if k == 0 else stats.beta.ppf((1 - level) / 2, k, n - k + 1)
    hi = 1.0 if k == n else stats.beta.ppf(1 - (1 - level) / 2, k + 1, n - k)
    return [float(lo), float(hi)]


def rate(k, n):
    return {"count": int(k), "n": int(n), "rate": k / n, "ci95": cp_interval(k, n)}


def model_of(task):
    return ag.generative_model(task.A, task.B, task.C, task.D)


def maze_run(key, task, horizon, n, num_steps, selection, action_precision=16.0):
    nc = tuple(b.shape[2] for b in task.B)
    params = ag.AgentParams(policy_precision=16.0, action_precision=action_precision)
    _, traj = ag.rollout(
        key,
        ag.init(model_of(task)),
        task.env,
        params,
        ag.enumerate_policies(nc, horizon),
        num_agents=n,
        num_steps=num_steps,
        selection=selection,
    )
    loc = np.asarray(traj.env_state[:, :, 0])
    ctx = np.asarray(traj.env_state[:, 0, 1])
    arms = np.asarray(task.correct_arm)
    at_arm = np.isin(loc, arms)
    first = np.where(at_arm.any(1), loc[np.arange(n), at_arm.argmax(1)], -1)
    t_arm = np.where(at_arm.any(1), at_arm.argmax(1), -1)
    reward = np.asarray(traj.observation[1])
    got = np.array(
        [reward[i, t_arm[i]] == 1 if t_arm[i] >= 0 else False for i in range(n)]
    )
    return {
        "cue_first": rate(np.sum(loc[:, 1] == task.labels["cue"]), n),
        "reached_arm": rate(np.sum(at_arm.any(1)), n),
        "correct_arm": rate(np.sum(first == arms[ctx]), n),
        "reward_at_first_arm": rate(np.sum(got), n),
    }, loc


def free_energy_traces(key):
    task = ag.tmaze()
    model = model_of(task)
    # step 1 of an episode: the agent moved to the cue (prior on location = cue) and the
    # cue says "left" -- F over iterations of q(location, context)
    prior = (jnp.eye(4)[1], model.D[1])
    obs = (jnp.asarray(1), jnp.asarray(0), jnp.asarray(1))
    out = {}
    for name, method, iters, lr in (("fpi", "fpi", 8, 0.0), ("gd", "gd", 200, 0.5)):
        res = ag.infer_states(
            obs, prior, model.A, num_iter=iters, method=method, step_size=lr
        )
        out[f"tmaze_{name}"] = np.asarray(res.free_energy_trace).tolist()
    _, log_ev = ag.exact_posterior(obs, prior, model.A)
    out["tmaze_minus_log_evidence"] = float(-log_ev)
    # a random 3-factor model: mean-field F stays above -log p(o)
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    ns, no = (3, 4, 2), (6, 5)
    A = [rng.dirichlet(np.ones(o), size=ns).transpose(3, 0, 1, 2) for o in no]
    B = [np.eye(s)[:, :, None] for s in ns]
    m = ag.generative_model(
        A, B, [np.zeros(o) for o in no], [rng.dirichlet(np.ones(s)) for s in ns]
    )
    o = (jnp.asarray(2), jnp.asarray(1))
    for name, method, iters, lr in (("fpi", "fpi", 12, 0.0), ("gd", "gd", 200, 0.5)):
        res = ag.infer_states(o, m.D, m.A, num_iter=iters, method=method, step_size=lr)
        out[f"random3_{name}"] = np.asarray(res.free_energy_trace).tolist()
    out["random3_minus_log_evidence"] = float(-ag.exact_posterior(o, m.D, m.A)[1])
    return out


BANDIT_POLICIES = ag.enumerate_policies((2, 1), 1)


@partial(jax.jit, static_argnames="num_steps")
def _bandit_scan(keys, state, env, params, num_steps):
    """Drive the kernel by hand (public kernel contract) to record the learned
    p(reward | arm) at every step; env and params are traced, so the learning and
    the reversal runs (any forgetting, any switch time) share one compilation."""
    kernel = ag.build_kernel(BANDIT_POLICIES, num_iter=1)

    def one(k):
        k0, k1 = jax.random.split(k)
        es, obs = ag.env_reset(k0, env)

        def body(carry, xs):
            s, es, obs = carry
            s, _ = kernel(xs[1], s, obs, params)
            es, obs = ag.env_step(
                jax.random.fold_in(xs[1], 1), env, es, s.action, xs[0]
            )
            counts = s.pA[1][:, :, 0]
            return (s, es, obs), (counts[0] / counts.sum(0), s.action[0])

        xs = (jnp.arange(num_steps), jax.random.split(k1, num_steps))
        return jax.lax.scan(body, (state, es, obs), xs)[1]

    return jax.vmap(one)(keys)


def bandit_runs(key, n, num_steps, switch, omegas):
    """Learning curve (no reversal, no forgetting) and reversal curves per forgetting."""
    runs = {}
    for name, sw, omega in [("learn", -1, 0.0)] + [(o, switch, o) for o in omegas]:
        task = ag.reversal_bandit(switch_time=sw, agent_model="contingency")
        state = ag.init(model_of(task), pA=task.pA)
        params = ag.AgentParams(learning_rate_A=1.0, forgetting=omega)
        p_reward, action = _bandit_scan(
            jax.random.split(key, n), state, task.env, params, num_steps
        )
        runs[name] = (np.asarray(p_reward), np.asarray(action))
    p_left = runs["learn"][0][:, :, 0]
    kl = 0.85 * np.log(0.85 / p_left) + 0.15 * np.log(0.15 / (1 - p_left))
    curves, delays = {}, {}
    for omega in omegas:
        right = runs[omega][1] == 1
        curves[omega] = right.mean(0)
        moved = right[:, switch:]
        delays[omega] = np.where(moved.any(1), moved.argmax(1), 10_000)
    return p_left, kl, curves, delays


def reversal_volatility(key, n, switch, vols):
    curves, delays = {}, {}
    for v in vols:
        task = ag.reversal_bandit(
            switch_time=switch, agent_model="context", volatility=v
        )
        _, traj = ag.rollout(
            key,
            ag.init(model_of(task)),
            task.env,
            ag.AgentParams(),
            ag.enumerate_policies((2, 1), 1),
            num_agents=n,
            num_steps=switch + 100,
            num_iter=4,
        )
        q1 = np.asarray(traj.beliefs[1][:, :, 1])
        curves[v] = q1.mean(0)
        flipped = q1[:, switch:] > 0.5
        delays[v] = np.where(flipped.any(1), flipped.argmax(1), 10_000)
    return curves, delays


def gaussian_elbo(key, num_steps):
    kw, kz, ke, kf = jax.random.split(key, 4)
    W = jax.random.normal(kw, (6, 2))
    z = jax.random.normal(kz, (256, 2))
    x = z @ W.T + 0.5 * jax.random.normal(ke, (256, 6))
    fit = jax.jit(
        lambda k: ag.fit_amortised(
            k, x, latent_dim=2, num_steps=num_steps, learning_rate=2e-2
        )
    )
    rec, gen, history = fit(kf)
    terms = ag.gaussian_free_energy(rec, gen, x)
    # an untrained recognition model under the learned generative model: the identity
    # F + log p(x) = KL(q || p(z|x)) must hold for any q, datum by datum
    k1, k2 = jax.random.split(jax.random.fold_in(kf, 1))
    rec0 = ag.Recognition(
        0.3 * jax.random.normal(k1, rec.M.shape),
        rec.c,
        0.3 * jax.random.normal(k2, rec.L_raw.shape),
    )
    t0 = ag.gaussian_free_energy(rec0, gen, x)
    scatter = {
        "kl": np.asarray(t0.kl_to_posterior).tolist(),
        "gap": np.asarray(t0.free_energy + t0.log_evidence).tolist(),
    }
    gap = terms.free_energy + terms.log_evidence - terms.kl_to_posterior
    return np.asarray(history), {
        "untrained_q": scatter,
        "untrained_max_abs_identity_residual": float(
            jnp.max(jnp.abs(t0.free_energy + t0.log_evidence - t0.kl_to_posterior))
        ),
        "mean_F": float(terms.free_energy.mean()),
        "mean_minus_log_evidence": float(-terms.log_evidence.mean()),
        "mean_kl_to_posterior": float(terms.kl_to_posterior.mean()),
        "max_abs_identity_residual": float(jnp.max(jnp.abs(gap))),
    }


def summarise_delays(d):
    return {
        "median": float(np.median(d)),
        "p95": float(np.percentile(d, 95)),
        "max": float(np.max(d)),
        "n": len(d),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smaller run for CI")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    n = 128 if quick else 512
    n_learn = 64 if quick else 128
    learn_steps = 400 if quick else 1000
    precisions = (1.0, 4.0, 16.0) if quick else (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    horizons = (2, 3) if quick else (2, 3, 4)
    keys = iter(jax.random.split(jax.random.key(args.seed), 64))
    results = {"seed": args.seed, "quick": quick, "episodes": n}
    t_start = time.time()
    steps = tqdm(total=8, desc="study")

    tm = ag.tmaze()
    results["tmaze_deterministic"], tm_loc = maze_run(
        next(keys), tm, 2, n, 3, "deterministic"
    )
    steps.update()
    results["tmaze_sampled"] = {}
    for a in precisions:
        results["tmaze_sampled"][str(a)] = maze_run(
            next(keys), tm, 2, n, 3, "sampled", a
        )[0]
    steps.update()
    results["maze5"] = {}
    m5 = ag.maze5()
    m5_locs = {}
    for h in horizons:
        results["maze5"][str(h)], m5_locs[h] = maze_run(
            next(keys), m5, h, n, 8 if h == 2 else 6, "deterministic"
        )
    steps.update()
    fe = free_energy_traces(next(keys))
    results["free_energy"] = {
        k: (v[-1] if isinstance(v, list) else v) for k, v in fe.items()
    }
    results["free_energy"]["fpi_max_increase"] = float(
        max(np.max(np.diff(fe["tmaze_fpi"])), np.max(np.diff(fe["random3_fpi"])))
    )
    steps.update()
    switch = learn_steps // 2
    omegas = (0.0, 0.1) if quick else (0.0, 0.05, 0.1, 0.2)
    p_left, kl, f_curves, f_delays = bandit_runs(
        next(keys), n_learn, learn_steps, switch, omegas
    )
    results["learning"] = {
        "steps": learn_steps,
        "agents": n_learn,
        "final_p_reward_left": summarise_delays(p_left[:, -1])
        | {"min": float(p_left[:, -1].min())},
        "max_abs_error": float(np.max(np.abs(p_left[:, -1] - 0.85))),
        "mean_kl_at": {
            str(t): float(kl[:, t - 1].mean()) for t in (1, 10, 100, learn_steps)
        },
    }
    steps.update()
    results["reversal_forgetting"] = {
        "switch_time": switch,
        **{str(o): summarise_delays(d) for o, d in f_delays.items()},
    }
    steps.update()
    vols = (0.0, 0.05) if quick else (0.0, 0.02, 0.05, 0.1)
    v_curves, v_delays = reversal_volatility(next(keys), n_learn, 100, vols)
    results["reversal_volatility"] = {
        str(v): summarise_delays(d) for v, d in v_delays.items()
    }
    steps.update()
    history, gauss = gaussian_elbo(next(keys), 600 if quick else 2000)
    results["gaussian_elbo"] = gauss
    steps.update()
    steps.close()
    results["wall_time_s"] = round(time.time() - t_start, 1)

    plot_all(
        args.out,
        results,
        tm_loc,
        m5_locs,
        fe,
        p_left,
        kl,
        f_curves,
        switch,
        v_curves,
        history,
        gauss,
    )
    write_json_atomic(args.out / "results.json", results, indent=2)
    print(
        json.dumps({k: results[k] for k in ("tmaze_deterministic", "maze5")}, indent=1)[
            :2000
        ]
    )
    print(f"wrote {args.out} in {results['wall_time_s']} s")


def plot_all(
    out, r, tm_loc, m5_locs, fe, p_left, kl, f_curves, switch, v_curves, history, gauss
):
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    names = ["centre", "cue", "left", "right"]
    occ = np.stack([(tm_loc == i).mean(0) for i in range(4)])
    ax[0].imshow(occ, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax[0].set(
        yticks=range(4),
        yticklabels=names,
        xticks=range(occ.shape[1]),
        xlabel="time step",
        title="T-maze occupancy (deterministic)",
    )
    prec = sorted(r["tmaze_sampled"], key=float)
    for key, lab in (("cue_first", "cue first"), ("correct_arm", "correct arm")):
        y = [r["tmaze_sampled"][p][key]["rate"] for p in prec]
        lo = [r["tmaze_sampled"][p][key]["ci95"][0] for p in prec]
        ax[1].plot([float(p) for p in prec], y, "o-", label=lab)
        ax[1].plot([float(p) for p in prec], lo, "k:", lw=0.8)
    ax[1].axhline(0.95, color="r", lw=0.8, label="0.95 target")
    ax[1].set(
        xscale="log",
        xlabel="action precision",
        ylim=(0, 1.02),
        title="T-maze, sampled selection (dotted: 95% CP lower)",
    )
    ax[1].legend()
    hs = sorted(r["maze5"], key=int)
    x = np.arange(len(hs))
    for j, key in enumerate(("cue_first", "reached_arm", "correct_arm")):
        ax[2].bar(
            x + 0.27 * (j - 1),
            [r["maze5"][h][key]["rate"] for h in hs],
            0.27,
            label=key,
        )
    ax[2].set(
        xticks=x,
        xticklabels=[f"horizon {h}" for h in hs],
        ylim=(0, 1.05),
        title="5-location maze: horizon honesty",
    )
    ax[2].legend()
    fig.tight_layout()
    fig.savefig(out / "behaviour.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for a, pre in zip(ax, ("tmaze", "random3")):
        floor = fe[f"{pre}_minus_log_evidence"]
        for m, style in (("fpi", "o-"), ("gd", "-")):
            y = np.asarray(fe[f"{pre}_{m}"]) - floor
            a.plot(np.arange(len(y)), np.maximum(y, 1e-8), style, label=m, ms=3)
        a.set_xscale("symlog", linthresh=1.0)
        a.set(
            yscale="log",
            xlim=(0, None),
            xlabel="inference iteration",
            ylabel="F - (-log p(o))  = KL(q || p(s|o))",
            title=f"{pre}: free energy over iterations",
        )
        a.legend()
    fig.tight_layout()
    fig.savefig(out / "free_energy.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(1, 4, figsize=(19, 4))
    t = np.arange(1, p_left.shape[1] + 1)
    ax[0].plot(t, p_left.mean(0), label="mean")
    ax[0].fill_between(
        t, *np.percentile(p_left, [5, 95], axis=0), alpha=0.3, label="5-95%"
    )
    ax[0].axhline(0.85, color="k", ls="--", lw=0.8)
    ax[0].set(
        xscale="log",
        xlabel="step",
        ylabel="learned p(reward | left)",
        title="Dirichlet learning of A",
    )
    ax[0].legend()
    ax[1].plot(t, kl.mean(0))
    ax[1].set(
        xscale="log",
        yscale="log",
        xlabel="step",
        title="mean KL(A_true || A_learned), visited arm",
    )
    for o, c in f_curves.items():
        ax[2].plot(np.arange(len(c)) - switch, c, label=f"forgetting {o}")
    ax[2].set(
        xlim=(-20, 200),
        xlabel="trials since reversal",
        ylabel="fraction on right arm",
        title="reversal: Dirichlet + forgetting",
    )
    ax[2].legend()
    for v, c in v_curves.items():
        ax[3].plot(np.arange(len(c)) - 100, c, label=f"volatility {v}")
    ax[3].set(
        xlim=(-20, 100),
        xlabel="trials since reversal",
        ylabel="mean q(context = reversed)",
        title="reversal: context volatility",
    )
    ax[3].legend()
    fig.tight_layout()
    fig.savefig(out / "learning.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    ax[0].plot(history, label="mean F (= -ELBO) during training")
    ax[0].axhline(
        gauss["mean_minus_log_evidence"],
        color="k",
        ls="--",
        label="-mean log p(x), learned model",
    )
    ax[0].set(
        xlabel="Adam step",
        ylabel="nats / datum",
        ylim=(gauss["mean_minus_log_evidence"] - 0.5, history[0] + 0.5),
        title=f"amortised linear-Gaussian: final mean KL(q||p(z|x)) = "
        f"{gauss['mean_kl_to_posterior']:.1e}",
    )
    ax[0].legend()
    sc = gauss["untrained_q"]
    ax[1].plot(sc["kl"], sc["gap"], ".", ms=4)
    lim = [0, max(sc["kl"]) * 1.05]
    ax[1].plot(lim, lim, "k--", lw=0.8, label="y = x")
    ax[1].set(
        xlabel="KL(q || p(z|x))  (exact posterior)",
        ylabel="F - (-log p(x))  (exact evidence)",
        title="identity per datum, untrained q "
        f"(max residual {gauss['untrained_max_abs_identity_residual']:.1e})",
    )
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(out / "gaussian_elbo.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
