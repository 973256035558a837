"""Random factories and samplers against PyTorch: every signature form gives PyTorch's shape
and dtype, the samples follow their distribution (Kolmogorov-Smirnov tests and moments
within 5 standard errors, fixed seeds), `manual_seed` and `generator=` make them
reproducible, bad arguments raise PyTorch's exception types, and the in-place samplers
follow the view rules (a sampler on a view writes into the base; on a leaf that requires
grad it is refused)."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402

N = 20000  # samples per statistical test


def both(expr):
    """expr evaluated with `lib` bound to minifm, then to torch."""
    return eval(expr, {"lib": minifm}), eval(expr, {"lib": torch})


def dtype_name(dtype):
    return str(dtype).split(".")[-1]


# ----------------------------------------------------------------------------- forms
FORMS = [
    "lib.randint(10, (3, 4))", "lib.randint(3, 10, (3, 4))", "lib.randint(10, size=(3, 4))",
    "lib.randint(high=10, size=(2,))", "lib.randint(low=2, high=10, size=(2, 5))",
    "lib.randint(2, 10, size=[5])", "lib.randint(-5, 5, (4,), dtype=lib.int32)",
    "lib.randint(10, (3,), dtype=lib.float32)", "lib.randint(0, 200, (3,), dtype=lib.uint8)",
    "lib.randint(10, (3,), dtype=lib.float64, requires_grad=True)",
    "lib.randint(10, (3,), generator=lib.Generator().manual_seed(1))",
    "lib.randint(10, (3,), device='cpu')", "lib.randint(5, ())",
    "lib.rand(2, 3)", "lib.rand((2, 3))", "lib.rand([2, 3])", "lib.rand(size=(2, 3))",
    "lib.rand(4, dtype=lib.float64)", "lib.rand(2, 3, requires_grad=True)", "lib.rand(())",
    "lib.rand(0, 3)", "lib.randn(2, 3)", "lib.randn((2, 3))", "lib.randn(size=[4])",
    "lib.randn(3, dtype=lib.float64, generator=lib.Generator().manual_seed(2))",
    "lib.randn(2, 2, requires_grad=True)",
    "lib.rand_like(lib.zeros(2, 3, dtype=lib.float64))", "lib.randn_like(lib.tensor(1.0))",
    "lib.randint_like(lib.zeros(2, 3), 7)", "lib.randint_like(lib.zeros(2, 3), 3, 7)",
    "lib.normal(lib.zeros(3), lib.ones(3))", "lib.normal(lib.zeros(3, 1), lib.ones(4))",
    "lib.normal(lib.zeros(3), 2.0)", "lib.normal(lib.zeros(3, dtype=lib.float64), 2.0)",
    "lib.normal(1.0, lib.ones(2, 3))", "lib.normal(0.0, lib.ones(3, dtype=lib.float64))",
    "lib.normal(lib.zeros(3), lib.ones(3, dtype=lib.float64))",
    "lib.normal(0.0, 1.0, (2, 3))", "lib.normal(0.0, 1.0, size=(2, 3))",
    "lib.normal(0, 1, (2,), dtype=lib.float64)",
    "lib.normal(2.0, 3.0, (2,), generator=lib.Generator().manual_seed(3))",
    "lib.normal(lib.zeros(2), lib.ones(2), generator=lib.Generator().manual_seed(3))",
    "lib.bernoulli(lib.full((3, 4), 0.5))", "lib.bernoulli(lib.full((3,), 0.5, dtype=lib.float64))",
    "lib.bernoulli(lib.zeros(3, 4), 0.3)", "lib.bernoulli(lib.full((3,), 0.5), p=0.2)",
    "lib.bernoulli(lib.full((5,), 0.5), generator=lib.Generator().manual_seed(4))",
    "lib.full((2, 3), 0.5).bernoulli()",
    "lib.multinomial(lib.ones(5), 3)", "lib.multinomial(lib.ones(2, 5), 7, replacement=True)",
    "lib.multinomial(lib.ones(2, 5), 5)", "lib.multinomial(lib.tensor([1.0, 0.0, 0.0]), 3)",
    "lib.multinomial(lib.ones(4), 2, generator=lib.Generator().manual_seed(5))",
    "lib.ones(3, 4).multinomial(2)",
    "lib.poisson(lib.ones(3, 4))", "lib.poisson(lib.full((3,), 2.0, dtype=lib.float64))",
    "lib.poisson(lib.ones(2), generator=lib.Generator().manual_seed(6))",
]


@pytest.mark.parametrize("form", FORMS)
def test_each_form_gives_pytorchs_shape_dtype_and_requires_grad(form):
    ours, theirs = both(form)
    assert isinstance(ours, minifm.Tensor)
    assert tuple(ours.shape) == tuple(theirs.shape), form
    assert dtype_name(ours.dtype) == dtype_name(theirs.dtype), form
    assert ours.requires_grad == theirs.requires_grad, form


INPLACE = ["uniform_()", "uniform_(-2, 3)", "normal_()", "normal_(1.0, 0.5)", "random_()",
           "random_(7)", "random_(-3, 4)", "random_(2, None)", "bernoulli_()", "bernoulli_(0.3)",
           "bernoulli_(p=0.7)", "exponential_()", "exponential_(2.5)", "exponential_(lambd=0.5)",
           "geometric_(0.3)", "log_normal_()", "log_normal_(0.0, 0.5)", "cauchy_()",
           "cauchy_(1.0, 2.0)"]
INPLACE_DTYPES = {"random_": ("float32", "float64", "float16", "int64", "int32", "int16",
                              "int8", "uint8", "bool"),
                  "bernoulli_": ("float32", "float64", "int64", "bool"),
                  "geometric_": ("float32", "float64", "int64")}


@pytest.mark.parametrize("call", INPLACE)
def test_inplace_samplers_keep_the_tensor_and_its_dtype(call):
    name = call.split("(")[0]
    for dtype in INPLACE_DTYPES.get(name, ("float32", "float64")):
        ours, theirs = both(f"lib.zeros(50, dtype=lib.{dtype})")
        try:
            tout = eval(f"x.{call}", {"x": theirs})
        except RuntimeError:  # outside the dtype's range (random_(7) on bool)
            with pytest.raises(RuntimeError, match="random_"):
                eval(f"x.{call}", {"x": ours})
            continue
        out = eval(f"x.{call}", {"x": ours})
        assert out is ours and tuple(out.shape) == tuple(tout.shape) == (50,)
        assert dtype_name(out.dtype) == dtype_name(tout.dtype) == dtype, call
        values = out.numpy().astype(np.float64)
        assert np.isfinite(values).all() or name == "cauchy_"
        if name == "random_":
            low, high = _random_range(call, dtype)
            assert low <= values.min() and values.max() < high, (call, dtype)


def _random_range(call, dtype):
    top = {"float32": 2 ** 24, "float64": 2 ** 53, "float16": 2 ** 11, "bool": 1}.get(dtype)
    top = int(np.iinfo(dtype).max) if top is None else top
    return {"random_()": (0, top + 1), "random_(7)": (0, 7), "random_(-3, 4)": (-3, 4),
            "random_(2, None)": (2, top + 1)}[call]


def test_random_covers_the_whole_default_range():
    """random_() on float32 reaches past 2**23, on int64 past 2**62 (PyTorch's ranges)."""
    minifm.manual_seed(0)
    assert minifm.empty(200).random_().max().item() > 2 ** 23
    assert minifm.empty(200, dtype=minifm.int64).random_().max().item() > 2 ** 62
    x = minifm.empty(200, dtype=minifm.bool).random_().numpy()
    assert x.any() and not x.all()


# ----------------------------------------------------------------------------- statistics
def _ks(sample, cdf):
    """The Kolmogorov-Smirnov p-value of `sample` against `cdf` (scipy's exact test)."""
    stats = pytest.importorskip("scipy.stats")
    return stats.kstest(np.asarray(sample, np.float64).ravel(), cdf).pvalue


def _normal_cdf(mean, std):
    return lambda x: 0.5 * (1 + np.vectorize(math.erf)((x - mean) / (std * math.sqrt(2))))


CONTINUOUS = {
    "rand": (lambda: minifm.rand(N), lambda x: np.clip(x, 0, 1)),
    "rand_float64": (lambda: minifm.rand(N, dtype=minifm.float64), lambda x: np.clip(x, 0, 1)),
    "uniform_": (lambda: minifm.empty(N).uniform_(-2, 3), lambda x: np.clip((x + 2) / 5, 0, 1)),
    "randn": (lambda: minifm.randn(N), _normal_cdf(0, 1)),
    "normal_float": (lambda: minifm.normal(1.5, 2.0, (N,)), _normal_cdf(1.5, 2.0)),
    "normal_tensors": (lambda: minifm.normal(minifm.full((N,), -1.0), minifm.full((N,), 0.5)),
                       _normal_cdf(-1.0, 0.5)),
    "normal_": (lambda: minifm.empty(N, dtype=minifm.float64).normal_(3.0, 0.25),
                _normal_cdf(3.0, 0.25)),
    "exponential_": (lambda: minifm.empty(N).exponential_(2.5),
                     lambda x: 1 - np.exp(-2.5 * np.clip(x, 0, None))),
    "log_normal_": (lambda: minifm.empty(N).log_normal_(0.5, 0.75).log(), _normal_cdf(0.5, 0.75)),
    "cauchy_": (lambda: minifm.empty(N, dtype=minifm.float64).cauchy_(1.0, 2.0),
                lambda x: 0.5 + np.arctan((x - 1.0) / 2.0) / math.pi),
}


@pytest.mark.parametrize("name", CONTINUOUS)
def test_continuous_samples_pass_a_kolmogorov_smirnov_test(name):
    draw, cdf = CONTINUOUS[name]
    minifm.manual_seed(1234)
    assert _ks(draw().numpy(), cdf) > 1e-3, name


def test_the_ks_test_can_fail():
    """The test above rejects a sample of the wrong distribution."""
    minifm.manual_seed(1234)
    assert _ks(minifm.rand(N).numpy() * 1.02, lambda x: np.clip(x, 0, 1)) < 1e-3
    assert _ks(minifm.randn(N).numpy(), _normal_cdf(0.05, 1)) < 1e-3


def _within(values, mean, var, sigmas=5.0):
    """The sample mean within `sigmas` standard errors of `mean`, and the sample variance
    within 10% of `var`."""
    values = np.asarray(values, np.float64).ravel()
    assert abs(values.mean() - mean) < sigmas * math.sqrt(var / values.size), (values.mean(), mean)
    assert abs(values.var() - var) < 0.1 * var, (values.var(), var)


def test_discrete_samples_have_their_moments():
    minifm.manual_seed(99)
    _within(minifm.randint(3, 13, (N,)).numpy(), 7.5, (10 ** 2 - 1) / 12)
    _within(minifm.empty(N, dtype=minifm.int64).random_(-4, 6).numpy(), 0.5, (10 ** 2 - 1) / 12)
    _within(minifm.empty(N).random_().numpy(), 2 ** 23, (2 ** 24 + 1) ** 2 / 12)
    _within(minifm.bernoulli(minifm.full((N,), 0.3)).numpy(), 0.3, 0.21)
    _within(minifm.bernoulli(minifm.zeros(N), 0.8).numpy(), 0.8, 0.16)
    _within(minifm.empty(N).bernoulli_(0.25).numpy(), 0.25, 0.1875)
    p = minifm.tensor([0.1, 0.9]).repeat(N // 2)
    draws = minifm.empty(N).bernoulli_(p).numpy()
    _within(draws[::2], 0.1, 0.09)
    _within(draws[1::2], 0.9, 0.09)
    _within(minifm.poisson(minifm.full((N,), 3.5)).numpy(), 3.5, 3.5)
    _within(minifm.empty(N).geometric_(0.25).numpy(), 4.0, 0.75 / 0.25 ** 2)


def test_multinomial_frequencies_follow_the_weights():
    minifm.manual_seed(7)
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    draws = minifm.multinomial(minifm.tensor(weights), N, replacement=True).numpy()
    p = weights / weights.sum()
    counts = np.bincount(draws, minlength=4)
    assert (np.abs(counts - N * p) < 5 * np.sqrt(N * p * (1 - p))).all(), counts
    rows = minifm.multinomial(minifm.tensor(np.tile(weights, (N // 10, 1))), 1).numpy()[:, 0]
    first = np.bincount(rows, minlength=4) / rows.size
    assert (np.abs(first - p) < 5 * np.sqrt(p * (1 - p) / rows.size)).all(), first


def test_multinomial_without_replacement_draws_each_category_once():
    minifm.manual_seed(3)
    out = minifm.multinomial(minifm.rand(50, 6) + 0.1, 6).numpy()
    assert (np.sort(out, axis=1) == np.arange(6)).all()
    out = minifm.multinomial(minifm.tensor([0.0, 1.0, 0.0, 2.0]), 4).numpy()
    assert set(out[:2]) == {1, 3} and set(out) == {0, 1, 2, 3}


# ----------------------------------------------------------------------------- reproducibility
REPRODUCIBLE = {
    "randint": lambda g: minifm.randint(0, 100, (20,), generator=g),
    "rand": lambda g: minifm.rand(20, generator=g),
    "randn": lambda g: minifm.randn(20, generator=g),
    "randperm": lambda g: minifm.randperm(20, generator=g),
    "normal": lambda g: minifm.normal(minifm.zeros(20), 1.0, generator=g),
    "normal_float": lambda g: minifm.normal(0.0, 1.0, (20,), generator=g),
    "bernoulli": lambda g: minifm.bernoulli(minifm.full((20,), 0.5), generator=g),
    "multinomial": lambda g: minifm.multinomial(minifm.ones(20), 10, generator=g),
    "poisson": lambda g: minifm.poisson(minifm.full((20,), 4.0), generator=g),
    "uniform_": lambda g: minifm.empty(20).uniform_(generator=g),
    "normal_": lambda g: minifm.empty(20).normal_(generator=g),
    "random_": lambda g: minifm.empty(20).random_(generator=g),
    "bernoulli_": lambda g: minifm.empty(20).bernoulli_(generator=g),
    "exponential_": lambda g: minifm.empty(20).exponential_(generator=g),
    "geometric_": lambda g: minifm.empty(20).geometric_(0.5, generator=g),
    "log_normal_": lambda g: minifm.empty(20).log_normal_(generator=g),
    "cauchy_": lambda g: minifm.empty(20).cauchy_(generator=g),
}


@pytest.mark.parametrize("name", REPRODUCIBLE)
def test_seeded_draws_repeat(name):
    draw = REPRODUCIBLE[name]
    minifm.manual_seed(11)
    first, second = draw(None).numpy(), draw(None).numpy()
    minifm.manual_seed(11)
    np.testing.assert_array_equal(draw(None).numpy(), first)
    assert not np.array_equal(first, second)
    gen = minifm.Generator().manual_seed(5)
    mine = draw(gen).numpy()
    minifm.manual_seed(11)  # the default generator's state does not matter
    np.testing.assert_array_equal(draw(gen.manual_seed(5)).numpy(), mine)


def test_no_sampler_touches_numpys_global_state():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    for draw in REPRODUCIBLE.values():
        draw(None)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


# ----------------------------------------------------------------------------- errors
ERRORS = [
    "lib.randint(10, 3, (3,))", "lib.randint(5, 5, (3,))", "lib.randint(10)",
    "lib.randint(0, 300, (3,), dtype=lib.uint8)", "lib.randint(10, (3,), requires_grad=True)",
    "lib.rand()", "lib.normal(0.0, 1.0)", "lib.normal(lib.zeros(3), -1.0)",
    "lib.normal(0.0, -1.0, (2,))", "lib.normal(lib.zeros(3), lib.full((3,), -1.0))",
    "lib.normal(lib.zeros(3), lib.ones(4))", "lib.normal(lib.zeros(3, dtype=lib.int64), 1.0)",
    "lib.bernoulli(lib.full((3,), 1.5))", "lib.bernoulli(lib.full((3,), 0.5), 1.5)",
    "lib.bernoulli(lib.ones(3, dtype=lib.int64))",
    "lib.multinomial(lib.ones(3), 4)", "lib.multinomial(lib.tensor([1.0, -1.0, 2.0]), 1)",
    "lib.multinomial(lib.zeros(3), 1)", "lib.multinomial(lib.ones(2, 3, 4), 1)",
    "lib.multinomial(lib.ones(4), 0)", "lib.multinomial(lib.tensor([1.0, float('nan')]), 1)",
    "lib.poisson(lib.full((3,), -1.0))",
    "lib.empty(3).uniform_(2, 1)", "lib.empty(3).normal_(0, -1)",
    "lib.empty(3, dtype=lib.int64).random_(5, 3)", "lib.empty(3, dtype=lib.int64).random_(0)",
    "lib.empty(3, dtype=lib.uint8).random_(0, 300)", "lib.empty(3).bernoulli_(1.3)",
    "lib.empty(3).bernoulli_(lib.full((4,), 0.2))", "lib.empty(3).bernoulli_(lib.full((3,), 1.2))",
    "lib.empty(3).exponential_(0.0)", "lib.empty(3, dtype=lib.int64).exponential_()",
    "lib.empty(3).geometric_(1.0)", "lib.empty(3).log_normal_(1, 0)", "lib.empty(3).cauchy_(0, -1)",
    "lib.empty(3, dtype=lib.int64).uniform_()", "lib.empty(3, dtype=lib.int64).normal_()",
]


@pytest.mark.parametrize("expr", ERRORS)
def test_bad_arguments_raise_pytorchs_exception_type(expr):
    with pytest.raises(Exception) as theirs:
        eval(expr, {"lib": torch})
    with pytest.raises(theirs.type):
        eval(expr, {"lib": minifm})


def test_error_messages_name_the_bounds():
    with pytest.raises(RuntimeError, match="random_.*from=5 >= to=3"):
        minifm.empty(3, dtype=minifm.int64).random_(5, 3)
    with pytest.raises(RuntimeError, match="bernoulli_.*p=1.3"):
        minifm.empty(3).bernoulli_(1.3)
    with pytest.raises(RuntimeError, match=r"multinomial.*without replacement \(4 > 3\)"):
        minifm.multinomial(minifm.ones(3), 4)
    with pytest.raises(RuntimeError, match=r"normal.*\(3,\).*\(4,\)"):
        minifm.normal(minifm.zeros(3), minifm.ones(4))


# ----------------------------------------------------------------------------- view rules
SAMPLERS = ["uniform_()", "normal_()", "random_(1, 9)", "bernoulli_(0.5)", "exponential_()",
            "geometric_(0.5)", "log_normal_()", "cauchy_()"]


@pytest.mark.parametrize("call", SAMPLERS)
def test_a_sampler_on_a_view_writes_into_the_base(call):
    base = minifm.zeros(4, 5)
    other = base[:, 1]
    eval(f"view.{call}", {"view": base[1:3, ::2]})
    changed = base.numpy() != 0
    assert changed[1:3, ::2].any() and not changed[[0, 3]].any() and not changed[:, 1::2].any()
    np.testing.assert_array_equal(other.numpy(), base.numpy()[:, 1])


@pytest.mark.parametrize("call", SAMPLERS)
def test_a_sampler_on_a_leaf_requiring_grad_is_refused_as_in_pytorch(call):
    for lib in (torch, minifm):
        x = lib.zeros(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            eval(f"x.{call}", {"x": x})
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            eval(f"x[1:].{call}", {"x": x})
        with lib.no_grad():
            eval(f"x.{call}", {"x": x})  # what initializers do
        assert x.requires_grad and x.grad_fn is None


def test_a_sampled_region_gets_no_gradient():
    """Overwritten elements of a non-leaf pass no gradient back, the rest do (as in PyTorch)."""
    grads = []
    for lib in (torch, minifm):
        x = lib.ones(2, 3, requires_grad=True)
        y = x * 2
        y[0].uniform_()
        y.sum().backward()
        grads.append(np.array(x.grad.numpy()))
    np.testing.assert_array_equal(grads[1], grads[0])
    np.testing.assert_array_equal(grads[0], [[0, 0, 0], [2, 2, 2]])


@pytest.mark.parametrize("expr", ["lib.normal(m, s)", "lib.normal(m, 2.0)", "lib.normal(1.0, s)",
                                  "lib.bernoulli(p)", "lib.poisson(s)"])
def test_sampling_ops_pass_zero_gradients_as_pytorch(expr):
    grads = []
    for lib in (torch, minifm):
        leaves = {"m": lib.zeros(3, requires_grad=True), "s": lib.ones(3, requires_grad=True),
                  "p": lib.full((3,), 0.5, requires_grad=True)}
        out = eval(expr, {"lib": lib, **leaves})
        assert out.requires_grad
        out.sum().backward()
        grads.append({k: None if v.grad is None else v.grad.numpy().tolist()
                      for k, v in leaves.items()})
    assert grads[0] == grads[1]


# ----------------------------------------------------------------------------- devices
def test_samplers_draw_on_the_tensors_device(device):
    """Every form draws with the device's generator and leaves its result there."""
    dev = minifm.device(device)
    made = [minifm.rand(3, device=device), minifm.randn(size=(3,), device=device),
            minifm.randint(5, (3,), device=device), minifm.normal(0.0, 1.0, (3,), device=device),
            minifm.normal(minifm.zeros(3, device=device), 2.0),
            minifm.bernoulli(minifm.full((3,), 0.5, device=device)),
            minifm.multinomial(minifm.ones(4, device=device), 2)]
    for call in SAMPLERS:
        made.append(eval(f"x.{call}", {"x": minifm.zeros(4, device=device)}))
    for t in made:
        assert t.device == dev
    minifm.manual_seed(5)
    first = minifm.zeros(6, device=device).exponential_().cpu().numpy()
    minifm.manual_seed(5)
    np.testing.assert_array_equal(minifm.zeros(6, device=device).exponential_().cpu().numpy(), first)
