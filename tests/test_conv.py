"""Convolutions and pooling against PyTorch: outputs and the gradients of input, weight and
bias over many geometries (stride, padding incl. 'same', dilation, groups incl. depthwise,
output_padding, odd sizes, 1x1 kernels), in float32 with PyTorch's tolerances and in float64
tightly; the errors bad arguments raise; and the modules' (1-d, 2-d, 3-d) state_dict keys,
default init, reprs and outputs with weights copied from PyTorch. The functional 1-d and 3-d
forms are in the op table (tests/optable.py)."""
from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
import minifm.nn.functional as F  # noqa: E402
from minifm.nn.conv import (  # noqa: E402
    Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
)
from minifm.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d  # noqa: E402
from minifm.nn.upsampling import Upsample  # noqa: E402
from conftest import assert_close, to_numpy  # noqa: E402

TF = torch.nn.functional
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
TIGHT = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: {}}  # {}: PyTorch's defaults


def compare(ours_fn, torch_fn, arrays, dtype, device="cpu", **kwargs):
    """Run both functions on the same arrays (None stays None), backpropagate the same random
    output gradient, and compare the output and every input's gradient."""
    rng = np.random.default_rng(0)
    arrays = [None if a is None else a.astype(dtype) for a in arrays]
    ours = [None if a is None else minifm.tensor(a, device=device, requires_grad=True)
            for a in arrays]
    theirs = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours_fn(*ours, **kwargs), torch_fn(*theirs, **kwargs)
    assert_close(y, ty, **TIGHT[dtype])
    g = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    y.backward(minifm.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    for a, ta in zip(ours, theirs):
        if a is not None:
            assert a.grad.shape == a.shape and a.grad.dtype == a.dtype
            assert_close(a.grad, ta.grad, **TIGHT[dtype])


def randn(*shape):
    return np.random.default_rng(sum(shape) * 7919 + len(shape)).standard_normal(shape)


# ----------------------------------------------------------------------------- conv2d
# (N, C, H, W), (O, kh, kw), kwargs
CONV_CASES = {
    "plain3x3": ((2, 3, 6, 7), (4, 3, 3), {}),
    "stride2_pad1": ((2, 3, 8, 9), (5, 3, 3), dict(stride=2, padding=1)),
    "k4s2p1_dcgan": ((3, 4, 8, 8), (6, 4, 4), dict(stride=2, padding=1)),
    "rect_kernel_mixed": ((2, 2, 7, 9), (3, 2, 4), dict(stride=(2, 1), padding=(1, 2))),
    "dilation": ((1, 2, 9, 8), (3, 3, 2), dict(dilation=(2, 3), padding=1)),
    "same_odd": ((2, 3, 5, 6), (4, 3, 3), dict(padding="same")),
    "same_even_dilated": ((1, 2, 6, 5), (3, 4, 2), dict(padding="same", dilation=(1, 2))),
    "valid": ((2, 2, 5, 5), (2, 2, 2), dict(padding="valid")),
    "groups2": ((2, 4, 6, 6), (6, 3, 3), dict(groups=2, padding=1)),
    "depthwise": ((2, 4, 7, 6), (4, 3, 3), dict(groups=4, stride=2, padding=1)),
    "depthwise_multiplier": ((1, 3, 5, 5), (6, 3, 3), dict(groups=3)),
    "1x1": ((3, 5, 4, 3), (2, 1, 1), {}),
    "1x1_stride": ((2, 3, 5, 5), (4, 1, 1), dict(stride=2)),
    "kernel_is_input": ((2, 3, 4, 4), (2, 4, 4), {}),
    "batch1_big_stride": ((1, 2, 11, 10), (3, 3, 3), dict(stride=(3, 4), padding=(2, 0))),
}


def _conv_arrays(case):
    x_shape, (o, kh, kw), kwargs = CONV_CASES[case]
    groups = kwargs.get("groups", 1)
    return randn(*x_shape), randn(o, x_shape[1] // groups, kh, kw), randn(o), kwargs


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # PyTorch's own
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_matches_torch(case, dtype):
    x, w, b, kwargs = _conv_arrays(case)
    compare(F.conv2d, TF.conv2d, [x, w, b], dtype, **kwargs)


def test_conv2d_without_bias_and_partial_grads():
    x, w, _, kwargs = _conv_arrays("stride2_pad1")
    compare(F.conv2d, TF.conv2d, [x, w, None], np.float64, **kwargs)
    # only the input needs a gradient: the weight is a constant
    wx = minifm.tensor(w)
    X = minifm.tensor(x, requires_grad=True)
    F.conv2d(X, wx, **kwargs).sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    TF.conv2d(tx, torch.tensor(w), **kwargs).sum().backward()
    assert_close(X.grad, tx.grad)
    # only the weight needs one
    W = minifm.tensor(w, requires_grad=True)
    F.conv2d(minifm.tensor(x), W, **kwargs).sum().backward()
    tw = torch.tensor(w, requires_grad=True)
    TF.conv2d(torch.tensor(x), tw, **kwargs).sum().backward()
    assert_close(W.grad, tw.grad)


def test_conv2d_unbatched_and_non_contiguous_input():
    x, w, b, kwargs = _conv_arrays("groups2")
    compare(F.conv2d, TF.conv2d, [x[0], w, b], np.float64, **kwargs)
    # a transposed (non-contiguous) input: the windows view follows its strides
    X = minifm.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    y = F.conv2d(X.transpose(2, 3), minifm.tensor(w), **kwargs)
    ty = TF.conv2d(tx.transpose(2, 3), torch.tensor(w), **kwargs)
    assert_close(y, ty)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert_close(X.grad, tx.grad)


def test_conv2d_no_graph_under_no_grad():
    x, w, _, _ = _conv_arrays("plain3x3")
    with minifm.no_grad():
        y = F.conv2d(minifm.tensor(x, requires_grad=True), minifm.tensor(w, requires_grad=True))
    assert y.grad_fn is None and not y.requires_grad


def test_conv2d_device(device):
    x, w, b, kwargs = _conv_arrays("depthwise")
    compare(F.conv2d, TF.conv2d, [x, w, b], np.float32, device=device, **kwargs)


# ----------------------------------------------------------------------------- conv_transpose2d
# (N, C_in, H, W), (C_out, kh, kw), kwargs
CONVT_CASES = {
    "plain3x3": ((2, 3, 4, 5), (4, 3, 3), {}),
    "k4s2p1_dcgan": ((3, 6, 4, 4), (4, 4, 4), dict(stride=2, padding=1)),
    "k4s1p0_from_1x1": ((2, 5, 1, 1), (3, 4, 4), dict(stride=1, padding=0)),
    "output_padding": ((2, 3, 4, 5), (2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    "rect_all": ((1, 2, 5, 4), (3, 3, 4), dict(stride=(2, 3), padding=(1, 2),
                                                output_padding=(1, 2))),
    "dilation": ((2, 2, 4, 4), (3, 3, 2), dict(dilation=(2, 1), padding=1)),
    "output_padding_below_dilation": ((1, 2, 4, 4), (2, 3, 3),
                                      dict(dilation=2, output_padding=1)),
    "groups2": ((2, 4, 3, 4), (6, 3, 3), dict(groups=2, stride=2)),
    "depthwise": ((2, 3, 4, 4), (3, 3, 3), dict(groups=3, padding=1)),
    "1x1": ((2, 4, 3, 3), (2, 1, 1), {}),
}


def _convt_arrays(case):
    x_shape, (o, kh, kw), kwargs = CONVT_CASES[case]
    groups = kwargs.get("groups", 1)
    return randn(*x_shape), randn(x_shape[1], o // groups, kh, kw), randn(o), kwargs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CONVT_CASES))
def test_conv_transpose2d_matches_torch(case, dtype):
    x, w, b, kwargs = _convt_arrays(case)
    compare(F.conv_transpose2d, TF.conv_transpose2d, [x, w, b], dtype, **kwargs)


def test_conv_transpose2d_without_bias_unbatched():
    x, w, _, kwargs = _convt_arrays("output_padding")
    compare(F.conv_transpose2d, TF.conv_transpose2d, [x, w, None], np.float64, **kwargs)
    compare(F.conv_transpose2d, TF.conv_transpose2d, [x[0], w, None], np.float64, **kwargs)


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    """<conv(x, w), y> == <x, conv_transpose(y, w)>: the identity the implementation rests on."""
    x, w = randn(2, 4, 7, 7), randn(6, 2, 3, 3)
    y = randn(2, 6, 4, 4)
    kwargs = dict(stride=2, padding=1, groups=2)
    cx = F.conv2d(minifm.tensor(x), minifm.tensor(w), **kwargs)
    ty = F.conv_transpose2d(minifm.tensor(y), minifm.tensor(w), **kwargs)
    assert np.isclose((to_numpy(cx) * y).sum(), (x * to_numpy(ty)).sum(), rtol=1e-12)


# ----------------------------------------------------------------------------- pooling
# (N, C, H, W), kwargs
MAX_CASES = {
    "k2": ((2, 3, 6, 6), dict(kernel_size=2)),
    "k3s2p1_ceil": ((2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    "k3s2_floor_odd": ((1, 2, 7, 9), dict(kernel_size=3, stride=2)),
    "overlapping_s1": ((2, 2, 5, 6), dict(kernel_size=3, stride=1, padding=1)),
    "rect_dilated_ceil": ((2, 2, 8, 9), dict(kernel_size=(2, 3), stride=(2, 1), dilation=2,
                                              ceil_mode=True)),
    "ceil_drops_window_in_padding": ((1, 1, 5, 5), dict(kernel_size=2, stride=2, padding=1,
                                                        ceil_mode=True)),
}
AVG_CASES = {
    "k2": ((2, 3, 6, 6), dict(kernel_size=2)),
    "k3s2p1_ceil": ((2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    "k3s2p1_ceil_no_pad_count": ((2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1,
                                                    ceil_mode=True, count_include_pad=False)),
    "overlapping_pad": ((1, 2, 5, 6), dict(kernel_size=(3, 2), stride=1, padding=(1, 1))),
    "divisor_override": ((2, 1, 6, 7), dict(kernel_size=3, stride=2, padding=1,
                                            divisor_override=4)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(MAX_CASES))
def test_max_pool2d_matches_torch(case, dtype):
    shape, kwargs = MAX_CASES[case]
    compare(F.max_pool2d, TF.max_pool2d, [randn(*shape)], dtype, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(AVG_CASES))
def test_avg_pool2d_matches_torch(case, dtype):
    shape, kwargs = AVG_CASES[case]
    compare(F.avg_pool2d, TF.avg_pool2d, [randn(*shape)], dtype, **kwargs)


def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum():
    x = np.array([[[[1.0, 3.0, 3.0, 0.0],
                    [3.0, 2.0, 3.0, 3.0],
                    [5.0, 5.0, 1.0, 1.0],
                    [5.0, 5.0, 1.0, 1.0]]]])
    compare(F.max_pool2d, TF.max_pool2d, [x], np.float64, kernel_size=2, stride=1)
    X = minifm.tensor(x, requires_grad=True)
    F.max_pool2d(X, 2).sum().backward()
    expected = np.zeros_like(x)
    expected[0, 0, [0, 0, 2, 2], [1, 2, 0, 2]] = 1
    np.testing.assert_array_equal(to_numpy(X.grad), expected)


def test_max_pool2d_nan_is_the_maximum():
    x = randn(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    y = to_numpy(F.max_pool2d(minifm.tensor(x), 2))
    assert np.isnan(y[0, 0, 0, 0]) and np.isfinite(y[0, 0, 1:, 1:]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,size", [
    ((2, 3, 6, 8), (3, 4)),      # divisible
    ((2, 2, 7, 10), (3, 4)),     # overlapping, unequal windows
    ((1, 2, 5, 5), 1),           # global average
    ((2, 2, 5, 7), (None, 3)),   # None keeps the height
    ((1, 1, 3, 4), (5, 6)),      # larger than the input
])
def test_adaptive_avg_pool2d_matches_torch(shape, size, dtype):
    compare(F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, [randn(*shape)], dtype,
            output_size=size)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("kwargs", [
    dict(scale_factor=2), dict(scale_factor=(3, 1.5)), dict(scale_factor=(2.05, 1.7)),
    dict(size=(11, 4)), dict(size=7), dict(size=(3, 2)),
], ids=lambda kw: str(kw))
def test_interpolate_matches_torch(kwargs, mode):
    compare(F.interpolate, TF.interpolate, [randn(2, 3, 5, 7)], np.float64, mode=mode, **kwargs)
    compare(F.interpolate, TF.interpolate, [randn(1, 2, 4, 3)], np.float32, mode=mode, **kwargs)


# ----------------------------------------------------------------------------- errors
def t(*shape):
    return minifm.zeros(*shape)


@pytest.mark.parametrize("call,match", [
    (lambda: F.conv2d(t(2, 3, 5), t(4, 3, 3, 3)[0]), "conv2d: expected a 4-D weight"),
    (lambda: F.conv2d(t(2, 5), t(4, 3, 3, 3)), r"conv2d: expected a 3-D .* got shape \(2, 5\)"),
    (lambda: F.conv2d(t(2, 4, 5, 5), t(4, 3, 3, 3)),
     r"conv2d: input of shape \(2, 4, 5, 5\) has 4 channels, but weight of shape "
     r"\(4, 3, 3, 3\) with groups=1 expects 3"),
    (lambda: F.conv2d(t(2, 3, 5, 5), t(4, 1, 3, 3), groups=3),
     r"output channels \(4\) must both be divisible by groups=3"),
    (lambda: F.conv2d(t(2, 3, 5, 5), t(4, 3, 3, 3), groups=0), "groups must be a positive"),
    (lambda: F.conv2d(t(1, 3, 2, 5), t(4, 3, 3, 3)),
     r"conv2d: kernel of shape \(3, 3\) .* spans 3 along H, more than the padded input"),
    (lambda: F.conv2d(t(1, 3, 4, 4), t(4, 3, 3, 3), dilation=2),
     "spans 5 along H"),
    (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), stride=2, padding="same"),
     "padding='same' is not supported for strided"),
    (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), padding="full"), "padding must be"),
    (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), stride=0), "stride must be >= 1"),
    (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), t(3)), r"bias of shape \(3,\)"),
    (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3).double()), "must have the same dtype"),
    (lambda: F.conv_transpose2d(t(1, 3, 5, 5), t(4, 2, 3, 3)),
     r"conv_transpose2d: input of shape \(1, 3, 5, 5\) has 3 channels, but weight .* expects 4"),
    (lambda: F.conv_transpose2d(t(1, 3, 5, 5), t(3, 2, 3, 3), groups=2),
     "must both be divisible by groups=2"),
    (lambda: F.conv_transpose2d(t(1, 3, 5, 5), t(3, 2, 3, 3), stride=2, output_padding=2),
     "output_padding .* must be smaller than either stride"),
    (lambda: F.conv_transpose2d(t(1, 3, 1, 1), t(3, 2, 1, 1), padding=1), "empty output"),
    (lambda: F.max_pool2d(t(1, 1, 5, 5), 2, padding=2), "at most half of the effective kernel"),
    (lambda: F.max_pool2d(t(1, 1, 2, 2), 3), r"input of shape \(1, 1, 2, 2\) is too small"),
    (lambda: F.max_pool2d(minifm.zeros(1, 1, 4, 4, dtype=minifm.int64), 2),
     "expected a floating point input"),
    (lambda: F.max_pool2d(t(4, 4), 2), "max_pool2d: expected a 3-D"),
    (lambda: F.avg_pool2d(t(1, 1, 4, 4), 2, divisor_override=0), "divisor_override"),
    (lambda: F.adaptive_avg_pool2d(t(1, 1, 4, 4), (-1, 2)), "non-negative ints"),
    (lambda: Conv2d(3, 4, 3, groups=2), r"in_channels \(3\) must be divisible by groups"),
    (lambda: Conv2d(4, 3, 3, groups=2), r"out_channels \(3\) must be divisible by groups"),
    (lambda: Conv2d(4, 4, 3, stride=2, padding="same"), "not supported for strided"),
    (lambda: ConvTranspose2d(2, 2, 3, stride=2)(t(1, 2, 3, 3), output_size=(9, 9)),
     "valid sizes .* range from 7 to 8"),
])
def test_errors(call, match):
    with pytest.raises((RuntimeError, ValueError, TypeError, NotImplementedError), match=match):
        call()


# ----------------------------------------------------------------------------- modules
def _copy_params(ours, theirs):
    with torch.no_grad():
        for name, p in ours.named_parameters():
            getattr(theirs, name).copy_(torch.from_numpy(to_numpy(p)))


@pytest.mark.parametrize("ours_cls,torch_cls,args,kwargs,x_shape", [
    (Conv2d, torch.nn.Conv2d, (4, 6, 3), dict(stride=2, padding=1, groups=2), (2, 4, 7, 7)),
    (Conv2d, torch.nn.Conv2d, (3, 5, (2, 3)), dict(padding="same", bias=False), (1, 3, 5, 6)),
    (ConvTranspose2d, torch.nn.ConvTranspose2d, (6, 4, 4), dict(stride=2, padding=1),
     (2, 6, 4, 4)),
    (ConvTranspose2d, torch.nn.ConvTranspose2d, (4, 2, 3),
     dict(stride=2, output_padding=1, groups=2, dilation=1, bias=False), (1, 4, 3, 3)),
])
def test_conv_modules_match_torch(ours_cls, torch_cls, args, kwargs, x_shape):
    ours, theirs = ours_cls(*args, **kwargs), torch_cls(*args, **kwargs)
    for name, p in theirs.named_parameters():
        assert tuple(getattr(ours, name).shape) == tuple(p.shape)
        assert isinstance(getattr(ours, name), minifm.nn.parameter.Parameter)
    _assert_module_matches_torch(ours, theirs, x_shape)


def _assert_module_matches_torch(ours, theirs, x_shape):
    """state_dict keys, repr, output and parameter gradients with PyTorch's weights."""
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    _copy_params(ours, theirs)
    x = randn(*x_shape).astype(np.float32)
    y, ty = ours(minifm.tensor(x)), theirs(torch.tensor(x))
    assert_close(y, ty)
    y.sum().backward()
    ty.sum().backward()
    for name, p in theirs.named_parameters():
        assert_close(getattr(ours, name).grad, p.grad)


@pytest.mark.parametrize("name,args,kwargs,x_shape", [
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=1, groups=2), (2, 4, 11)),
    ("Conv1d", (3, 5, 4), dict(padding="same", dilation=2, bias=False), (3, 13)),
    ("Conv1d", (3, 5, 3), dict(padding=2, padding_mode="reflect"), (2, 3, 7)),
    ("Conv1d", (3, 5, 3), dict(padding="same", padding_mode="circular"), (2, 3, 7)),
    ("Conv3d", (2, 4, (3, 2, 3)), dict(stride=(2, 1, 2), padding=1), (2, 2, 5, 6, 7)),
    ("Conv3d", (2, 4, 3), dict(padding=1, padding_mode="replicate", groups=2), (1, 2, 5, 4, 3)),
    ("ConvTranspose1d", (6, 4, 4), dict(stride=2, padding=1, output_padding=1), (2, 6, 7)),
    ("ConvTranspose3d", (4, 2, 3), dict(stride=2, output_padding=(1, 0, 1), groups=2,
                                        dilation=(1, 2, 1), bias=False), (1, 4, 3, 2, 3)),
])
def test_conv_nd_modules_match_torch(name, args, kwargs, x_shape):
    """Conv1d/3d and their transposes, padding modes included: state_dict keys, repr, output
    and parameter gradients with PyTorch's weights."""
    ours, theirs = getattr(minifm.nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args,
                                                                                     **kwargs)
    _assert_module_matches_torch(ours, theirs, x_shape)


@pytest.mark.parametrize("module,fan_in", [
    (lambda: Conv1d(6, 4, 5, groups=2), 3 * 5),
    (lambda: Conv3d(2, 4, (1, 2, 3)), 2 * 6),
    (lambda: ConvTranspose1d(4, 6, 3), 6 * 3),
    (lambda: ConvTranspose3d(4, 6, 2, groups=2), 3 * 8),
])
def test_conv_nd_default_init(module, fan_in):
    minifm.manual_seed(0)
    layer = module()
    bound = 1 / math.sqrt(fan_in)
    w, b = to_numpy(layer.weight), to_numpy(layer.bias)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.9 * bound


def test_conv_module_padding_mode_errors():
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        Conv1d(2, 2, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="only 'zeros' padding mode"):
        ConvTranspose3d(2, 2, 3, padding_mode="reflect")


def test_conv_transpose_module_output_size():
    ours, theirs = ConvTranspose2d(3, 2, 3, stride=2), torch.nn.ConvTranspose2d(3, 2, 3, stride=2)
    _copy_params(ours, theirs)
    x = randn(1, 3, 4, 4).astype(np.float32)
    y = ours(minifm.tensor(x), output_size=(10, 9))
    assert_close(y, theirs(torch.tensor(x), output_size=(10, 9)))
    assert tuple(y.shape) == (1, 2, 10, 9)


@pytest.mark.parametrize("module,fan_in", [
    (lambda: Conv2d(16, 32, 3), 16 * 9),
    (lambda: Conv2d(16, 32, (3, 5), groups=4), 4 * 15),
    (lambda: ConvTranspose2d(32, 16, 4), 16 * 16),   # PyTorch's fan_in: weight.shape[1] * k*k
])
def test_conv_default_init(module, fan_in):
    """weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform_(a=sqrt(5)))."""
    minifm.manual_seed(0)
    layer = module()
    bound = 1 / math.sqrt(fan_in)
    w, b = to_numpy(layer.weight), to_numpy(layer.bias)
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.mean()) < 0.05 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert np.abs(w).max() > 0.95 * bound   # the whole range is used
    minifm.manual_seed(0)
    np.testing.assert_array_equal(to_numpy(module().weight), w)


@pytest.mark.parametrize("ours,theirs", [
    (MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
    (MaxPool2d(2), torch.nn.MaxPool2d(2)),
    (AvgPool2d(3, 2, 1, count_include_pad=False), torch.nn.AvgPool2d(3, 2, 1,
                                                                     count_include_pad=False)),
    (AdaptiveAvgPool2d((2, 3)), torch.nn.AdaptiveAvgPool2d((2, 3))),
    (AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1)),
    (Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2)),
    (Upsample(size=(5, 9), mode="nearest-exact"), torch.nn.Upsample(size=(5, 9),
                                                                     mode="nearest-exact")),
], ids=lambda m: repr(m))
def test_pooling_modules_match_torch(ours, theirs):
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == []
    x = randn(2, 3, 7, 6).astype(np.float32)
    assert_close(ours(minifm.tensor(x)), theirs(torch.tensor(x)))


@pytest.mark.parametrize("name,args,kwargs,x_shape", [
    ("MaxPool1d", (3, 2, 1), dict(ceil_mode=True), (2, 3, 11)),
    ("MaxPool3d", ((2, 3, 2),), dict(dilation=(1, 1, 2)), (2, 2, 5, 7, 6)),
    ("MaxPool2d", (3, 2), dict(return_indices=True), (2, 3, 7, 6)),
    ("AvgPool1d", (3, 2, 1), dict(count_include_pad=False), (2, 3, 11)),
    ("AvgPool3d", (3, 2, 1), dict(ceil_mode=True, divisor_override=7), (2, 2, 5, 7, 6)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 11)),
    ("AdaptiveAvgPool3d", ((2, None, 3),), {}, (2, 2, 5, 7, 6)),
    ("AdaptiveMaxPool1d", (4,), dict(return_indices=True), (2, 3, 11)),
    ("AdaptiveMaxPool2d", ((3, 4),), {}, (2, 3, 7, 6)),
])
def test_nd_pooling_modules_match_torch(name, args, kwargs, x_shape):
    ours, theirs = getattr(minifm.nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args,
                                                                                     **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == []
    x = randn(*x_shape).astype(np.float32)
    y, ty = ours(minifm.tensor(x)), theirs(torch.tensor(x))
    for a, b in zip(y, ty) if isinstance(ty, tuple) else [(y, ty)]:
        assert_close(a, b)


@pytest.mark.parametrize("nd,kwargs,x_shape", [
    (1, dict(kernel_size=3, stride=3, padding=1), (2, 3, 11)),
    (2, dict(kernel_size=2), (2, 3, 7, 5)),
    (2, dict(kernel_size=(3, 2), stride=(3, 2), padding=(1, 0)), (3, 7, 6)),
])
def test_max_pool_return_indices_and_unpool_match_torch(nd, kwargs, x_shape):
    """MaxPool(return_indices=True) then MaxUnpool (with output_size: odd inputs leave a
    remainder the pool dropped), the modules of both libraries, forward and backward."""
    x = randn(*x_shape).astype(np.float32)
    results = []
    for lib in (minifm, torch):
        pool = getattr(lib.nn, f"MaxPool{nd}d")(return_indices=True, **kwargs)
        unpool = getattr(lib.nn, f"MaxUnpool{nd}d")(**kwargs)
        X = lib.tensor(x, requires_grad=True)
        y, indices = pool(X)
        out = unpool(y, indices, output_size=x_shape[-nd:])
        (out * out).sum().backward()
        results.append((y, indices, out, X.grad))
    assert repr(unpool) == repr(getattr(minifm.nn, f"MaxUnpool{nd}d")(**kwargs))
    for a, b in zip(*results):
        assert_close(a, b)

# ----------------------------------------------------------------------------- Numba kernels
# The fused conv2d / conv_transpose2d / max_pool2d (minifm.kernels.conv_cpu, pool_cpu) against
# the NumPy reference and PyTorch, at odd sizes: prime widths, stride 2 over odd inputs,
# dilation, groups, padding larger than the kernel. (The tests above run whichever backend
# "auto" picks: the kernels where Numba is installed.)
KERNEL_CONV_CASES = {
    "prime_stride2": ((3, 5, 13, 11), (7, 3, 3), dict(stride=2, padding=1)),
    "dilated_groups": ((2, 6, 11, 7), (4, 3, 2), dict(dilation=(2, 3), groups=2, padding=(1, 2))),
    "pad_beyond_kernel": ((2, 3, 5, 7), (4, 2, 2), dict(padding=3, stride=(1, 2))),
    "dcgan_k4s2p1": ((2, 8, 9, 9), (6, 4, 4), dict(stride=2, padding=1)),
    "depthwise": ((2, 4, 7, 5), (8, 3, 3), dict(groups=4, stride=2, padding=2)),
    # strided maps whose output width is ceil(input width / stride) (each stride phase of
    # the input as wide as the output), and "same" maps (stride 1, output width = input
    # width: one flat span per plane in the kernels)
    "aligned_k4s2p1": ((2, 8, 10, 10), (6, 4, 4), dict(stride=2, padding=1)),
    "aligned_stride3": ((2, 3, 9, 8), (4, 3, 3), dict(stride=3, padding=1)),
    "aligned_stride2_dilated": ((2, 3, 11, 10), (4, 3, 3),
                                dict(stride=2, padding=(2, 1), dilation=2)),
    "aligned_1x1_stride2": ((2, 4, 7, 7), (3, 1, 1), dict(stride=2)),
    "aligned_stride_2x1": ((2, 3, 7, 6), (4, 3, 3), dict(stride=(2, 1), padding=1)),
    # outputs at least GATHER_BELOW wide: the row loops, or on "same" maps one flat span
    # per plane (narrower outputs go through the gather table)
    "wide_rows_valid": ((2, 3, 9, 21), (4, 3, 3), dict(stride=(2, 1))),
    "wide_rows_stride2": ((1, 2, 7, 40), (3, 3, 3), dict(stride=2, padding=1, dilation=(1, 2))),
    "same_prime": ((3, 5, 13, 11), (7, 3, 3), dict(padding=1)),
    "same_wide_prime": ((2, 3, 5, 17), (4, 3, 3), dict(padding=1)),  # flat spans
    "same_dilated": ((2, 3, 7, 5), (4, 3, 3), dict(padding=2, dilation=2)),
    "same_width_only": ((2, 3, 7, 9), (4, 3, 5), dict(padding=(0, 2))),
    "same_1x1_map": ((2, 3, 1, 1), (4, 3, 3), dict(padding=1)),
    # kernel positions that meet only padding (cropped off by the kernels): ResNet-18's
    # strided 2x2 -> 1x1 layer, a dilated kernel whose outer rows read only padding, and a
    # crop that would need negative padding (not made)
    "dead_taps_stride2": ((2, 4, 2, 2), (6, 3, 3), dict(stride=2, padding=1)),
    "dead_taps_dilated": ((2, 3, 2, 7), (4, 3, 3), dict(padding=(2, 1), dilation=(2, 1))),
    "dead_taps_far_dilation": ((2, 3, 3, 4), (4, 3, 2), dict(padding=(2, 0), dilation=(3, 1))),
}


@pytest.fixture
def conv_backend(request):
    pytest.importorskip("numba")
    from minifm import kernels
    yield kernels.set_backend
    kernels.set_backend("conv", None)
    kernels.set_backend("max_pool", None)


def _on_backend(set_backend, op, backend, fn, arrays, **kwargs):
    set_backend(op, backend)
    rng = np.random.default_rng(5)
    leaves = [minifm.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*leaves, **kwargs)
    y.backward(minifm.tensor(rng.standard_normal(tuple(y.shape)).astype(arrays[0].dtype)))
    return [y] + [t.grad for t in leaves], y.grad_fn.name()


@pytest.mark.parametrize("case,transposed", [
    pytest.param(case, transposed, id=f"{case}-{'conv_transpose2d' if transposed else 'conv2d'}")
    for case in KERNEL_CONV_CASES for transposed in (False, True)
    if not (transposed and case == "pad_beyond_kernel")])  # an empty transposed output
def test_conv_kernels_match_reference_and_torch(case, transposed, conv_backend):
    x_shape, (o, kh, kw), kwargs = KERNEL_CONV_CASES[case]
    groups = kwargs.get("groups", 1)
    if transposed:
        stride = np.broadcast_to(kwargs.get("stride", 1), 2)
        kwargs = {**kwargs, "output_padding": tuple(int(s > 1) for s in stride)}
        w = randn(x_shape[1], o // groups, kh, kw)
        fn, tfn = F.conv_transpose2d, TF.conv_transpose2d
    else:
        w = randn(o, x_shape[1] // groups, kh, kw)
        fn, tfn = F.conv2d, TF.conv2d
    arrays = [randn(*x_shape), w, randn(o)]
    for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-5)):
        typed = [a.astype(dtype) for a in arrays]
        fused, name = _on_backend(conv_backend, "conv", "numba", fn, typed, **kwargs)
        reference, ref_name = _on_backend(conv_backend, "conv", "reference", fn, typed,
                                          **kwargs)
        assert name == ref_name  # PyTorch's node name, whichever path ran
        for a, b in zip(fused, reference):
            assert_close(a, b, rtol=tolerance, atol=tolerance)
    conv_backend("conv", "numba")
    compare(fn, tfn, arrays, np.float64, **kwargs)


def _matches_reference_and_torch(conv_backend, fn, tfn, arrays, **kwargs):
    """fn on the Numba kernels equals the reference (outputs and gradients, float64 to 1e-12)
    and PyTorch."""
    fused, _ = _on_backend(conv_backend, "conv", "numba", fn, arrays, **kwargs)
    reference, _ = _on_backend(conv_backend, "conv", "reference", fn, arrays, **kwargs)
    for a, b in zip(fused, reference):
        assert_close(a, b, rtol=1e-12, atol=1e-12)
    conv_backend("conv", "numba")
    compare(fn, tfn, arrays, np.float64, **kwargs)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_conv_kernel_direct_path(transposed, threads, conv_backend, monkeypatch):
    """Thin 3x3 stride-1 layers on maps of 32x32 and more take conv_direct_cpu (the forward
    and both gradients of conv2d, the forward of conv_transpose2d), on one thread or shared
    between two: equal to the reference and PyTorch."""
    numba = pytest.importorskip("numba")
    from minifm.kernels import conv_cpu, conv_direct_cpu
    calls = []
    for name in ("conv_forward", "conv_input_grad", "conv_weight_grad"):
        original = getattr(conv_direct_cpu, name)
        monkeypatch.setattr(conv_direct_cpu, name, lambda *a, _f=original, _n=name, **k: (
            calls.append(_n), _f(*a, **k))[1])
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        x = randn(5, 3, 33, 32)
        w = randn(3, 7, 3, 3) if transposed else randn(7, 3, 3, 3)
        fn, tfn = (F.conv_transpose2d, TF.conv_transpose2d) if transposed else (F.conv2d,
                                                                                  TF.conv2d)
        _matches_reference_and_torch(conv_backend, fn, tfn, [x, w, randn(7)], padding=1)
    finally:
        numba.set_num_threads(previous)
    expected = {"conv_input_grad"} if transposed else {"conv_forward", "conv_input_grad",
                                                       "conv_weight_grad"}
    assert expected <= set(calls)
    assert conv_cpu._direct(x.shape, w.shape, (1, 1), ((1, 1), (1, 1)), (1, 1), 1, x.dtype)


@pytest.mark.parametrize("kwargs", [dict(padding=1), dict(stride=2)], ids=["direct", "im2col"])
def test_conv_kernel_empty_batch(kwargs, conv_backend):
    """An empty batch through the kernels (the direct path's 32x32 maps and the im2col
    path): empty outputs and input gradients, a zero weight gradient, as PyTorch."""
    for fn, tfn, w in ((F.conv2d, TF.conv2d, randn(4, 3, 3, 3)),
                       (F.conv_transpose2d, TF.conv_transpose2d, randn(3, 4, 3, 3))):
        _matches_reference_and_torch(conv_backend, fn, tfn, [randn(0, 3, 33, 32), w, randn(4)],
                                     **kwargs)


@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_conv_kernel_dense_layers(transposed, conv_backend):
    """A kernel that covers the whole input (DCGAN's k4 layer on 4x4 maps, and the
    transposed one from 1x1 noise) runs as a matrix product: equal to the reference and
    PyTorch, gradients included; odd channel counts and a stride that cannot matter."""
    if transposed:
        arrays, fn, tfn = [randn(3, 5, 1, 1), randn(5, 7, 4, 3), randn(7)], F.conv_transpose2d, \
            TF.conv_transpose2d
    else:
        arrays, fn, tfn = [randn(3, 5, 4, 3), randn(7, 5, 4, 3), randn(7)], F.conv2d, TF.conv2d
    _matches_reference_and_torch(conv_backend, fn, tfn, arrays, stride=2)


@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("needs", ["input", "weight", "both"])
def test_conv_kernel_partial_gradients(transposed, needs, conv_backend):
    """The kernels' one-pass backward (conv_backward, conv_transpose_backward) with only the
    input, only the weight, or both needing a gradient (the other saved as its shape only)
    matches PyTorch."""
    conv_backend("conv", "numba")
    x = randn(3, 4, 9, 8)
    w = randn(4, 3, 4, 4) if transposed else randn(5, 4, 3, 3)
    kwargs = dict(stride=2, padding=1)
    fn, tfn = (F.conv_transpose2d, TF.conv_transpose2d) if transposed else (F.conv2d, TF.conv2d)
    grads = {"input": (True, False), "weight": (False, True), "both": (True, True)}[needs]
    X, W = (minifm.tensor(a, requires_grad=g) for a, g in zip((x, w), grads))
    tx, tw = (torch.tensor(a, requires_grad=g) for a, g in zip((x, w), grads))
    y, ty = fn(X, W, **kwargs), tfn(tx, tw, **kwargs)
    g = randn(*ty.shape)
    y.backward(minifm.tensor(g))
    ty.backward(torch.tensor(g))
    for mine, theirs, needed in ((X, tx, grads[0]), (W, tw, grads[1])):
        if needed:
            assert_close(mine.grad, theirs.grad)
        else:
            assert mine.grad is None


@pytest.mark.parametrize("kwargs,x_shape", [
    (dict(kernel_size=2), (2, 3, 11, 13)),
    (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 13, 11)),
    (dict(kernel_size=(3, 2), stride=1, dilation=(2, 3), padding=1), (1, 2, 7, 9)),
    (dict(kernel_size=3, stride=2), (3, 2, 7, 7)),
])
def test_max_pool_kernel_matches_reference_and_torch(kwargs, x_shape, conv_backend):
    x = np.random.default_rng(3).permutation(math.prod(x_shape)).reshape(x_shape) / 7.0
    fused, name = _on_backend(conv_backend, "max_pool", "numba", F.max_pool2d, [x], **kwargs)
    reference, _ = _on_backend(conv_backend, "max_pool", "reference", F.max_pool2d, [x],
                               **kwargs)
    assert name == "MaxPool2DWithIndicesBackward0"
    for a, b in zip(fused, reference):  # overlapping windows add in another order
        assert_close(a, b, rtol=1e-12, atol=1e-12)
    conv_backend("max_pool", "numba")
    compare(F.max_pool2d, TF.max_pool2d, [x], np.float32, **kwargs)


def test_max_pool_kernel_second_order_runs_the_reference(conv_backend):
    """Under create_graph the fused node differentiates through the reference's backward."""
    conv_backend("max_pool", "numba")
    x = randn(2, 3, 7, 9)
    X, tx = minifm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    for lib, t, f in ((minifm, X, F), (torch, tx, TF)):
        y = f.max_pool2d(t, 3, 2, 1) ** 2
        (g,) = lib.autograd.grad(y.sum(), t, create_graph=True)
        (g * g).sum().backward()
    assert_close(X.grad, tx.grad)


def _python_chunks(monkeypatch, path):
    """Make the convolution kernels run their chunks from Python where path == "python"
    (the path taken where NumPy's OpenBLAS is not found), not as compiled shares."""
    from minifm.kernels import conv_cpu
    if path == "python":
        monkeypatch.setattr(conv_cpu, "_share_gemm_address", lambda dtype, chunks: 0)


@pytest.mark.parametrize("path", ["compiled", "python"])
@pytest.mark.parametrize("threads", [1, 2])
def test_conv_kernel_chunks_and_threads(threads, path, conv_backend, monkeypatch):
    """Many small chunks (one sample's 5x5 map each), run on one or two threads, as compiled
    shares or from Python, give the reference's output and gradients (each thread fills its
    own samples' rows; the weight gradient sums the chunks' terms)."""
    numba = pytest.importorskip("numba")
    from minifm.kernels import conv_cpu
    _python_chunks(monkeypatch, path)
    monkeypatch.setattr(conv_cpu, "COLUMNS", 1)
    monkeypatch.setattr(conv_cpu, "CHUNK_BYTES", 1)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        arrays = [randn(5, 4, 9, 9), randn(6, 2, 3, 3), randn(6)]
        kwargs = dict(stride=2, padding=1, groups=2)
        for fn in (F.conv2d, F.conv_transpose2d):
            w = arrays[1] if fn is F.conv2d else randn(4, 3, 3, 3)
            fused, _ = _on_backend(conv_backend, "conv", "numba", fn, [arrays[0], w, arrays[2]],
                                   **kwargs)
            reference, _ = _on_backend(conv_backend, "conv", "reference", fn,
                                       [arrays[0], w, arrays[2]], **kwargs)
            for a, b in zip(fused, reference):
                assert_close(a, b, rtol=1e-12, atol=1e-12)
    finally:
        numba.set_num_threads(previous)


@pytest.mark.parametrize("fn", [F.conv2d, F.conv_transpose2d])
def test_conv_kernel_weight_gradients_reach_the_engine_as_their_own_arrays(
        fn, conv_backend, monkeypatch):
    """The fused 2-d convolutions hand the engine weight gradients that own their memory: a
    view (a same-shape reshape was one) is copied into .grad, ~10 ms of a ResNet-18 step.
    (A 1-d convolution's, reshaped from the 2-d kernels' (O, C, 1, k), is still a view.)"""
    from minifm.autograd import engine
    conv_backend("conv", "numba")
    handed = []
    as_array = engine._as_array
    monkeypatch.setattr(engine, "_as_array",
                        lambda g: handed.append(as_array(g).flags.owndata) or as_array(g))
    x, w = minifm.tensor(randn(2, 4, 9, 9)), minifm.tensor(randn(4, 4, 3, 3), requires_grad=True)
    fn(x, w, padding=1).sum().backward()
    assert handed == [True]


@pytest.mark.parametrize("path", ["compiled", "python"])
@pytest.mark.parametrize("transposed_from", [0, 10 ** 9], ids=["gw^T", "gw"])
def test_conv_kernel_weight_gradient_orientations(transposed_from, path, conv_backend,
                                                  monkeypatch):
    """The weight gradient's two product orientations (gw^T = cols @ gy^T on wide column
    matrices, gy @ cols^T on narrow ones) give the reference's gradient, in an array of its
    own (a leaf's .grad that is a view would be copied by the engine), on both paths."""
    pytest.importorskip("numba")
    from minifm.kernels import conv_cpu
    _python_chunks(monkeypatch, path)
    monkeypatch.setattr(conv_cpu, "TRANSPOSED_FROM", transposed_from)
    arrays = [randn(3, 4, 9, 8), randn(6, 2, 3, 3), randn(6)]
    for fn in (F.conv2d, F.conv_transpose2d):
        w = arrays[1] if fn is F.conv2d else randn(4, 3, 3, 3)
        fused, _ = _on_backend(conv_backend, "conv", "numba", fn, [arrays[0], w, arrays[2]],
                               stride=2, padding=1, groups=2)
        reference, _ = _on_backend(conv_backend, "conv", "reference", fn,
                                   [arrays[0], w, arrays[2]], stride=2, padding=1, groups=2)
        for a, b in zip(fused, reference):
            assert_close(a, b, rtol=1e-12, atol=1e-12)
    x, gy = arrays[0], randn(3, 6, 5, 4)
    _, gw = conv_cpu.conv_backward(x, gy, arrays[1], (2, 2), ((1, 1), (1, 1)), (1, 1), 2)
    assert gw.flags.owndata and gw.shape == arrays[1].shape


def test_conv_kernel_chunk_sizes():
    """Chunks are at least COLUMNS wide, fill up to CHUNK_BYTES of columns beyond that, and
    on two threads leave two chunks per thread where that keeps them COLUMNS wide."""
    numba = pytest.importorskip("numba")
    from minifm.kernels import conv_cpu
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        # ResNet-18's 512-channel 3x3 layer on 1x1 maps: one chunk of the whole batch
        assert conv_cpu._chunks(16, 1, 4608, 4) == [(0, 16)]
        # CIFAR's 32-channel 16x16 layer: one sample (its columns already fill the budget)
        assert len(conv_cpu._chunks(64, 256, 288, 4)) == 64
        # one input channel (16 rows): the whole batch in one chunk
        assert conv_cpu._chunks(64, 64, 16, 4) == [(0, 64)]
        if numba.config.NUMBA_NUM_THREADS >= 2:
            numba.set_num_threads(2)
            assert len(conv_cpu._chunks(64, 64, 16, 4)) == 4
            assert conv_cpu._chunks(16, 1, 4608, 4) == [(0, 16)]
    finally:
        numba.set_num_threads(previous)


@pytest.mark.parametrize("shape_x,shape_w", [((12, 8, 9, 9), (6, 8, 3, 3)),   # many chunks
                                             ((3, 64, 2, 2), (32, 64, 3, 3))])  # one chunk
def test_conv_kernel_threads_and_blas(conv_backend, shape_x, shape_w):
    """On one thread and two the kernels give the reference's values, and OpenBLAS's own
    thread count is restored after them (it runs one thread inside them, minifm's threads
    sharing the chunks, or, for one chunk, each product's rows: matmul_cpu)."""
    numba = pytest.importorskip("numba")
    from minifm.kernels import blas_cpu
    functions = blas_cpu._blas_thread_functions()
    if functions is None:
        pytest.skip("NumPy's BLAS is not a bundled OpenBLAS")
    get, set_ = functions
    previous, threads = get(), numba.get_num_threads()
    x, w = randn(*shape_x), randn(*shape_w)
    reference, _ = _on_backend(conv_backend, "conv", "reference", F.conv2d, [x, w], padding=1)
    set_(3)
    try:
        for count in range(1, min(2, numba.config.NUMBA_NUM_THREADS) + 1):
            numba.set_num_threads(count)
            fused, _ = _on_backend(conv_backend, "conv", "numba", F.conv2d, [x, w], padding=1)
            for a, b in zip(fused, reference):
                np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-9,
                                           atol=1e-9)
            assert get() == 3
    finally:
        numba.set_num_threads(threads)
        set_(previous)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_conv_kernel_threads_work_in_a_forked_child(conv_backend):
    """After the parent ran convolutions on two threads, a forked child (a DataLoader
    worker, say) runs them too, on one thread (cpu_tasks: GNU OpenMP would stop a child
    that ran a parallel loop)."""
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two Numba threads")
    conv_backend("conv", "numba")
    previous = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        x, w = minifm.tensor(randn(32, 3, 33, 33)), minifm.tensor(randn(4, 3, 3, 3))
        expected = F.conv2d(x, w, stride=2).numpy()
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 if the convolution ran and agreed
            ok = np.allclose(F.conv2d(x, w, stride=2).numpy(), expected)
            os._exit(0 if ok else 1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's convolution did not finish in 60 s")
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        numba.set_num_threads(previous)


def test_conv_kernels_run_with_numba_compilation_switched_off():
    """NUMBA_DISABLE_JIT=1 (a debugging setting: the kernels run as Python) leaves the
    convolutions working: the compiled chunk passes, whose BLAS call is an intrinsic usable
    only in compiled code, are not chosen then."""
    pytest.importorskip("numba")
    import subprocess
    import sys
    script = (
        "import sys, numpy as np, numba\n"
        "from minifm.kernels import conv_cpu as k\n"
        "numba.set_num_threads(1)\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.standard_normal((2, 2, 4, 4)); w = rng.standard_normal((3, 2, 3, 3))\n"
        "args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)\n"
        "y = k.conv_forward(x, w, *args, (4, 4))\n"
        "gx, gw = k.conv_backward(x, y, w, *args)\n"
        "np.save(sys.stdout.buffer, np.concatenate([y.ravel(), gx.ravel(), gw.ravel()]))\n")
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    import io
    got = np.load(io.BytesIO(run.stdout))
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((3, 2, 3, 3))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = TF.conv2d(tx, tw, padding=1)
    ty.backward(ty.detach())
    expected = np.concatenate([t.detach().numpy().ravel() for t in (ty, tx.grad, tw.grad)])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
