"""RMSprop: torch.optim.RMSprop's rule (the single-tensor path), step by step.

    g   = grad (negated when maximizing) + weight_decay * p
    v   = alpha v + (1 - alpha) g^2                  running mean of squared gradients
    a   = a + (1 - alpha) (g - a)                    running mean of gradients (centered)
    d   = sqrt(v - a^2) if centered else sqrt(v), then d + eps
    buf = momentum buf + g / d, p = p - lr buf       with momentum > 0
    p   = p - lr g / d                               without
"""
from __future__ import annotations

from .. import backend
from .optimizer import Optimizer, lerp_


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False, foreach=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if alpha < 0.0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _update(self, p, grad, state, group):
        xp = backend.array_module(p.device)
        lr, alpha, momentum = group["lr"], group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = self._zeros_like(p)
            if momentum > 0:
                state["momentum_buffer"] = self._zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = self._zeros_like(p)
        state["step"] += 1
        g = self._signed_grad(p, grad, group["maximize"], group["weight_decay"])
        square_avg = state["square_avg"]._data
        work = self._scratch(p, 1)

        square_avg *= alpha
        xp.multiply(g, 1 - alpha, out=work)
        work *= g
        square_avg += work
        if group["centered"]:
            grad_avg = state["grad_avg"]._data
            lerp_(xp, grad_avg, g, 1 - alpha, work)
            xp.multiply(grad_avg, grad_avg, out=work)
            xp.subtract(square_avg, work, out=work)
            avg = xp.sqrt(work, out=work)
        else:
            avg = xp.sqrt(square_avg, out=work)
        avg += group["eps"]

        if momentum > 0:
            buf = state["momentum_buffer"]._data
            buf *= momentum
            buf += xp.divide(g, avg, out=avg)
            p._data += xp.multiply(buf, -lr, out=avg)
        else:
            update = xp.multiply(g, -lr, out=self._scratch(p, 0))  # g is no longer needed
            update /= avg
            p._data += update
