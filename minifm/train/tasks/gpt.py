"""Character- or BPE-level language modelling with a GPT, as nanoGPT's train.py does it:
random windows of a token stream, next-token cross-entropy, AdamW with weight decay on 2-D
weights only, validation loss estimated on random windows of held-out text."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ... import backend
from ...autograd import no_grad
from ...data import random_blocks
from ...data.corpora import train_val_test_split
from ...models.gpt import GPT, GPTConfig
from .base import Task
from .text import corpus_and_tokenizer, tokenizer_state


@dataclass
class GPTTaskConfig:
    data: str | None = None          # a text file; None = the embedded default corpus
    corpus_bytes: int = 1_000_000    # size of the default corpus
    tokenizer: str = "char"          # "char" or "bpe"
    bpe_vocab_size: int = 512
    val_frac: float = 0.1
    test_frac: float = 0.05
    block_size: int = 64
    batch_size: int = 12
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    eval_iters: int = 20
    seed: int = 1337


class GPTTask(Task):
    """Train a GPT language model on a text corpus (nanoGPT's recipe)."""

    name = "gpt"
    config_class = GPTTaskConfig

    def __init__(self, cfg: GPTTaskConfig, out_dir, state=None, load_data=True):
        super().__init__(cfg, out_dir)
        backend.manual_seed(cfg.seed)
        text, tokenizer = corpus_and_tokenizer("gpt", cfg, state, load_data)
        self.tokenizer = tokenizer
        os.makedirs(out_dir, exist_ok=True)
        self.tokenizer_json = tokenizer_state(tokenizer, out_dir)
        self.splits = {}
        if text is not None:
            tokens = np.asarray(tokenizer.encode(text), dtype=np.int64)
            self.splits = dict(zip(("train", "val", "test"),
                                   train_val_test_split(tokens, cfg.val_frac, cfg.test_frac)))

        self.model = GPT(GPTConfig(block_size=cfg.block_size, vocab_size=tokenizer.vocab_size,
                                   n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                                   dropout=cfg.dropout, bias=cfg.bias))
        self.optimizer = self.model.configure_optimizers(cfg.weight_decay, cfg.learning_rate,
                                                         (cfg.beta1, cfg.beta2))
        self.batch_generator = backend.Generator(seed=cfg.seed + 1)

    # ---------------------------------------------------------------- Trainer interface
    def state(self):
        return {"tokenizer": self.tokenizer_json}

    @property
    def modules(self):
        return {"model": self.model}

    @property
    def optimizers(self):
        return {"model": self.optimizer}

    def next_batch(self):
        return random_blocks(self.splits["train"], self.cfg.block_size, self.cfg.batch_size,
                             generator=self.batch_generator)

    def loss(self, name, batch):
        self.model.train()
        x, y = batch
        _, loss = self.model(x, y)
        return loss, {"loss": float(loss.item())}

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
                x, y = random_blocks(tokens, self.cfg.block_size, self.cfg.batch_size, generator=gen)
                losses.append(float(self.model(x, y)[1].item()))
        self.model.train()
        return {"loss": float(np.mean(losses))}

    def data_state(self):
        return {"batch_generator": self.batch_generator.get_state()}

    def load_data_state(self, state):
        self.batch_generator.set_state(state["batch_generator"])

    def sample(self, prompt="\n", max_new_tokens=300, temperature=0.8, top_k=None, seed=0):
        return generate_text(self.model, self.tokenizer, prompt, max_new_tokens, temperature,
                             top_k, seed)


def generate_text(model, tokenizer, prompt, max_new_tokens, temperature=0.8, top_k=None, seed=0):
    """Continue `prompt` with the model (sampling with its own seeded generator)."""
    import minifm
    model.eval()
    ids = tokenizer.encode(prompt) or [0]
    idx = minifm.tensor([ids], dtype=minifm.int64)
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k,
                         generator=backend.Generator(seed=seed))
    return tokenizer.decode(out[0].tolist())
