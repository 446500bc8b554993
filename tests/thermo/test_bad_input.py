"""Bad input at every public entry point of slt_sampler.thermo (issue 12).

(a) One explicit test per known case (each failed before the fix: ran on, returned a
silent wrong number, or raised an unnamed IndexError).
(b) A Hypothesis suite: for every name in ``ep.__all__``, ``agent.__all__`` and
``reversible.__all__`` that takes user input, each example corrupts one argument of
a valid call (bad shapes, dtypes, NaN/inf, empty, out of range, wrong types) and
expects a ``ValueError``/``TypeError`` whose message names that argument -- or, for
the elementwise ``hard_sigmoid``, the correct result.
(c) A coverage test: every public name is covered here or exempt with a reason.

Bad inputs fail in Python before anything is compiled, so the file takes seconds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slt_sampler.thermo import agent as ag
from slt_sampler.thermo import ep
from slt_sampler.thermo import reversible as rev

ERRORS = (ValueError, TypeError)
NAN, INF = float("nan"), float("inf")
SETTINGS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _names_arg(message: str, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", message) is not None


def _raises_naming(call: Callable, name: str):
    with pytest.raises(ERRORS) as err:
        call()
    assert _names_arg(str(err.value), name), (name, str(err.value))
    return err.value


# ======================================================================== (a) known cases
# ------------------------------------------------------------------------------ agent
@functools.cache
def _tmaze():
    task = ag.tmaze()
    model = ag.generative_model(task.A, task.B, task.C, task.D)
    return task, model, ag.init(model), ag.enumerate_policies((4, 1), 1)


def _rollout(**kw):
    task, _, state, policies = _tmaze()
    args = {
        "rng_key": jax.random.key(0),
        "state": state,
        "env": task.env,
        "params": ag.AgentParams(),
        "policies": policies,
        "num_agents": 2,
        "num_steps": 2,
    }
    return ag.rollout(**{**args, **kw})


@pytest.mark.parametrize("value", [-1.0, NAN, INF])
def test_agent_rejects_negative_or_nan_policy_precision(value):
    err = _raises_naming(
        lambda: _rollout(params=ag.AgentParams(policy_precision=value)),
        "params.policy_precision",
    )
    assert isinstance(err, ValueError) and ">= 0" in str(err)
    kernel = ag.build_kernel(_tmaze()[3])
    _, _, state, _ = _tmaze()
    with pytest.raises(ValueError, match="policy_precision"):
        kernel(
            jax.random.key(0), state, (0, 0, 0), ag.AgentParams(policy_precision=value)
        )
    with pytest.raises(ValueError, match="policy_precision"):
        ag.policy_posterior(jnp.zeros(4), value)


def test_agent_rejects_forgetting_outside_unit_interval():
    for value in (2.0, -0.1):
        err = _raises_naming(
            lambda v=value: _rollout(params=ag.AgentParams(forgetting=v)),
            "params.forgetting",
        )
        assert "[0, 1]" in str(err)


def test_agent_rejects_negative_learning_rate():
    for field in ("learning_rate_A", "learning_rate_B"):
        _raises_naming(
            lambda f=field: _rollout(params=ag.AgentParams(**{f: -0.5})),
            f"params.{field}",
        )


def test_infer_states_rejects_out_of_range_observation():
    """JAX indexing clamps index 7 to the last outcome: a confident wrong belief."""
    _, model, _, _ = _tmaze()
    for obs in [(0, 7, 0), (0, -1, 0), (0, 1)]:
        err = _raises_naming(
            lambda o=obs: ag.infer_states(o, model.D, model.A), "observation"
        )
        assert isinstance(err, ValueError)
    with pytest.raises(TypeError, match=r"observation\[0\]"):
        ag.infer_states((0.5, 0, 0), model.D, model.A)


def test_rollout_zero_steps_is_a_clear_error():
    err = _raises_naming(lambda: _rollout(num_steps=0), "num_steps")
    assert isinstance(err, ValueError) and "got 0" in str(err)
    _raises_naming(lambda: _rollout(num_agents=0), "num_agents")


# ----------------------------------------------------------------------------------- ep
@functools.cache
def _ep():
    net = ep.RestrictedHopfield((4, 3, 2))
    params = net.init_params_fn(jax.random.key(0))
    x = jnp.full((3, 4), 0.5)
    target = jnp.eye(2)[jnp.array([0, 1, 0])]
    return net, params, x, target


def test_ep_nan_inputs_raise_instead_of_nan_gradients():
    net, params, x, target = _ep()
    grad_fn = ep.build_gradient_fn(net)
    bad_x, bad_t = x.at[1, 2].set(NAN), target.at[0, 0].set(INF)
    key = jax.random.key(0)
    err = _raises_naming(
        lambda: grad_fn(key, params, bad_x, target, 0.5, 0.5, 1e-4), "x"
    )
    assert "NaN or inf" in str(err)
    _raises_naming(lambda: grad_fn(key, params, x, bad_t, 0.5, 0.5, 1e-4), "target")
    bad_p = jax.tree.map(lambda a: a.at[0].set(NAN), params)
    _raises_naming(lambda: grad_fn(key, bad_p, x, target, 0.5, 0.5, 1e-4), "params")
    _raises_naming(lambda: ep.predict(params, bad_x, energy=net), "x")
    data = ep.Dataset(
        np.asarray(bad_x), np.array([0, 1, 0]), np.asarray(x), np.array([1, 0, 1])
    )
    cfg = ep.EPConfig(batch_size=1, num_epochs=1)
    _raises_naming(lambda: ep.fit(key, params, net, optax.sgd(0.1), data, cfg), "x")


@pytest.mark.parametrize("step", [0.0, -0.5, NAN])
def test_ep_rejects_non_positive_relaxation_step(step):
    net, params, x, target = _ep()
    key = jax.random.key(0)
    layers = ep.initial_layers(net, params, x)
    calls = [
        lambda: ep.build_gradient_fn(net)(key, params, x, target, 0.5, step, 1e-4),
        lambda: ep.predict(params, x, step, energy=net),
        lambda: ep.relax(params, x, target, 0.0, layers, energy=net, step_size=step),
        lambda: ep.reference_gradient(
            params, x, target, layers, energy=net, step_size=step
        ),
        lambda: ep.as_top_level_api(
            net, optax.sgd(0.1), nudge=0.5, step_size=step, tol=1e-4
        ),
    ]
    for call in calls:
        err = _raises_naming(call, "step_size")
        assert isinstance(err, ValueError) and "> 0" in str(err)


def test_ep_empty_batch_raises():
    net, params, x, target = _ep()
    grad_fn = ep.build_gradient_fn(net)
    err = _raises_naming(
        lambda: grad_fn(jax.random.key(0), params, x[:0], target[:0], 0.5, 0.5, 1e-4),
        "x",
    )
    assert "empty" in str(err)
    _raises_naming(lambda: ep.predict(params, x[:0], energy=net), "x")
    data = ep.Dataset(
        np.asarray(x), np.array([0, 1, 0]), np.zeros((0, 4)), np.zeros(0, int)
    )
    _raises_naming(
        lambda: ep.fit(jax.random.key(0), params, net, optax.sgd(0.1), data), "x"
    )


def test_ep_layer_sizes_are_not_truncated():
    for sizes in [(4.5, 3, 2), ("4", 3, 2), (True, 3)]:
        with pytest.raises(TypeError, match="layer_sizes"):
            ep.RestrictedHopfield(sizes)


# --------------------------------------------------------------------------- reversible
@functools.cache
def _rev():
    stack = rev.reversible_stack(rev.additive_coupling(rev.mlp_residual()))
    params = rev.init_coupling_mlp(jax.random.key(0), 2, 4, 4)
    return stack, params, jnp.ones((2, 4))


def test_reversible_nan_and_integer_input():
    stack, params, x = _rev()
    for fn, name in (
        (rev.forward, "x"),
        (rev.inverse, "y"),
        (rev.reconstruction_error, "x"),
    ):
        err = _raises_naming(lambda f=fn: f(stack, params, x.at[0, 1].set(NAN)), name)
        assert "NaN or inf" in str(err)
        err = _raises_naming(
            lambda f=fn: f(stack, params, jnp.ones((2, 4), jnp.int32)), name
        )
        assert isinstance(err, TypeError)
    bad = rev.CouplingParams(
        params.f, {**params.g, "w1": params.g["w1"].at[0].set(NAN)}
    )
    _raises_naming(lambda: rev.forward(stack, bad, x), "params")


def test_reversible_params_that_do_not_fit_x():
    stack, params, x = _rev()
    wide = rev.init_coupling_mlp(jax.random.key(0), 2, 6, 4)
    err = _raises_naming(lambda: rev.forward(stack, wide, x), "params")
    assert "dim=4" in str(err)
    affine = rev.reversible_stack(rev.affine_coupling(rev.mlp_residual()))
    _raises_naming(lambda: rev.forward(affine, params, x), "params")  # additive widths
    _raises_naming(lambda: rev.forward(stack, (params.f, params.g), x), "params")
    _raises_naming(lambda: rev.forward(stack.coupling, params, x), "stack")


@pytest.mark.parametrize(
    "call, name",
    [
        (
            lambda p: rev.forward(
                _rev()[0], jax.tree.map(lambda a: a[:0], p), _rev()[2]
            ),
            "depth",
        ),
        (lambda p: rev.init_coupling_mlp(jax.random.key(0), 0, 4, 4), "depth"),
        (lambda p: rev.init_coupling_mlp(jax.random.key(0), 2.0, 4, 4), "depth"),
        (lambda p: rev.init_coupling_mlp(jax.random.key(0), 2, 0, 4), "dim"),
        (lambda p: rev.init_coupling_mlp(jax.random.key(0), 2, 4, 0), "hidden"),
        (
            lambda p: rev.init_coupling_mlp(jax.random.key(0), 2, 4, 4, scale=INF),
            "scale",
        ),
        (lambda p: rev.default_residual_scale(-3), "depth"),
    ],
)
def test_reversible_bad_depth_and_widths(call, name):
    _raises_naming(lambda: call(_rev()[1]), name)


def test_reversible_checkpoint_and_fixed_point_types():
    coupling = rev.additive_coupling(rev.mlp_residual())
    assert (
        rev.reversible_stack(coupling, checkpoint_every=np.int64(2)).checkpoint_every
        == 2
    )
    with pytest.raises(TypeError, match="checkpoint_every"):
        rev.reversible_stack(coupling, checkpoint_every=2.0)
    with pytest.raises(ValueError, match="checkpoint_every"):
        rev.reversible_stack(coupling, checkpoint_every=-1)
    rev.additive_coupling(rev.mlp_residual(), fixed_point_bits=np.int64(16))
    with pytest.raises(TypeError, match="fixed_point_bits"):
        rev.additive_coupling(rev.mlp_residual(), fixed_point_bits=16.0)
    with pytest.raises(ValueError, match="fixed_point_bits"):
        rev.additive_coupling(rev.mlp_residual(), fixed_point_bits=60)
    with pytest.raises(TypeError, match="coupling"):
        rev.reversible_stack(rev.mlp_residual())  # a bare residual, not a Coupling
    with pytest.raises(TypeError, match="dtype"):
        rev.reversible_stack(coupling, dtype="floot")
    stack, params, x = _rev()
    with pytest.raises(ValueError, match="threshold"):
        rev.reconstruction_error(stack, params, x, threshold=NAN)


def test_traced_values_are_left_to_the_computation():
    """Inside jit the checks see tracers: no error, the numbers flow through."""
    q = jax.jit(ag.policy_posterior)(jnp.array([0.0, 1.0]), -1.0)
    assert float(q[1]) > float(q[0])  # what a negative precision means, unchecked


# ===================================================================== (b) property suite
class Bad(NamedTuple):
    """A bad value and the argument name its error message must contain."""

    value: Any
    name: str


class Case(NamedTuple):
    call: Callable  # call(**kwargs)
    good: Callable  # () -> dict of valid kwargs
    bad: dict  # argument -> strategy of bad values (or of Bad)


NOT_NUMBER = st.sampled_from(["0.5", None, object(), b"1"])
NOT_FINITE = st.sampled_from([NAN, INF, -INF])
_FLOATS = {"allow_nan": False, "allow_infinity": False}


def positive():
    return st.one_of(NOT_NUMBER, NOT_FINITE, st.floats(max_value=0.0, **_FLOATS))


def nonneg():
    return st.one_of(NOT_NUMBER, NOT_FINITE, st.floats(max_value=-1e-3, **_FLOATS))


def unit(open_high=False):
    high = st.floats(min_value=1.0 if open_high else 1.001, max_value=1e6)
    return st.one_of(nonneg(), high)


def count(minimum=1, none_ok=False):
    odd = [2.0, "3", True] + ([] if none_ok else [None])
    return st.one_of(
        st.integers(min_value=-1000, max_value=minimum - 1), st.sampled_from(odd)
    )


CHOICE = st.sampled_from(["nope", "", None, 3])
NOT_CALLABLE = st.sampled_from([None, 3, "f"])
BAD_KEY = st.sampled_from([0, "key", np.zeros(3, np.float32), [1, 2]])
WRONG_TYPE = st.sampled_from([None, {}, (1, 2), "x", 3.0])


def _poke(good, value):
    out = np.array(good, dtype=np.float64, copy=True)
    out.reshape(-1)[0] = value
    return out


def array(good, *, valid_shape=None, dist=False, negative=False, finite=True):
    """Bad versions of the array ``good``: NaN/inf, text dtype, wrong shapes
    (not passing ``valid_shape``), and for distributions scaled/negated copies."""
    good = np.asarray(good)
    ok_shape = valid_shape or (lambda s: s == good.shape)
    shapes = st.lists(st.integers(0, 3), max_size=3).map(tuple)
    out = [
        shapes.filter(lambda s: not ok_shape(s)).map(lambda s: np.ones(s, good.dtype)),
        st.just(good.astype(str)),
        st.just(np.asarray(None)),
    ]
    if finite or good.dtype.kind in "iu":
        out.append(NOT_FINITE.map(lambda v: _poke(good, v)))
    if dist:
        out.append(st.sampled_from([2.0, 0.5]).map(lambda a: good * a))
    if negative or dist:
        out.append(st.just(_poke(good, -1.0)))
    return st.one_of(*out)


def tuple_of(good, element, *, lengths=True):
    """Bad tuples: not a tuple, empty, wrong length, or one element made bad by
    ``element(good_i)``."""
    good = tuple(good)
    n = len(good)

    def corrupt(i):
        return element(good[i]).map(lambda v: good[:i] + (v,) + good[i + 1 :])

    longer = good + (good[-1],)
    out = [
        st.just(np.asarray(good[0])),
        st.just(()),
        st.integers(0, n - 1).flatmap(corrupt),
    ]
    if lengths:
        out.append(st.just(good[:-1] if n > 1 else longer))
    return st.one_of(*out)


def _dist_shape(good):
    """Shapes a ones-array is a valid distribution of: ``good``'s, or a single
    outcome on axis 0 over the same trailing axes."""
    good = np.shape(good)
    return lambda s: (
        s == good or (len(s) == len(good) and s[0] == 1 and s[1:] == good[1:])
    )


def dists(good):
    return tuple_of(good, lambda g: array(g, dist=True, valid_shape=_dist_shape(g)))


def fields(make, **strategies):
    """Bad NamedTuple instances: one field made bad, the error must name it."""
    items = sorted(strategies.items())
    return st.sampled_from(items).flatmap(
        lambda kv: kv[1].map(lambda v, k=kv[0]: Bad(make()._replace(**{k: v}), k))
    )


# ------------------------------------------------------------------------- agent cases
@functools.cache
def _agent():
    task, model, state, policies = _tmaze()
    plan = ag.planning_arrays(model.A, model.C)
    qs = tuple(model.D)
    loglik = ag.log_likelihood(model.A, (0, 0, 0))
    return {
        "task": task,
        "model": model,
        "state": state,
        "policies": policies,
        "plan": plan,
        "qs": qs,
        "loglik": loglik,
        "tree": ag.policy_tree(policies),
    }


def _obs():
    nums = (4, 3, 3)
    return tuple_of(
        (0, 0, 0),
        lambda g: st.one_of(
            st.sampled_from([4, 9, -1, 0.5, NAN, "0"]), st.just(np.zeros(2, int))
        ),
    ).filter(
        lambda o: (
            not (
                isinstance(o, tuple)
                and len(o) == 3
                and all(isinstance(v, int) and 0 <= v < n for v, n in zip(o, nums))
            )
        )
    )


def _policies(good, ndim=3):
    good = np.asarray(good)
    valid = lambda s: len(s) == ndim and s[-1] == good.shape[-1] and 0 not in s
    return st.one_of(
        array(good, valid_shape=valid),
        st.just(good + 7),
        st.just(good - 1),
        st.just(good.astype(float)),
    )


_A = lambda: {"A": dists(_agent()["model"].A)}
_PARAMS = lambda: fields(
    ag.AgentParams,
    policy_precision=nonneg(),
    action_precision=nonneg(),
    learning_rate_A=nonneg(),
    learning_rate_B=nonneg(),
    forgetting=unit(),
    inference_step_size=positive(),
).map(lambda b: Bad(b.value, f"params.{b.name}"))


def _agent_good(*names):
    d = _agent()
    m = d["model"]
    pool = {
        "qs": d["qs"],
        "prior": d["qs"],
        "A": m.A,
        "B": m.B,
        "C": m.C,
        "observation": (0, 0, 0),
        "policies": d["policies"],
        "policy": d["policies"][0],
        "plan": d["plan"],
        "tree": d["tree"],
        "state": d["state"],
    }
    return lambda: {k: pool[k] for k in names}


def _log_prior():
    return tuple(np.log(np.maximum(np.asarray(q), 1e-16)) for q in _tmaze()[1].D)


def _gauss():
    W, b, ln = jnp.ones((3, 2)) * 0.3, jnp.zeros(3), jnp.zeros(())
    rec = ag.Recognition(jnp.ones((2, 3)) * 0.1, jnp.zeros(2), jnp.zeros((2, 2)))
    return ag.LinearGaussianModel(W, b, ln), rec, jnp.ones((5, 3))


_GAUSS_X = lambda: array(
    np.ones((5, 3)), valid_shape=lambda s: len(s) == 2 and s[1] == 3 and s[0] > 0
)
_MODEL = lambda: fields(
    lambda: _gauss()[0],
    W=array(np.ones((3, 2))),
    b=array(np.zeros(3)),
    log_noise=array(np.zeros(())),
).map(lambda b: Bad(b.value, f"model.{b.name}"))
_REC = lambda: fields(
    lambda: _gauss()[1],
    M=array(np.ones((2, 3))),
    c=array(np.zeros(2)),
    L_raw=array(np.zeros((2, 2))),
).map(lambda b: Bad(b.value, f"rec.{b.name}"))
_ENV = lambda: st.one_of(
    WRONG_TYPE,
    st.just(_agent()["task"]),
    fields(lambda: _agent()["task"].env, D=dists(_agent()["task"].env.D)).map(
        lambda b: Bad(b.value, "env.D")
    ),
)
_TASK = {
    "cue_validity": unit(),
    "reward_probability": unit(),
    "preferences": array(np.array([2.0, -3.0])),
}

AGENT_CASES = {
    "action_marginals": Case(
        ag.action_marginals,
        lambda: {
            "q_pi": jnp.full(4, 0.25),
            "policies": _agent()["policies"],
            "num_controls": (4, 1),
        },
        {
            "q_pi": array(np.full(4, 0.25), dist=True),
            "policies": _policies(np.zeros((4, 1, 2), int)),
            "num_controls": st.sampled_from(
                [(), (0, 1), (4,), (2.0, 1), "ab", None, (1, 1)]
            ),
        },
    ),
    "all_policies_efe": Case(
        ag.all_policies_efe,
        _agent_good("qs", "A", "B", "C", "policies"),
        dict(
            qs=dists(_tmaze()[1].D),
            **_A(),
            B=dists(_tmaze()[1].B),
            C=tuple_of(_tmaze()[1].C, array),
            policies=_policies(_tmaze()[3]),
        ),
    ),
    "build_kernel": Case(
        ag.build_kernel,
        lambda: {"policies": _agent()["policies"]},
        {
            "policies": _policies(_tmaze()[3]),
            "num_iter": count(),
            "inference": CHOICE,
            "selection": CHOICE,
        },
    ),
    "build_kernel/kernel": Case(
        lambda policies, **kw: ag.build_kernel(policies)(**kw),
        lambda: {
            "policies": _agent()["policies"],
            "rng_key": jax.random.key(0),
            "state": _agent()["state"],
            "observation": (0, 0, 0),
            "params": ag.AgentParams(),
        },
        {
            "rng_key": BAD_KEY,
            "state": st.one_of(WRONG_TYPE, st.just(_tmaze()[1])),
            "observation": _obs(),
            "params": st.one_of(WRONG_TYPE, _PARAMS()),
        },
    ),
    "enumerate_policies": Case(
        ag.enumerate_policies,
        lambda: {"num_controls": (4, 1), "horizon": 2},
        {
            "num_controls": st.sampled_from(
                [
                    (),
                    (0,),
                    (2.0,),
                    "ab",
                    None,
                    (-1, 2),
                    (10, 10, 10, 10, 10, 10, 10, 10),
                ]
            ),
            "horizon": count(),
        },
    ),
    "env_reset": Case(
        ag.env_reset,
        lambda: {"rng_key": jax.random.key(0), "env": _agent()["task"].env},
        {"rng_key": BAD_KEY, "env": _ENV()},
    ),
    "env_step": Case(
        ag.env_step,
        lambda: {
            "rng_key": jax.random.key(0),
            "env": _agent()["task"].env,
            "state": jnp.array([0, 1]),
            "action": jnp.array([1, 0]),
            "t": 0,
        },
        {
            "rng_key": BAD_KEY,
            "env": _ENV(),
            "state": st.sampled_from(
                [
                    np.array([4, 0]),
                    np.array([0, 2]),
                    np.array([-1, 0]),
                    np.array([0.0, 1.0]),
                    np.array([0]),
                    "ab",
                ]
            ),
            "action": st.sampled_from(
                [
                    np.array([4, 0]),
                    np.array([0, 1]),
                    np.array([0.5, 0]),
                    np.zeros(3, int),
                ]
            ),
            "t": st.sampled_from([1.5, "a", np.zeros(2, int), None]),
        },
    ),
    "exact_posterior": Case(
        ag.exact_posterior,
        _agent_good("observation", "prior", "A"),
        dict(observation=_obs(), prior=dists(_tmaze()[1].D), **_A()),
    ),
    "expected_free_energy": Case(
        ag.expected_free_energy,
        _agent_good("qs", "A", "B", "C", "policy"),
        dict(
            qs=dists(_tmaze()[1].D),
            **_A(),
            B=dists(_tmaze()[1].B),
            C=tuple_of(_tmaze()[1].C, array),
            policy=_policies(_tmaze()[3][0], ndim=2),
        ),
    ),
    "fit_amortised": Case(
        ag.fit_amortised,
        lambda: {
            "rng_key": jax.random.key(0),
            "x": jnp.ones((5, 3)),
            "latent_dim": 2,
            "num_steps": 2,
        },
        {
            "rng_key": BAD_KEY,
            "x": _GAUSS_X(),
            "latent_dim": count(),
            "num_steps": count(),
            "learning_rate": positive(),
        },
    ),
    "gaussian_free_energy": Case(
        ag.gaussian_free_energy,
        lambda: dict(zip(("model", "rec", "x"), _gauss())),
        {
            "model": st.one_of(WRONG_TYPE, _MODEL()),
            "rec": st.one_of(WRONG_TYPE, _REC()),
            "x": _GAUSS_X(),
        },
    ),
    "generative_model": Case(
        ag.generative_model,
        lambda: dict(zip("ABCD", _tmaze()[1])),
        dict(
            **_A(),
            B=dists(_tmaze()[1].B),
            C=tuple_of(_tmaze()[1].C, array),
            D=dists(_tmaze()[1].D),
        ),
    ),
    "infer_states": Case(
        ag.infer_states,
        # method "gd": "fpi" (the default) ignores step_size
        lambda: {**_agent_good("observation", "prior", "A")(), "method": "gd"},
        dict(
            observation=_obs(),
            prior=dists(_tmaze()[1].D),
            **_A(),
            num_iter=count(),
            method=CHOICE,
            step_size=positive(),
        ),
    ),
    "init": Case(
        ag.init,
        lambda: {"model": _agent()["model"]},
        {
            "model": st.one_of(WRONG_TYPE, st.just(_tmaze()[0])),
            "pA": tuple_of(_tmaze()[1].A, lambda g: array(g, negative=True)),
            "pB": tuple_of(_tmaze()[1].B, lambda g: array(g, negative=True)),
        },
    ),
    "joint_beliefs": Case(
        ag.joint_beliefs,
        _agent_good("qs"),
        {
            "qs": tuple_of(
                _tmaze()[1].D,
                lambda g: array(g, dist=True, valid_shape=_dist_shape(g)),
                lengths=False,
            )
        },
    ),
    "linear_gaussian_posterior": Case(
        ag.linear_gaussian_posterior,
        lambda: {"model": _gauss()[0], "x": _gauss()[2]},
        {"model": st.one_of(WRONG_TYPE, _MODEL()), "x": _GAUSS_X()},
    ),
    "log_likelihood": Case(
        ag.log_likelihood,
        _agent_good("A", "observation"),
        dict(**_A(), observation=_obs()),
    ),
    "maze5": Case(ag.maze5, dict, _TASK),
    "planning_arrays": Case(
        ag.planning_arrays,
        _agent_good("A", "C"),
        dict(**_A(), C=tuple_of(_tmaze()[1].C, array)),
    ),
    "policies_risk_ambiguity": Case(
        ag.policies_risk_ambiguity,
        _agent_good("qs", "plan", "B", "policies"),
        {
            "qs": dists(_tmaze()[1].D),
            "plan": WRONG_TYPE,
            "B": dists(_tmaze()[1].B),
            "policies": _policies(_tmaze()[3]),
        },
    ),
    "policy_posterior": Case(
        ag.policy_posterior,
        lambda: {"G": jnp.zeros(4), "policy_precision": 16.0},
        {
            "G": array(np.zeros(4), valid_shape=lambda s: len(s) == 1 and s[0] > 0),
            "policy_precision": nonneg(),
        },
    ),
    "policy_tree": Case(
        ag.policy_tree,
        _agent_good("policies"),
        {
            "policies": _policies(_tmaze()[3]).filter(
                lambda p: (
                    not (
                        np.asarray(p).dtype.kind in "iu"
                        and np.asarray(p).ndim == 3
                        and np.asarray(p).size
                        and np.asarray(p).min() >= 0
                    )
                )
            )
        },
    ),
    "reversal_bandit": Case(
        ag.reversal_bandit,
        dict,
        {
            "reward_probabilities": array(np.array([0.85, 0.15]), negative=True),
            "switch_time": count(minimum=-1),
            "agent_model": CHOICE,
            "volatility": unit(),
            "preferences": array(np.array([2.0, -3.0])),
        },
    ),
    "rollout": Case(
        lambda **kw: _rollout(**kw),
        dict,
        {
            "rng_key": BAD_KEY,
            "state": st.one_of(WRONG_TYPE, st.just(_tmaze()[1])),
            "env": st.one_of(_ENV(), st.just(ag.maze5().env)),
            "params": st.one_of(WRONG_TYPE, _PARAMS()),
            "policies": _policies(_tmaze()[3]),
            "num_agents": count(),
            "num_steps": count(),
            "num_iter": count(),
            "inference": CHOICE,
            "selection": CHOICE,
        },
    ),
    "sample_categorical": Case(
        ag.sample_categorical,
        lambda: {"u": 0.3, "probs": jnp.array([0.5, 0.5])},
        {
            "u": unit(),
            "probs": st.sampled_from(
                [
                    np.array([-0.5, 1.5]),
                    np.zeros(2),
                    np.array([NAN, 1.0]),
                    np.array(["a", "b"]),
                    np.float32(1.0),
                ]
            ),
        },
    ),
    "tmaze": Case(ag.tmaze, dict, _TASK),
    "tree_risk_ambiguity": Case(
        ag.tree_risk_ambiguity,
        _agent_good("qs", "plan", "B", "tree"),
        {
            "qs": dists(_tmaze()[1].D),
            "plan": WRONG_TYPE,
            "B": dists(_tmaze()[1].B),
            "tree": st.one_of(WRONG_TYPE, st.just(_tmaze()[3])),
        },
    ),
    "variational_free_energy": Case(
        ag.variational_free_energy,
        lambda: {
            "qs": _agent()["qs"],
            "log_prior": _log_prior(),
            "loglik": _agent()["loglik"],
        },
        {
            "qs": dists(_tmaze()[1].D),
            "log_prior": tuple_of(_log_prior(), array),
            "loglik": array(np.zeros((4, 2))),
        },
    ),
}


# ---------------------------------------------------------------------------- ep cases
def _ep_good(*names):
    def good():
        net, params, x, target = _ep()
        pool = {
            "energy": net,
            "params": params,
            "x": x,
            "target": target,
            "rng_key": jax.random.key(0),
            "nudge": 0.5,
            "step_size": 0.5,
            "tol": 1e-4,
            "optimizer": optax.sgd(0.1),
            "layers": ep.initial_layers(net, params, x),
        }
        return {k: pool[k] for k in names}

    return good


_X = lambda: array(
    np.full((3, 4), 0.5), valid_shape=lambda s: len(s) == 2 and s[1] == 4 and s[0] > 0
)
_T = lambda: array(np.eye(2)[[0, 1, 0]])
_ENERGY = st.one_of(WRONG_TYPE, st.just(optax.sgd(0.1)))
_LAYER_SIZES = st.sampled_from([(4,), (4, 0, 2), (4.5, 3), "abc", None, (True, 3), ()])
_EP_PARAMS = lambda: st.one_of(
    st.just(None),
    st.just(_ep()[1][:1]),
    st.just(ep.glorot_params(jax.random.key(0), (4, 5, 2))),
    st.just(jax.tree.map(lambda a: a.at[0].set(NAN), _ep()[1])),
)
_LAYERS = lambda: tuple_of(ep.initial_layers(*_ep()[:3]), lambda g: array(g))
_OPT = st.sampled_from([None, "sgd", 3, optax.sgd])
_STRUCT = {
    "variant": CHOICE,
    "init_mode": CHOICE,
    "max_steps": count(),
    "schedule": CHOICE,
    "cost_fn": NOT_CALLABLE,
}


def _fit_data():
    x = np.full((4, 4), 0.5, np.float32)
    return ep.Dataset(x, np.array([0, 1, 0, 1]), x[:2], np.array([1, 0]))


_DATA = st.one_of(
    WRONG_TYPE,
    fields(
        _fit_data,
        x_train=array(_fit_data().x_train, valid_shape=lambda s: False),
        x_test=st.sampled_from(
            [np.zeros((0, 4)), np.full((2, 4), NAN), np.ones((2, 3))]
        ),
        y_train=st.sampled_from(
            [np.array([0, 1, 0, 5]), np.eye(2)[[0, 1, 0, 1]], np.zeros(3, int)]
        ),
    ).map(lambda b: Bad(b.value, "data" if b.name != "y_train" else "y_train")),
)
_CONFIG = st.one_of(
    WRONG_TYPE,
    fields(
        lambda: ep.EPConfig(batch_size=2, num_epochs=1),
        nudge=positive(),
        step_size=positive(),
        tol=positive(),
        batch_size=st.sampled_from([0, 5, 2.0, None]),
        num_epochs=count(),
        variant=CHOICE,
        init_mode=CHOICE,
        max_steps=count(),
        schedule=CHOICE,
        cost_fn=NOT_CALLABLE,
    ),
)

EP_CASES = {
    "ConditionalGaussian": Case(
        ep.ConditionalGaussian,
        lambda: {"layer_sizes": (4, 3, 2)},
        {"layer_sizes": _LAYER_SIZES, "activation": NOT_CALLABLE},
    ),
    "RestrictedHopfield": Case(
        ep.RestrictedHopfield,
        lambda: {"layer_sizes": (4, 3, 2)},
        {
            "layer_sizes": _LAYER_SIZES,
            "activation": NOT_CALLABLE,
            "init_scale": nonneg(),
        },
    ),
    "as_top_level_api": Case(
        ep.as_top_level_api,
        _ep_good("energy", "optimizer", "nudge", "step_size", "tol"),
        dict(
            energy=_ENERGY,
            optimizer=_OPT,
            nudge=positive(),
            step_size=positive(),
            tol=positive(),
            **_STRUCT,
        ),
    ),
    "build_gradient_fn": Case(
        ep.build_gradient_fn,
        _ep_good("energy"),
        dict(energy=_ENERGY, max_nudged_steps=count(none_ok=True), **_STRUCT),
    ),
    "build_gradient_fn/grad_fn": Case(
        lambda energy, **kw: ep.build_gradient_fn(energy)(**kw),
        _ep_good(
            "energy", "rng_key", "params", "x", "target", "nudge", "step_size", "tol"
        ),
        {
            "rng_key": BAD_KEY,
            "params": _EP_PARAMS(),
            "x": _X(),
            "target": _T(),
            "nudge": positive(),
            "step_size": positive(),
            "tol": positive(),
        },
    ),
    "build_kernel": Case(
        ep.build_kernel,
        _ep_good("energy", "optimizer"),
        dict(energy=_ENERGY, optimizer=_OPT, **_STRUCT),
    ),
    "build_kernel/kernel": Case(
        lambda energy, optimizer, params, **kw: ep.build_kernel(energy, optimizer)(
            state=ep.init(params, optimizer), **kw
        ),
        _ep_good(
            "energy",
            "optimizer",
            "params",
            "rng_key",
            "x",
            "target",
            "nudge",
            "step_size",
            "tol",
        ),
        {
            "rng_key": BAD_KEY,
            "x": _X(),
            "target": _T(),
            "nudge": positive(),
            "step_size": positive(),
            "tol": positive(),
            "params": _EP_PARAMS(),
        },
    ),
    "build_kernel/kernel state": Case(
        lambda energy, optimizer, **kw: ep.build_kernel(energy, optimizer)(**kw),
        lambda: {
            **_ep_good(
                "energy",
                "optimizer",
                "rng_key",
                "x",
                "target",
                "nudge",
                "step_size",
                "tol",
            )(),
            "state": ep.init(_ep()[1], optax.sgd(0.1)),
        },
        {"state": st.one_of(WRONG_TYPE, st.just(_ep()[1]))},
    ),
    "cross_entropy": Case(
        ep.cross_entropy,
        lambda: {"output": jnp.zeros((3, 2)), "target": _ep()[3]},
        {"output": array(np.zeros((3, 2))), "target": _T()},
    ),
    "fit": Case(
        ep.fit,
        lambda: {
            **_ep_good("rng_key", "params", "energy", "optimizer")(),
            "data": _fit_data(),
            "config": ep.EPConfig(batch_size=2, num_epochs=1),
        },
        {
            "rng_key": BAD_KEY,
            "params": _EP_PARAMS(),
            "energy": _ENERGY,
            "optimizer": _OPT,
            "data": _DATA,
            "config": _CONFIG,
        },
    ),
    "glorot_params": Case(
        ep.glorot_params,
        lambda: {"rng_key": jax.random.key(0), "layer_sizes": (4, 3, 2)},
        {"rng_key": BAD_KEY, "layer_sizes": _LAYER_SIZES, "scale": nonneg()},
    ),
    "init": Case(
        ep.init,
        _ep_good("params", "optimizer"),
        {
            "params": st.sampled_from(
                [None, {}, (), {"w": "abc"}, {"w": np.array([NAN])}]
            ),
            "optimizer": _OPT,
        },
    ),
    "initial_layers": Case(
        ep.initial_layers,
        _ep_good("energy", "params", "x"),
        {"energy": _ENERGY, "params": _EP_PARAMS(), "x": _X(), "init_mode": CHOICE},
    ),
    "load_digits_split": Case(
        ep.load_digits_split,
        dict,
        {
            "test_size": st.sampled_from([0.0, 1.0, -0.5, 1.5, NAN, "0.2", 5, None]),
            "random_state": st.sampled_from([-1, 1.5, "0", None, 2**33]),
        },
    ),
    "predict": Case(
        ep.predict,
        _ep_good("params", "x", "energy"),
        {
            "params": _EP_PARAMS(),
            "x": _X(),
            "step_size": positive(),
            "tol": positive(),
            "energy": _ENERGY,
            "init_mode": CHOICE,
            "max_steps": count(),
            "schedule": CHOICE,
        },
    ),
    "reference_gradient": Case(
        ep.reference_gradient,
        _ep_good("params", "x", "target", "layers", "energy"),
        {
            "params": _EP_PARAMS(),
            "x": _X(),
            "target": _T(),
            "layers": _LAYERS(),
            "energy": _ENERGY,
            "cost_fn": NOT_CALLABLE,
            "step_size": positive(),
            "tol": positive(),
            "max_steps": count(),
            "method": CHOICE,
            "schedule": CHOICE,
        },
    ),
    "relax": Case(
        ep.relax,
        _ep_good("params", "x", "target", "nudge", "layers", "energy"),
        {
            "params": _EP_PARAMS(),
            "x": _X(),
            "target": _T(),
            "nudge": st.one_of(NOT_NUMBER, NOT_FINITE),
            "layers": _LAYERS(),
            "energy": _ENERGY,
            "cost_fn": NOT_CALLABLE,
            "step_size": positive(),
            "tol": positive(),
            "max_steps": count(),
            "schedule": CHOICE,
        },
    ),
    "squared_error": Case(
        ep.squared_error,
        lambda: {"output": jnp.zeros((3, 2)), "target": _ep()[3]},
        {"output": array(np.zeros((3, 2))), "target": _T()},
    ),
    "warn_if_unconverged": Case(
        ep.warn_if_unconverged,
        lambda: {"converged": np.array([True])},
        {
            "converged": st.sampled_from(
                [np.array([1.0, 0.0]), "yes", None, np.array([1, 0])]
            )
        },
    ),
}


# -------------------------------------------------------------------- reversible cases
def _rev_good(*names):
    def good():
        stack, params, x = _rev()
        pool = {"stack": stack, "params": params, "x": x, "y": x}
        return {k: pool[k] for k in names}

    return good


_STACK = st.one_of(WRONG_TYPE, st.just(rev.additive_coupling(rev.mlp_residual())))
_REV_PARAMS = lambda: st.one_of(
    WRONG_TYPE,
    st.just(rev.init_coupling_mlp(jax.random.key(0), 2, 6, 4)),
    st.just(rev.init_coupling_mlp(jax.random.key(0), 2, 4, 4, affine=True)),
    st.just(
        rev.CouplingParams(_rev()[1].f, jax.tree.map(lambda a: a[:1], _rev()[1].g))
    ),
    st.just(jax.tree.map(lambda a: a[:0], _rev()[1])),
    st.just(jax.tree.map(lambda a: a.at[0].set(NAN), _rev()[1])),
)
_REV_X = lambda: st.one_of(
    array(np.ones((2, 4)), valid_shape=lambda s: len(s) >= 1 and s[-1] == 4),
    st.just(np.ones((2, 4), np.int32)),
)
_REV_CALL = {"stack": _STACK, "rng_key": BAD_KEY}

REV_CASES = {
    "additive_coupling": Case(
        rev.additive_coupling,
        lambda: {"f": rev.mlp_residual()},
        {
            "f": NOT_CALLABLE,
            "g": st.sampled_from([3, "g"]),
            "fixed_point_bits": st.sampled_from([0, 53, -1, 16.0, "16", True]),
        },
    ),
    "affine_coupling": Case(
        rev.affine_coupling,
        lambda: {"f": rev.mlp_residual()},
        {"f": NOT_CALLABLE, "g": st.sampled_from([3, "g"])},
    ),
    "compiled_cost": Case(
        lambda fn: rev.compiled_cost(fn, jnp.ones(2)),
        lambda: {"fn": jnp.sin},
        {"fn": NOT_CALLABLE},
    ),
    "default_residual_scale": Case(
        rev.default_residual_scale, lambda: {"depth": 4}, {"depth": count()}
    ),
    "forward": Case(
        rev.forward,
        _rev_good("stack", "params", "x"),
        dict(params=_REV_PARAMS(), x=_REV_X(), **_REV_CALL),
    ),
    "init_coupling_mlp": Case(
        rev.init_coupling_mlp,
        lambda: {"rng_key": jax.random.key(0), "depth": 2, "dim": 4, "hidden": 4},
        {
            "rng_key": BAD_KEY,
            "depth": count(),
            "dim": st.one_of(count(2), st.sampled_from([3, 5])),
            "hidden": count(),
            "affine": st.sampled_from([None, 1, "yes"]),
            "scale": nonneg(),
            "dtype": st.sampled_from([jnp.int32, "floot", 3, bool]),
        },
    ),
    "inverse": Case(
        rev.inverse,
        _rev_good("stack", "params", "y"),
        dict(params=_REV_PARAMS(), y=_REV_X(), **_REV_CALL),
    ),
    "mlp_residual": Case(
        rev.mlp_residual,
        dict,
        {"activation": NOT_CALLABLE, "dropout_rate": unit(open_high=True)},
    ),
    "reconstruction_error": Case(
        rev.reconstruction_error,
        _rev_good("stack", "params", "x"),
        dict(
            params=_REV_PARAMS(),
            x=_REV_X(),
            threshold=st.one_of(NOT_NUMBER, st.sampled_from([NAN, -1.0, -INF])),
            **_REV_CALL,
        ),
    ),
    "reversible_stack": Case(
        rev.reversible_stack,
        lambda: {"coupling": rev.additive_coupling(rev.mlp_residual())},
        {
            "coupling": st.one_of(WRONG_TYPE, st.just(rev.mlp_residual())),
            "backprop": CHOICE,
            "checkpoint_every": st.sampled_from([0, -2, 2.0, "2", True]),
            "dtype": st.sampled_from([jnp.int32, "floot", 3, bool]),
        },
    ),
}

CASES = {
    **{f"agent.{k}": v for k, v in AGENT_CASES.items()},
    **{f"ep.{k}": v for k, v in EP_CASES.items()},
    **{f"reversible.{k}": v for k, v in REV_CASES.items()},
}


@pytest.mark.parametrize("case_name", sorted(CASES))
@SETTINGS
@given(data=st.data())
def test_bad_input_is_a_clear_error(case_name, data):
    case = CASES[case_name]
    arg = data.draw(st.sampled_from(sorted(case.bad)), label="argument")
    value = data.draw(case.bad[arg], label="value")
    name = arg
    if isinstance(value, Bad):
        value, name = value.value, value.name
    kwargs = {**case.good(), arg: value}
    with pytest.raises(ERRORS) as err:
        case.call(**kwargs)
    assert _names_arg(str(err.value), name), (case_name, name, str(err.value))


@SETTINGS
@given(
    shape=st.lists(st.integers(0, 3), max_size=3).map(tuple),
    fill=st.one_of(st.floats(width=32), st.sampled_from([NAN, INF, -INF, 0.0, 1.0])),
)
def test_hard_sigmoid_elementwise_result_on_any_shape(shape, fill):
    """The activation accepts any real array (NaN propagates): the correct result."""
    x = np.full(shape, fill, np.float32)
    out = np.asarray(ep.hard_sigmoid(jnp.asarray(x)))
    np.testing.assert_array_equal(out, np.clip(x, 0.0, 1.0))
    _raises_naming(lambda: ep.hard_sigmoid(np.array(["a"])), "x")


# ======================================================================== (c) coverage
# Names in __all__ that take no user input of their own (result / container types,
# constants, warnings): each with the reason it needs no bad-input test.
EXEMPT = {
    "agent.AgentInfo": "per-step result NamedTuple, built by the kernel",
    "agent.AgentParams": "container; its fields are validated by rollout / the kernel",
    "agent.AgentState": "container built by init; checked by type in rollout / kernel",
    "agent.EFETerms": "result NamedTuple",
    "agent.Environment": "container; validated by env_reset / env_step / rollout",
    "agent.GaussianFreeEnergy": "result NamedTuple",
    "agent.GenerativeModel": "container built by generative_model (validated there)",
    "agent.InferenceResult": "result NamedTuple",
    "agent.LinearGaussianModel": "container; validated by the Gaussian functions",
    "agent.PlanningArrays": "container built by planning_arrays; type-checked on use",
    "agent.PolicyTree": "container built by policy_tree; type-checked on use",
    "agent.Recognition": "container; validated by gaussian_free_energy",
    "agent.TaskSpec": "result NamedTuple of the task builders",
    "agent.Trajectory": "result NamedTuple of rollout",
    "ep.Dataset": "container; validated by fit",
    "ep.EPAlgorithm": "result NamedTuple of as_top_level_api",
    "ep.EPConfig": "container; every field validated by fit (see the fit case)",
    "ep.EPInfo": "result NamedTuple",
    "ep.EPState": "container built by init; type-checked by the kernel",
    "ep.Energy": "container; validated by every function that consumes it",
    "ep.FitResult": "result NamedTuple",
    "ep.History": "result NamedTuple",
    "ep.ReferenceInfo": "result NamedTuple",
    "ep.RelaxInfo": "result NamedTuple",
    "ep.hard_sigmoid": "elementwise; property-tested for the correct result above",
    "reversible.BACKPROP_MODES": "constant tuple of option names",
    "reversible.CompiledCost": "result NamedTuple",
    "reversible.Coupling": "container built by additive/affine_coupling",
    "reversible.CouplingParams": "container; validated by forward / inverse",
    "reversible.ReconstructionInfo": "result NamedTuple",
    "reversible.ReconstructionWarning": "warning class",
    "reversible.ReversibleStack": "container built by reversible_stack; re-checked",
}


def test_every_public_name_is_covered_or_exempt():
    covered = {name.split("/")[0] for name in CASES}
    missing, stale = [], []
    for prefix, module in (("agent", ag), ("ep", ep), ("reversible", rev)):
        for name in module.__all__:
            key = f"{prefix}.{name}"
            if key not in covered and key not in EXEMPT:
                missing.append(key)
    stale = [k for k in EXEMPT if k in covered]
    assert not missing, f"public names without a bad-input test or exemption: {missing}"
    assert not stale, f"exempt names that are also covered: {stale}"
    assert all(reason.strip() for reason in EXEMPT.values())


def test_fixed_point_inference_ignores_its_unused_step_size():
    """"fpi" has no step: step_size=0 (as the T-maze study passes) is not an error."""
    model = _tmaze()[1]
    obs = (jnp.asarray(1), jnp.asarray(0), jnp.asarray(1))
    prior = (jnp.eye(4)[1], model.D[1])
    res = ag.infer_states(obs, prior, model.A, num_iter=8, method="fpi", step_size=0.0)
    assert np.all(np.isfinite(np.asarray(res.free_energy_trace)))
