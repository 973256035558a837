"""Padding layers, thin modules over F.pad (ops/padding.py), as torch.nn's: ReflectionPad,
ReplicationPad, CircularPad, ZeroPad and ConstantPad in 1d, 2d and 3d. `padding` is an int
(the same width on every side) or the (left, right, top, bottom, front, back) widths."""
from __future__ import annotations

from . import functional as F
from .module import Module


def _widths(padding, n):
    return tuple(padding) if isinstance(padding, (tuple, list)) else (padding,) * n


class _PadNd(Module):
    """Pad the last dims of the input with F.pad(input, self.padding, self.mode)."""

    mode = "constant"

    def __init__(self, padding, sides):
        super().__init__()
        self.padding = _widths(padding, sides)

    def forward(self, input):
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    mode = "reflect"

    def __init__(self, padding):
        super().__init__(padding, 2)


class ReflectionPad2d(_PadNd):
    mode = "reflect"

    def __init__(self, padding):
        super().__init__(padding, 4)


class ReflectionPad3d(_PadNd):
    mode = "reflect"

    def __init__(self, padding):
        super().__init__(padding, 6)


class ReplicationPad1d(_PadNd):
    mode = "replicate"

    def __init__(self, padding):
        super().__init__(padding, 2)


class ReplicationPad2d(_PadNd):
    mode = "replicate"

    def __init__(self, padding):
        super().__init__(padding, 4)


class ReplicationPad3d(_PadNd):
    mode = "replicate"

    def __init__(self, padding):
        super().__init__(padding, 6)


class _CircularPadNd(_PadNd):
    """Circular padding; the module checks the input's dims (as torch.nn's, ValueError)."""

    mode = "circular"

    def forward(self, input):
        dims = len(self.padding) // 2
        if input.ndim not in (dims + 1, dims + 2):
            raise ValueError(f"{type(self).__name__}: expected {dims + 1}D or {dims + 2}D input "
                             f"(got {input.ndim}D input)")
        return super().forward(input)


class CircularPad1d(_CircularPadNd):
    def __init__(self, padding):
        super().__init__(padding, 2)


class CircularPad2d(_CircularPadNd):
    def __init__(self, padding):
        super().__init__(padding, 4)


class CircularPad3d(_CircularPadNd):
    def __init__(self, padding):
        super().__init__(padding, 6)


class _ConstantPadNd(_PadNd):
    """Pad with a constant `value`."""

    def __init__(self, padding, sides, value):
        super().__init__(padding, sides)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    def __init__(self, padding, value):
        super().__init__(padding, 2, value)


class ConstantPad2d(_ConstantPadNd):
    def __init__(self, padding, value):
        super().__init__(padding, 4, value)


class ConstantPad3d(_ConstantPadNd):
    def __init__(self, padding, value):
        super().__init__(padding, 6, value)


class ZeroPad1d(ConstantPad1d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"
