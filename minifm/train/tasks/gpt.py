"""Character- or BPE-level language modelling with a GPT, as nanoGPT's train.py does it:
random windows of a token stream, next-token cross-entropy, AdamW with weight decay on 2-D
weights only, validation loss estimated on random windows of held-out text."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ... import backend
from ...autograd import no_grad
from ...creation import tensor
from ...data import random_blocks
from ...models.gpt import GPT, GPTConfig
from ..distill import load_teacher, soft_target_loss
from ..settings import (
    ConfigError, require_at_least, require_divisible, require_fraction, require_positive, setting,
)
from .base import Task
from .text import TextDataConfig, corpus_and_tokenizer, encode_prompt, split_tokens


@dataclass
class GPTTaskConfig(TextDataConfig):
    block_size: int = setting(64, "context length in tokens")
    batch_size: int = setting(12, "sequences per training step")
    n_layer: int = setting(4, "transformer blocks")
    n_head: int = setting(4, "attention heads per block")
    n_embd: int = setting(128, "width of the model (divisible by n_head)")
    dropout: float = setting(0.0, "dropout probability")
    bias: bool = setting(False, "biases in the Linear and LayerNorm layers")
    learning_rate: float = setting(1e-3, "AdamW's peak learning rate")
    weight_decay: float = setting(0.1, "AdamW's weight decay on the matrices")
    beta1: float = setting(0.9, "AdamW's beta1")
    beta2: float = setting(0.99, "AdamW's beta2")
    eval_iters: int = setting(20, "batches per evaluation")
    seed: int = setting(1337, "seed of the initial weights and of the batches")
    distill_from: str | None = setting(None, "a gpt checkpoint whose model teaches this one "
                                       "(knowledge distillation; its tokenizer is used)")
    distill_temperature: float = setting(2.0, "distillation: temperature softening both "
                                         "models' distributions")
    distill_alpha: float = setting(0.5, "distillation: weight of the teacher's soft targets "
                                   "(1 - alpha weighs the data loss)")

    def __post_init__(self):
        super().__post_init__()
        require_at_least(self, 1, "block_size", "batch_size", "n_layer", "n_head", "n_embd",
                         "eval_iters")
        require_divisible(self, "n_embd", "n_head")
        require_fraction(self, "dropout", "beta1", "beta2")
        require_positive(self, "learning_rate", "distill_temperature")
        require_at_least(self, 0, "weight_decay")
        if not 0 <= self.distill_alpha <= 1:
            raise ConfigError("GPTTaskConfig", f"distill_alpha={self.distill_alpha} must be in "
                              "[0, 1]", "distill_alpha")
        if self.distill_from:  # absolute, so that a resumed run finds it from any folder
            self.distill_from = os.path.abspath(self.distill_from)


class GPTTask(Task):
    """Train a GPT language model on a text corpus (nanoGPT's recipe)."""

    name = "gpt"
    config_class = GPTTaskConfig
    train_defaults = dict(max_steps=1500, eval_interval=250, warmup_steps=100,
                          min_lr_ratio=0.1, grad_clip=1.0, out_dir="runs/gpt")
    sample_options = ("prompt", "max_new_tokens", "temperature", "top_k")
    item_name = "tokens"

    def __init__(self, cfg: GPTTaskConfig, out_dir, state=None, load_data=True, device="cpu"):
        super().__init__(cfg, out_dir, device=device)
        self.teacher = None  # loaded for training only (see loss)
        if cfg.distill_from and state is None:  # a new run: the teacher's tokenizer
            self.teacher, tokenizer = load_teacher(cfg.distill_from, device)
            if self.teacher.config.block_size < cfg.block_size:
                raise ValueError(f"--distill-from: the teacher's block_size "
                                 f"({self.teacher.config.block_size}) is below the "
                                 f"student's ({cfg.block_size})")
            state = {"tokenizer": tokenizer}
        backend.manual_seed(cfg.seed)  # after building the teacher: the same student as alone
        text, self.tokenizer = corpus_and_tokenizer(cfg, state, load_data)
        self.splits = {}
        if text is not None:
            self.splits = split_tokens("gpt", cfg, self.tokenizer.encode(text),
                                       cfg.block_size + 1, "block_size")
        self.model = GPT(GPTConfig(block_size=cfg.block_size, vocab_size=self.tokenizer.vocab_size,
                                   n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                                   dropout=cfg.dropout, bias=cfg.bias)).to(device)
        self.optimizer = self.model.configure_optimizers(cfg.weight_decay, cfg.learning_rate,
                                                         (cfg.beta1, cfg.beta2))
        self.batch_generator = backend.Generator(seed=cfg.seed + 1)

    # ---------------------------------------------------------------- Trainer interface
    def state(self):
        return {"tokenizer": self.tokenizer.to_dict()}

    @property
    def modules(self):
        return {"model": self.model}

    @property
    def optimizers(self):
        return {"model": self.optimizer}

    @property
    def items_per_step(self):
        return self.cfg.batch_size * self.cfg.block_size

    def next_batch(self):
        return random_blocks(self.splits["train"], self.cfg.block_size, self.cfg.batch_size,
                             generator=self.batch_generator, device=self.device)

    def loss(self, name, batch):
        """The data loss, or with a teacher the distillation loss; the metric "loss" is the
        data loss either way, so runs with and without a teacher compare."""
        self.model.train()
        x, y = batch
        logits, loss = self.model(x, y)
        if not self.cfg.distill_from:
            return loss, {"loss": float(loss.item())}
        if self.teacher is None:  # a resumed run
            self.teacher, _ = load_teacher(self.cfg.distill_from, self.device)
        with no_grad():
            teacher_logits, _ = self.teacher(x, y)
        vocab = logits.size(-1)
        soft = soft_target_loss(logits.view(-1, vocab), teacher_logits.view(-1, vocab),
                                self.cfg.distill_temperature)
        alpha = self.cfg.distill_alpha
        total = alpha * soft + (1 - alpha) * loss
        return total, {"loss": float(loss.item()), "distill_kl": float(soft.item())}

    def evaluate(self, split):
        """Mean loss over eval_iters random batches of windows of the split; they come from a
        generator seeded afresh each time, so every evaluation sees the same windows and
        the training RNG is untouched."""
        tokens = self.splits.get(split, ())
        if len(tokens) <= self.cfg.block_size:
            return {}
        self.model.eval()
        gen = backend.Generator(seed=self.cfg.seed + 2)
        losses = []
        with no_grad():
            for _ in range(self.cfg.eval_iters):
                x, y = random_blocks(tokens, self.cfg.block_size, self.cfg.batch_size,
                                     generator=gen, device=self.device)
                losses.append(float(self.model(x, y)[1].item()))
        self.model.train()
        return {"loss": float(np.mean(losses))}

    def data_state(self):
        return {"batch_generator": self.batch_generator.get_state()}

    def load_data_state(self, state):
        self.batch_generator.set_state(state["batch_generator"])

    def sample(self, seed=0, prompt="\n", max_new_tokens=300, temperature=0.8, top_k=None):
        return generate_text(self.model, self.tokenizer, prompt, max_new_tokens, temperature,
                             top_k, seed, self.device)


def generate_text(model, tokenizer, prompt, max_new_tokens, temperature=0.8, top_k=None, seed=0,
                  device="cpu"):
    """Continue `prompt` with the model, sampling with its own seeded generator.

    temperature 0 means greedy decoding (always the most likely token); top_k keeps the
    k most likely tokens at each step. A prompt the tokenizer cannot encode (a character
    the training text never had) is refused before anything is generated.
    """
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy decoding), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature == 0:  # the one most likely token: what sampling at temperature -> 0 gives
        temperature, top_k = 1.0, 1
    ids = encode_prompt(tokenizer, prompt) or [0]
    model.eval()
    # minifm.multinomial draws on the host, from a CPU generator: a seed gives the same
    # text on every device
    out = model.generate(tensor([ids], dtype=backend.int64, device=device), max_new_tokens,
                         temperature=temperature, top_k=top_k,
                         generator=backend.Generator(seed=seed))
    return tokenizer.decode(out[0].tolist())
