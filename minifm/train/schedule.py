"""The learning-rate shape used by nanoGPT: linear warmup, then cosine decay to a floor."""
from __future__ import annotations

import math


class WarmupCosine:
    """factor(step) for LambdaLR: lr(step) = base_lr * factor(step).

    Warmup rises linearly as (step + 1) / (warmup_steps + 1); from warmup_steps to
    decay_steps the factor follows half a cosine from 1 down to min_ratio, then stays there.
    A plain class rather than a lambda, so a run can be rebuilt from its config.
    """

    def __init__(self, warmup_steps, decay_steps, min_ratio=0.1):
        if decay_steps < warmup_steps:
            raise ValueError(f"WarmupCosine: decay_steps ({decay_steps}) must be >= "
                             f"warmup_steps ({warmup_steps})")
        self.warmup_steps, self.decay_steps, self.min_ratio = warmup_steps, decay_steps, min_ratio

    def __call__(self, step):
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if step >= self.decay_steps:
            return self.min_ratio
        progress = (step - self.warmup_steps) / max(self.decay_steps - self.warmup_steps, 1)
        return self.min_ratio + 0.5 * (1 + math.cos(math.pi * progress)) * (1 - self.min_ratio)
