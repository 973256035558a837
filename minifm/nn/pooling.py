"""Pooling layers over 1, 2 or 3 spatial dimensions (max, average, adaptive, max unpooling):
thin modules over the functions of ops/pooling.py (they hold no parameters). Their attributes
and reprs are PyTorch's, which keeps some arguments as given and turns others into tuples."""
from __future__ import annotations

from ..ops.conv import ntuple
from . import functional as F
from .module import Module


class _MaxPoolNd(Module):
    """The maximum of each kernel_size window (stride defaults to kernel_size); padding is
    with -inf, ceil_mode lets a last, partial window start inside the input; return_indices
    also returns each maximum's flat position in its input plane (for MaxUnpool)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        return self.functional(input, self.kernel_size, self.stride, self.padding,
                               self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max pooling over (N, C, L)."""
    functional = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """Max pooling over (N, C, H, W)."""
    functional = staticmethod(F.max_pool2d)


class MaxPool3d(_MaxPoolNd):
    """Max pooling over (N, C, D, H, W)."""
    functional = staticmethod(F.max_pool3d)


class AvgPool1d(Module):
    """The mean of each kernel_size window over (N, C, L) (zero padding counted unless
    count_include_pad is False). PyTorch keeps its sizes as 1-tuples."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size = ntuple("AvgPool1d", "kernel_size", kernel_size, 1, 1)
        self.stride = ntuple("AvgPool1d", "stride", stride if stride is not None
                             else kernel_size, 1, 1)
        self.padding = ntuple("AvgPool1d", "padding", padding, 0, 1)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AvgPoolNd(Module):
    """The mean of each kernel_size window (zero padding counted unless count_include_pad is
    False; divisor_override replaces the window size as the divisor)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        return self.functional(input, self.kernel_size, self.stride, self.padding,
                               self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """Average pooling over (N, C, H, W)."""
    functional = staticmethod(F.avg_pool2d)


class AvgPool3d(_AvgPoolNd):
    """Average pooling over (N, C, D, H, W)."""
    functional = staticmethod(F.avg_pool3d)


class _AdaptivePoolNd(Module):
    """Pool to a fixed output_size (an int, or one size per spatial dim where None keeps that
    input size), whatever the input's size."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return self.functional(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    functional = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    functional = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveAvgPool3d(_AdaptivePoolNd):
    functional = staticmethod(F.adaptive_avg_pool3d)


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    """The maximum of each adaptive window; return_indices as in MaxPool."""

    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input):
        return self.functional(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    functional = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    functional = staticmethod(F.adaptive_max_pool2d)


class _MaxUnpoolNd(Module):
    """The partial inverse of MaxPool: forward(input, indices, output_size=None) puts each
    value at its index in a zero output."""
    nd = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = ntuple(name, "kernel_size", kernel_size, 1, self.nd)
        self.stride = ntuple(name, "stride", stride if stride is not None else kernel_size, 1,
                             self.nd)
        self.padding = ntuple(name, "padding", padding, 0, self.nd)

    def forward(self, input, indices, output_size=None):
        return self.functional(input, indices, self.kernel_size, self.stride, self.padding,
                               output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    nd, functional = 1, staticmethod(F.max_unpool1d)


class MaxUnpool2d(_MaxUnpoolNd):
    nd, functional = 2, staticmethod(F.max_unpool2d)
