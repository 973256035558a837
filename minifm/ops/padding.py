"""Padding: torch.nn.functional.pad."""
from __future__ import annotations

from ..autograd import Function


class Pad(Function):
    @staticmethod
    def forward(ctx, x, *, widths, value):
        ctx.key = tuple(slice(lo, x.shape[i] + lo) for i, (lo, hi) in enumerate(widths))
        return ctx.xp.pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.key]


def pad(input, pad, mode="constant", value=0.0):
    """F.pad: `pad` lists (left, right) for the last dim, then the one before, ...
    Only constant padding is implemented; negative widths crop."""
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not implemented (only 'constant')")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding of length {len(pad)} is invalid for a tensor of "
                         f"{input.ndim} dimensions")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    crop = tuple(slice(max(-lo, 0), s - max(-hi, 0)) for (lo, hi), s in zip(widths, input.shape))
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        input = input[crop]
        widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    return Pad.apply(input, widths=tuple(widths), value=value)
