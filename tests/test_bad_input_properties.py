"""Property-based bad-input suite for every public name of ``slt_sampler``, its zoo and
``slt_sampler.training`` (part 2, the dictionary and its parts, is in
``test_bad_input_dictionary.py``).

Hypothesis generates bad numbers, shapes, pytrees, NaN/inf, empty and out-of-range
inputs; every entry point must answer with a ``ValueError``/``TypeError`` whose message
names the argument. Bad input must fail before anything is compiled, so the whole file
runs in seconds. ``test_every_public_name_is_covered`` keeps the list honest: a new
public name fails it until it has a test here or a stated exemption.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slt_sampler
from slt_sampler import (
    BAOAB,
    HMC,
    MALA,
    NUTS,
    PSGLD,
    SGHMC,
    SGLD,
    CalibrationConfig,
    calibrate_sgld,
    configurational_temperature,
    default_beta,
    estimate_llc,
    from_numpyro,
    full_loss,
    llc,
    logdensity,
    preconditioned_configurational_temperature,
    sample,
    tempered_posterior,
    training,
    window_adapt,
    zoo,
)
from slt_sampler.zoo import coefficients

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,  # fixed examples: the suite is a regression test, not a fuzzer
)

NOT_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
NOT_A_NUMBER = st.one_of(
    st.text(max_size=3), st.booleans(), st.just([1.0, "a"]), st.just(object())
)
NOT_POSITIVE = st.one_of(
    NOT_FINITE, st.floats(max_value=0.0, allow_nan=False), NOT_A_NUMBER
)
NEGATIVE = st.one_of(
    NOT_FINITE, st.floats(max_value=-1e-9, allow_nan=False), NOT_A_NUMBER
)
NOT_AN_INT = st.one_of(
    st.integers(max_value=0),
    st.floats(allow_nan=True),
    st.text(max_size=2),
    st.booleans(),
)
NOT_A_SCALAR = st.integers(1, 4).map(lambda k: np.full((k,), 0.5))


def _named(fn, *names):
    """``fn()`` raises ValueError/TypeError whose message names one of ``names``."""
    with pytest.raises((ValueError, TypeError)) as err:
        fn()
    msg = str(err.value)
    assert any(n in msg for n in names), f"{names} not named in: {msg}"


def _loglik(w, b):
    x, y = b
    return -0.5 * (y - x @ w["w"]) ** 2 - 0.9189385


@pytest.fixture(scope="module")
def post():
    x = jax.random.normal(jax.random.key(0), (64, 2))
    y = x @ jnp.array([1.0, -1.0]) + jax.random.normal(jax.random.key(1), (64,))
    w_hat = {"w": jnp.linalg.lstsq(x, y)[0]}
    return tempered_posterior(_loglik, (x, y), gamma=1.0, center=w_hat)


# --- posterior constructors -----------------------------------------------------------


@SETTINGS
@given(beta=st.one_of(NOT_POSITIVE, NOT_A_SCALAR))
def test_tempered_posterior_beta(post, beta):
    _named(lambda: tempered_posterior(_loglik, post.data, beta=beta), "beta")
    _named(lambda: post.replace(beta=beta), "beta")


@SETTINGS
@given(gamma=st.one_of(NEGATIVE, NOT_A_SCALAR))
def test_tempered_posterior_gamma(post, gamma):
    _named(lambda: tempered_posterior(_loglik, post.data, gamma=gamma), "gamma")


@SETTINGS
@given(
    case=st.sampled_from(["nan", "inf", "mismatch", "empty", "scalar", "no leaves"]),
    row=st.integers(0, 63),
)
def test_tempered_posterior_data(post, case, row):
    x, y = (np.asarray(a) for a in post.data)
    if case == "nan":
        data = (x, np.where(np.arange(64) == row, np.nan, y))
    elif case == "inf":
        data = (np.where(np.arange(64)[:, None] == row, np.inf, x), y)
    elif case == "mismatch":
        data = (x, y[: row % 63])
    elif case == "empty":
        data = (x[:0], y[:0])
    elif case == "scalar":
        data = (x, np.float32(row))
    else:
        data = ()
    _named(lambda: tempered_posterior(_loglik, data), "data")


@SETTINGS
@given(
    case=st.sampled_from(["nan", "wrong tree", "wrong shape", "extra leaf"]),
    value=st.floats(-3, 3),
)
def test_center(post, case, value):
    w = post.center["w"]
    bad = {
        "nan": {"w": w.at[0].set(jnp.nan)},
        "wrong tree": [w],
        "wrong shape": {"w": jnp.full((3,), value)},
        "extra leaf": {"w": w, "b": jnp.asarray(value)},
    }[case]
    _named(lambda: post.replace(center=bad), "center")
    if case != "extra leaf":  # without a previous centre only loglik_fn can tell
        _named(
            lambda: tempered_posterior(_loglik, post.data, gamma=1.0, center=bad),
            "center",
        )


@SETTINGS
@given(out=st.sampled_from(["mean", "sum", "b x b", "b x 2"]))
def test_loglik_fn_must_be_per_datum(post, out):
    def bad(w, b):
        ll = _loglik(w, b)
        return {
            "mean": jnp.mean(ll),
            "sum": jnp.sum(ll),
            "b x b": ll[:, None] + ll[None, :],
            "b x 2": jnp.stack([ll, ll], axis=1),
        }[out]

    _named(lambda: tempered_posterior(bad, post.data, center=post.center), "loglik_fn")


@SETTINGS
@given(fn=st.one_of(st.none(), st.integers(), st.text(max_size=3)))
def test_loglik_fn_must_be_callable(post, fn):
    _named(lambda: tempered_posterior(fn, post.data), "loglik_fn")
    _named(lambda: tempered_posterior(_loglik, post.data, logprior_fn=7), "logprior_fn")


@SETTINGS
@given(n=st.one_of(st.integers(max_value=1), st.floats(), st.text(max_size=2)))
def test_default_beta(n):
    _named(lambda: default_beta(n), "n")


@SETTINGS
@given(
    params=st.sampled_from([[jnp.zeros(2)], {"w": jnp.zeros(3)}, {"v": jnp.zeros(2)}])
)
def test_full_loss_and_logdensity_params(post, params):
    _named(lambda: full_loss(post, params), "params")
    _named(lambda: logdensity(post, params), "params")
    _named(lambda: full_loss("not a posterior", post.center), "posterior")


def _nmodel(x, y):
    import numpyro
    import numpyro.distributions as dist

    w = numpyro.sample("w", dist.Normal(0, 1))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Normal(w * x, 1.0), obs=y)


@SETTINGS
@given(
    case=st.sampled_from(["empty", "mismatch", "nan", "center", "no data", "model"]),
    k=st.integers(1, 9),
)
def test_from_numpyro(case, k):
    x = jnp.linspace(-1, 1, 10)
    y = 2 * x
    key = jax.random.key(0)
    if case == "empty":
        _named(lambda: from_numpyro(key, _nmodel, x[:0], y[:0]), "data")
    elif case == "mismatch":
        _named(lambda: from_numpyro(key, _nmodel, x, y[:k]), "data")
    elif case == "nan":
        _named(lambda: from_numpyro(key, _nmodel, x, y.at[k].set(jnp.nan)), "data")
    elif case == "center":
        _named(
            lambda: from_numpyro(key, _nmodel, x, y, gamma=1.0, center={"v": 1.0}),
            "center",
        )
    elif case == "no data":
        _named(lambda: from_numpyro(key, _nmodel), "data")
    else:
        _named(lambda: from_numpyro(key, "model", x, y), "model")


# --- samplers and the driver ----------------------------------------------------------


# samplers are pytrees that JAX rebuilds with placeholder leaves inside transforms, so
# their numeric fields let non-numeric objects through (strings and bools still fail)
SAMPLER_NOT_POSITIVE = st.one_of(
    NOT_FINITE,
    st.floats(max_value=0.0, allow_nan=False),
    st.text(max_size=3),
    st.booleans(),
    st.just([1.0, "a"]),
)


@SETTINGS
@given(eps=SAMPLER_NOT_POSITIVE)
def test_sampler_step_sizes(eps):
    for make in (
        lambda: SGLD(eps, 10),
        lambda: SGHMC(eps),
        lambda: PSGLD(eps),
        lambda: BAOAB(eps, 1.0),
        lambda: MALA(eps),
        lambda: HMC(eps, jnp.ones(2)),
        lambda: NUTS(eps, jnp.ones(2)),
    ):
        _named(make, "step_size")


@SETTINGS
@given(k=st.one_of(st.integers(max_value=0), st.floats(0.5, 3), st.text(max_size=2)))
def test_sampler_integer_options(k):
    _named(lambda: SGLD(1e-3, k), "batch_size")
    _named(lambda: SGHMC(1e-3, num_integration_steps=k), "num_integration_steps")
    _named(lambda: HMC(1e-3, jnp.ones(2), k), "num_integration_steps")
    _named(lambda: NUTS(1e-3, jnp.ones(2), k), "max_num_doublings")
    _named(lambda: SGHMC(1e-3, friction=-1.0 - abs(hash(str(k))) % 3), "friction")
    _named(lambda: BAOAB(1e-3, -1.0 - abs(hash(str(k))) % 3), "friction")
    _named(lambda: BAOAB(1e-3, 1.0, k), "batch_size")
    _named(lambda: NUTS(1e-3, -jnp.ones(2)), "inverse_mass_matrix")


@SETTINGS
@given(
    arg=st.sampled_from(["num_chains", "num_steps", "thinning", "chunk_steps"]),
    value=NOT_AN_INT,
)
def test_sample_counts(post, arg, value):
    kw = {"num_chains": 2, "num_steps": 10}
    kw[arg] = value
    _named(
        lambda: sample(jax.random.key(0), SGLD(1e-3, 8), post, post.center, **kw), arg
    )


@SETTINGS
@given(case=st.sampled_from(["nan", "tree", "shape", "sampler", "posterior", "chains"]))
def test_sample_arguments(post, case):
    key, smp, w = jax.random.key(0), SGLD(1e-3, 8), post.center
    kw = {"num_chains": 2, "num_steps": 10}
    if case == "nan":
        _named(
            lambda: sample(key, smp, post, {"w": w["w"] * jnp.nan}, **kw),
            "init_position",
        )
    elif case == "tree":
        _named(lambda: sample(key, smp, post, [w["w"]], **kw), "init_position")
    elif case == "shape":
        _named(
            lambda: sample(key, smp, post, {"w": jnp.ones(5)}, **kw), "init_position"
        )
    elif case == "sampler":
        _named(lambda: sample(key, "sgld", post, w, **kw), "sampler")
    elif case == "posterior":
        _named(lambda: sample(key, smp, post.data, w, **kw), "posterior")
    else:
        _named(
            lambda: sample(key, smp, post, w, chains_axis=True, **kw), "init_position"
        )


@SETTINGS
@given(
    arg=st.sampled_from(["num_steps", "max_trials", "tolerance", "init_step_size"]),
    value=st.one_of(NOT_POSITIVE, st.just(1.5), st.integers(-5, 0)),
)
def test_calibrate_sgld_and_calibration_config(post, arg, value):
    fields = {
        "num_steps": 500,
        "tolerance": 0.05,
        "max_trials": 2,
        "init_step_size": None,
    }
    fields[arg] = value
    if arg != "tolerance" and value == 1.5:
        return  # 1.5 is a valid step size, and not an int count at all (covered)
    _named(
        lambda: calibrate_sgld(
            jax.random.key(0), post, post.center, batch_size=8, **fields
        ),
        arg,
    )
    _named(
        lambda: estimate_llc(
            jax.random.key(0), post, calibration=CalibrationConfig(**fields)
        ),
        arg,
    )


@SETTINGS
@given(case=st.sampled_from(["tree", "nan", "probes", "posterior"]))
def test_configurational_temperature(post, case):
    key, w = jax.random.key(0), post.center["w"]
    if case == "tree":
        _named(
            lambda: configurational_temperature(key, post, [jnp.ones((4, 2))]),
            "positions",
        )
    elif case == "nan":
        _named(
            lambda: configurational_temperature(
                key, post, {"w": jnp.full((4, 2), jnp.nan)}
            ),
            "positions",
        )
    elif case == "probes":
        _named(
            lambda: configurational_temperature(
                key, post, {"w": w[None]}, num_probes=0
            ),
            "num_probes",
        )
    else:
        _named(lambda: configurational_temperature(key, None, {"w": w}), "posterior")
    G = {"w": jnp.ones(2)}
    pct = preconditioned_configurational_temperature
    bad = {"tree": [jnp.ones((4, 2))], "nan": {"w": jnp.full((4, 2), jnp.nan)}}
    if case in bad:
        _named(lambda: pct(key, post, bad[case], G), "positions")
    _named(lambda: pct(key, post, {"w": w[None]}, {"w": -jnp.ones(2)}), "G")


@SETTINGS
@given(case=st.sampled_from(["sampler", "chains", "steps", "rate", "position"]))
def test_window_adapt(post, case):
    key, nuts = jax.random.key(0), NUTS(1.0, jnp.ones(2))
    kw = {"num_chains": 2, "num_steps": 10}
    if case == "sampler":
        _named(lambda: window_adapt(key, MALA(1e-3), post, post.center, **kw), "HMC")
    elif case == "chains":
        _named(
            lambda: window_adapt(key, nuts, post, post.center, num_chains=0),
            "num_chains",
        )
    elif case == "steps":
        _named(
            lambda: window_adapt(
                key, nuts, post, post.center, num_chains=2, num_steps=-1
            ),
            "num_steps",
        )
    elif case == "rate":
        _named(
            lambda: window_adapt(
                key, nuts, post, post.center, target_acceptance_rate=1.2, **kw
            ),
            "target_acceptance_rate",
        )
    else:
        _named(
            lambda: window_adapt(key, nuts, post, {"w": jnp.ones(3)}, **kw), "position"
        )


# --- estimators and the workflow ------------------------------------------------------


@SETTINGS
@given(
    case=st.sampled_from(["ndim", "nan", "empty", "n", "beta", "init_loss", "type"]),
    bad=st.one_of(NOT_POSITIVE, st.integers(max_value=0)),
)
def test_llc(case, bad):
    trace = np.ones((2, 50))
    kw = {"n": 100, "beta": 0.2}
    if case == "ndim":
        _named(lambda: llc(np.ones(50), 1.0, **kw), "losses")
    elif case == "nan":
        _named(lambda: llc(np.where(trace > 0, np.nan, 1), 1.0, **kw), "losses")
    elif case == "empty":
        _named(lambda: llc(np.ones((2, 0)), 1.0, **kw), "losses")
    elif case == "n":
        _named(lambda: llc(trace, 1.0, n=bad, beta=0.2), "n")
    elif case == "beta":
        _named(lambda: llc(trace, 1.0, n=100, beta=bad), "beta")
    elif case == "init_loss":
        _named(lambda: llc(trace, math.nan, **kw), "init_loss")
    else:
        _named(lambda: llc("losses", 1.0, **kw), "losses")


@SETTINGS
@given(
    arg=st.sampled_from(
        [
            "sampler",
            "step_size",
            "batch_size",
            "num_chains",
            "num_steps",
            "max_steps",
            "target_rel_mcse",
            "burn_in",
            "gamma_check",
            "calibration",
        ]
    ),
    value=st.one_of(NOT_POSITIVE, st.integers(-3, 0), st.just(2.5)),
)
def test_estimate_llc_arguments(post, arg, value):
    if arg in ("step_size",) and value == 2.5:
        return  # a valid (if large) step size
    if arg == "target_rel_mcse" and value == 0:
        value = 1.5
    if arg == "burn_in":
        value = 10_000 if value == 2.5 else value  # >= num_steps, or negative
        if isinstance(value, int) and value == 0:
            return  # 0 is a valid burn-in
    if arg == "gamma_check":
        value = (value,)
    if arg == "calibration":
        value = {"tolerance": value}
    kw = {"num_steps": 100, "gamma_check": ()}
    kw[arg] = value
    _named(lambda: estimate_llc(jax.random.key(0), post, **kw), arg)


def test_estimate_llc_needs_a_center(post):
    _named(lambda: estimate_llc(jax.random.key(0), post.replace(center=None)), "center")
    _named(lambda: estimate_llc(jax.random.key(0), post.data), "posterior")


# --- the zoo --------------------------------------------------------------------------


@SETTINGS
@given(bad=NOT_AN_INT)
def test_zoo_model_sizes(bad):
    key = jax.random.key(0)
    _named(lambda: zoo.regular(key, bad), "d")
    _named(lambda: zoo.reduced_rank(key, bad, 2, 2, 1), "M")
    _named(lambda: zoo.deep_linear(key, [3, bad, 3], 1), "widths[1]")
    _named(lambda: zoo.linear_network(key, [2, 2], 1, n=bad), "n")
    _named(lambda: zoo.monomial_regression(key, [1, bad]), "powers[1]")
    _named(lambda: coefficients.regular(bad), "d")
    _named(lambda: coefficients.deep_linear_network([3, bad, 3], 1), "widths")


@SETTINGS
@given(r=st.integers(4, 50), sigma=NOT_POSITIVE)
def test_zoo_ranges(r, sigma):
    key = jax.random.key(0)
    _named(lambda: zoo.deep_linear(key, [3, 3, 3], r), "r")
    _named(lambda: zoo.regular(key, 2, sigma=sigma), "sigma")
    _named(lambda: zoo.linear_network(key, [2, 2], 1, minimiser="best"), "minimiser")
    _named(lambda: zoo.monomial_regression(key, []), "powers")
    _named(lambda: zoo.linear_network(key, "10x10", 1), "widths")


@SETTINGS
@given(case=st.sampled_from(["shapes", "widths", "nan"]))
def test_zoo_helpers(case):
    x, y = np.ones((20, 3)), np.ones((20, 2))
    if case == "shapes":
        _named(lambda: zoo.balanced_minimiser(x, y[:5], [3, 2]), "x and y")
    elif case == "widths":
        _named(lambda: zoo.balanced_minimiser(x, y, [4, 2]), "widths")
    else:
        _named(lambda: zoo.balanced_minimiser(x * np.nan, y, [3, 2]), "data")
    _named(
        lambda: zoo.minimise(lambda w: jnp.sum(w**2), jnp.ones(2), num_steps=0),
        "num_steps",
    )
    _named(lambda: zoo.minimise("f", jnp.ones(2)), "loss_fn")
    _named(lambda: zoo.minimise(lambda w: jnp.sum(w**2), jnp.ones(2) * jnp.nan), "w0")
    _named(lambda: zoo.param_count({"w": np.array(["a"])}), "params")


@SETTINGS
@given(bad=NOT_AN_INT)
def test_digits_mlp(bad):
    key = jax.random.key(0)
    _named(lambda: zoo.digits_mlp(key, hidden=(bad,)), "hidden[0]")
    _named(lambda: zoo.digits_mlp(key, n=bad), "n")


# --- coverage -------------------------------------------------------------------------

EXEMPT = {
    # result containers and exceptions: built by the library, never from user input
    "Calibration": "result of calibrate_sgld",
    "ChainDivergenceError": "exception",
    "LLCCheckError": "exception",
    "LLCEstimate": "result of estimate_llc",
    "LLCResult": "result of llc",
    "SampleResult": "result of sample",
    "ZooModel": "result of the zoo constructors",
    "coefficients": "module: its functions are covered in test_zoo_model_sizes",
    "zoo": "module: every name in zoo.__all__ is checked here too",
}
COVERED = {
    "TemperedPosterior": test_center,  # its replace(); built by tempered_posterior
    "tempered_posterior": test_tempered_posterior_data,
    "default_beta": test_default_beta,
    "full_loss": test_full_loss_and_logdensity_params,
    "logdensity": test_full_loss_and_logdensity_params,
    "from_numpyro": test_from_numpyro,
    "SGLD": test_sampler_step_sizes,
    "SGHMC": test_sampler_step_sizes,
    "MALA": test_sampler_step_sizes,
    "HMC": test_sampler_step_sizes,
    "NUTS": test_sampler_step_sizes,
    "BAOAB": test_sampler_step_sizes,  # friction, batch_size: integer options
    "PSGLD": test_sampler_step_sizes,  # alpha, eps, adapt_steps: tests/samplers/test_psgld.py
    "preconditioned_configurational_temperature": test_configurational_temperature,
    "sample": test_sample_arguments,
    "calibrate_sgld": test_calibrate_sgld_and_calibration_config,
    "CalibrationConfig": test_calibrate_sgld_and_calibration_config,
    "configurational_temperature": test_configurational_temperature,
    "window_adapt": test_window_adapt,
    "llc": test_llc,
    "estimate_llc": test_estimate_llc_arguments,
    "regular": test_zoo_model_sizes,
    "reduced_rank": test_zoo_model_sizes,
    "deep_linear": test_zoo_model_sizes,
    "linear_network": test_zoo_ranges,
    "monomial_regression": test_zoo_model_sizes,
    "balanced_minimiser": test_zoo_helpers,
    "minimise": test_zoo_helpers,
    "param_count": test_zoo_helpers,
    "digits_mlp": test_digits_mlp,
}


def test_every_public_name_is_covered():
    # part 2 maps names to test *names* (importing its test functions here would make
    # pytest collect them twice); check that each one exists
    import tests.test_bad_input_dictionary as part2

    for name, test in part2.COVERED.items():
        assert callable(getattr(part2, test, None)), f"{name}: no test {test}"
    covered = set(COVERED) | set(part2.COVERED)
    exempt = set(EXEMPT) | set(part2.EXEMPT)
    assert not set(COVERED) & set(part2.COVERED), "a name covered in both parts"
    names = set(slt_sampler.__all__) | set(zoo.__all__) | set(training.__all__)
    missing = sorted(names - covered - exempt)
    assert not missing, f"public names without a bad-input test: {missing}"
    assert not (covered | exempt) - names, "stale entries"
