"""Conv1d/2d/3d and ConvTranspose1d/2d/3d: the functional convolutions (ops/conv.py) with
their weight and bias as parameters, PyTorch's shapes, names and default init.

padding_mode 'reflect', 'replicate' or 'circular' pads the input with F.pad first and then
convolves without padding, as PyTorch does."""
from __future__ import annotations

import math

from .. import creation
from ..ops.conv import ntuple
from . import functional as F, init
from .module import Module
from .parameter import Parameter


class _ConvNd(Module):
    """What the convolutions share: argument checks, parameters, init, repr, padding modes.

    Default init (PyTorch's): weight ~ kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where fan_in is
    weight.shape[1] * prod(kernel_size) (for a transposed convolution that is
    out_channels/groups * prod(kernel_size), PyTorch's convention).
    """
    nd = 2            # spatial dimensions
    functional = None  # the F function

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 transposed, output_padding, groups, bias, padding_mode, device, dtype):
        super().__init__()
        name = type(self).__name__
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by "
                             f"groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{name}: padding_mode must be one of 'zeros', 'reflect', "
                             f"'replicate' or 'circular', got {padding_mode!r}")
        if transposed and padding_mode != "zeros":
            raise ValueError(f"{name}: only 'zeros' padding mode is supported, got "
                             f"{padding_mode!r}")
        nd = self.nd
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = ntuple(name, "kernel_size", kernel_size, 1, nd)
        self.stride = ntuple(name, "stride", stride, 1, nd)
        self.dilation = ntuple(name, "dilation", dilation, 1, nd)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be one "
                                 "of ('valid', 'same')")
            if padding == "same" and self.stride != (1,) * nd:
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 "convolutions")
            totals = [d * (k - 1) if padding == "same" else 0
                      for k, d in zip(self.kernel_size, self.dilation)]
            widths = [(t // 2, t - t // 2) for t in totals]
            self.padding = padding
        else:
            self.padding = ntuple(name, "padding", padding, 0, nd)
            widths = [(p, p) for p in self.padding]
        # F.pad's order: (before, after) of the last dim first (PyTorch's attribute name)
        self._reversed_padding_repeated_twice = tuple(w for pair in reversed(widths) for w in pair)
        self.padding_mode = padding_mode
        self.transposed = transposed
        self.output_padding = ntuple(name, "output_padding", output_padding, 0, nd)
        if transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(creation.empty(*shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(creation.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        zeros, ones = (0,) * self.nd, (1,) * self.nd
        if self.padding != zeros:
            s += f", padding={self.padding}"
        if self.dilation != ones:
            s += f", dilation={self.dilation}"
        if self.output_padding != zeros:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    """A convolution layer: (N, C_in, *spatial) -> (N, C_out, *out); weight of shape
    (out_channels, in_channels/groups, *kernel_size), bias (out_channels,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         False, 0, groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return self.functional(input, self.weight, self.bias, self.stride, 0,
                                   self.dilation, self.groups)
        return self.functional(input, self.weight, self.bias, self.stride, self.padding,
                               self.dilation, self.groups)


class Conv1d(_Conv):
    """1-D convolution over (N, C_in, L); weight (out_channels, in_channels/groups, k)."""
    nd, functional = 1, staticmethod(F.conv1d)


class Conv2d(_Conv):
    """2-D convolution over (N, C_in, H, W) -> (N, C_out, Ho, Wo); weight of shape
    (out_channels, in_channels/groups, kh, kw), bias (out_channels,)."""
    nd, functional = 2, staticmethod(F.conv2d)


class Conv3d(_Conv):
    """3-D convolution over (N, C_in, D, H, W); weight (out_channels, in_channels/groups,
    kd, kh, kw)."""
    nd, functional = 3, staticmethod(F.conv3d)


class _ConvTranspose(_ConvNd):
    """A transposed convolution layer, (N, C_in, *spatial) -> (N, C_out, *out) with, per
    axis, out = (in - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1; weight
    of shape (in_channels, out_channels/groups, *kernel_size). forward(input, output_size)
    picks the output_padding that gives output_size, as in PyTorch."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple, got "
                             f"{padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         True, output_padding, groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size):
        """The output_padding for which the output has output_size (its last nd entries)."""
        nd = self.nd
        size = tuple(output_size)[-nd:]
        extra = []
        for i in range(nd):
            smallest = ((input.shape[-nd + i] - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            largest = smallest + self.stride[i] - 1
            if not smallest <= size[i] <= largest:
                raise ValueError(f"{type(self).__name__}: requested an output size of {size}, "
                                 f"but valid sizes for input of shape {tuple(input.shape)} "
                                 f"range from {smallest} to {largest} along dimension {i}")
            extra.append(size[i] - smallest)
        return tuple(extra)

    def forward(self, input, output_size=None):
        extra = self.output_padding if output_size is None else self._output_padding(
            input, output_size)
        return self.functional(input, self.weight, self.bias, self.stride, self.padding, extra,
                               self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution; weight (in_channels, out_channels/groups, k)."""
    nd, functional = 1, staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution, (N, C_in, H, W) -> (N, C_out, Hout, Wout); weight of shape
    (in_channels, out_channels/groups, kh, kw)."""
    nd, functional = 2, staticmethod(F.conv_transpose2d)


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution; weight (in_channels, out_channels/groups, kd, kh, kw)."""
    nd, functional = 3, staticmethod(F.conv_transpose3d)
