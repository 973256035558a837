"""expand_reduced (minifm/ops/reduce.py), the backward of every reduction: its zero-stride
view made by ndarray's constructor is what np.broadcast_to gives (values, shape, strides,
read-only, sharing the gradient's memory), for every keepdim and axes case; a gradient it
cannot view (non-contiguous, or not of the reduced shape) takes broadcast_to's path."""
import numpy as np
import pytest

from minifm.ops.reduce import _expanded_view, expand_reduced

CASES = [((16, 16), (0, 1)), ((3, 4, 5), (1,)), ((3, 4, 5), (0, 2)), ((2, 1, 3), (1,)),
         ((2, 3), ()), ((0, 3), (0,)), ((), ()), ((4,), (0,))]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape, axes", CASES)
def test_the_view_is_broadcast_to(shape, axes, keepdim):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    g = np.array(x.sum(axis=axes, keepdims=keepdim) * 2)  # an ndarray, 0-d included
    expected = np.broadcast_to(
        g if keepdim else g.reshape([1 if i in axes else n for i, n in enumerate(shape)]), shape)
    view = _expanded_view(g, axes, keepdim, shape)
    assert view is not None
    out = expand_reduced(np, g, axes, keepdim, shape)
    for got in (view, out):
        assert got.shape == expected.shape and got.dtype == expected.dtype
        assert got.strides == expected.strides
        np.testing.assert_array_equal(got, expected)
        assert not got.flags.writeable
        assert got.size == 0 or np.shares_memory(got, g)


def test_a_numpy_scalar_gradient_is_viewed_too():
    """Mean's g / count of a 0-d gradient is a NumPy scalar."""
    out = expand_reduced(np, np.float32(2.0), (0, 1), False, (3, 4))
    assert out.shape == (3, 4) and out.dtype == np.float32 and out.strides == (0, 0)
    assert (out == 2).all() and not out.flags.writeable


def test_other_gradients_take_broadcast_to():
    assert _expanded_view(np.ones(3, np.float32), (0,), False, (4, 5)) is None
    assert _expanded_view(np.ones((2, 5)), (0,), True, (4, 5)) is None
    g = np.arange(10.0).reshape(5, 2).T  # (2, 5), not C-contiguous
    out = expand_reduced(np, g, (1,), False, (2, 3, 5))
    np.testing.assert_array_equal(out, np.broadcast_to(g.reshape(2, 1, 5), (2, 3, 5)))
    with pytest.raises(ValueError):
        expand_reduced(np, np.ones(3), (0,), False, (4, 5))
