"""Adam and AdamW: torch.optim.Adam / AdamW's rule (the single-tensor path), step by step.

At step t, for a gradient g (negated when maximizing):

    g  = g + weight_decay * p                  Adam: L2 decay, folded into the gradient
    p  = p * (1 - lr * weight_decay)           AdamW: decay decoupled from the gradient
    m  = m + (1 - beta1) (g - m)               first moment (a lerp, as PyTorch computes it)
    v  = beta2 v + (1 - beta2) g^2             second moment
    v^ = max(v^, v) with amsgrad, else v
    p  = p - lr / (1 - beta1^t) * m / (sqrt(v^) / sqrt(1 - beta2^t) + eps)

Every line runs in place on the parameter's arrays or on two scratch arrays shared by all
parameters, so a step makes no temporaries however large the model.
"""
from __future__ import annotations

from .. import backend
from .optimizer import Optimizer, lerp_


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False, foreach=None,
                 fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _update(self, p, grad, state, group):
        xp = backend.array_module(p.device)
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, decoupled = group["weight_decay"], group["decoupled_weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = self._zeros_like(p)
            state["exp_avg_sq"] = self._zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = self._zeros_like(p)
        state["step"] += 1
        step = state["step"]
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data

        if weight_decay and decoupled:
            p._data *= 1 - lr * weight_decay
        g = self._signed_grad(p, grad, group["maximize"], 0 if decoupled else weight_decay)
        work = self._scratch(p, 1)

        lerp_(xp, m, g, 1 - beta1, work)
        v *= beta2
        xp.multiply(g, 1 - beta2, out=work)
        work *= g
        v += work

        if group["amsgrad"]:
            v = xp.maximum(state["max_exp_avg_sq"]._data, v, out=state["max_exp_avg_sq"]._data)
        step_size = lr / (1 - beta1 ** step)
        denom = xp.sqrt(v, out=work)
        denom /= (1 - beta2 ** step) ** 0.5
        denom += eps
        update = xp.multiply(m, -step_size, out=self._scratch(p, 0))
        update /= denom
        p._data += update


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): the parameters shrink by
    lr * weight_decay each step, independently of the gradient's scale."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)
