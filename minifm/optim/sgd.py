"""Stochastic gradient descent, with momentum, Nesterov momentum, dampening and L2 weight
decay: torch.optim.SGD's rule (its single-tensor path), step by step.

    g   = grad (negated when maximizing) + weight_decay * p
    buf = g at the first step, then momentum * buf + (1 - dampening) * g
    g   = g + momentum * buf with nesterov, else buf            (when momentum != 0)
    p   = p - lr * g

On the CPU with Numba the rule runs as one pass per parameter (minifm.kernels.sgd_cpu, the
same arithmetic); MINIFM_SGD_BACKEND=reference runs the NumPy operations below.
"""
from __future__ import annotations

from .. import backend, kernels
from ..tensor import Tensor
from .optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update(self, p, grad, state, group):
        momentum = group["momentum"]
        kernel = kernels.select("sgd", p.device.type, dtype=p.dtype)
        buf = state.get("momentum_buffer")
        if kernel is not None and all(a.dtype == p.dtype and a.flags.c_contiguous for a in (
                p._data, grad, p._data if buf is None else buf._data)):
            first = momentum != 0 and buf is None
            if first:
                buf = state["momentum_buffer"] = self._zeros_like(p)
            kernel.sgd_update(p._data, grad, p._data if buf is None else buf._data,
                              group["lr"], momentum, group["dampening"],
                              group["weight_decay"], group["nesterov"], group["maximize"],
                              first)
            return
        xp = backend.array_module(p.device)
        g = self._signed_grad(p, grad, group["maximize"], group["weight_decay"])
        if momentum != 0:
            if buf is None:
                buf = state["momentum_buffer"] = Tensor._make(g.copy(), p.device)
            else:
                buf._data *= momentum
                if group["dampening"]:
                    damped = xp.multiply(g, 1 - group["dampening"], out=self._scratch(p, 1))
                    buf._data += damped
                else:
                    buf._data += g
            if group["nesterov"]:
                lookahead = xp.multiply(buf._data, momentum, out=self._scratch(p, 1))
                lookahead += g
                g = lookahead
            else:
                g = buf._data
        p._data += xp.multiply(g, -group["lr"], out=self._scratch(p, 1))
