"""BERT on Python source: masked-language-model pretraining, then fine-tuning a classifier
on next-segment prediction, in one run.

Data. The text (by default the standard library's sources, minifm.data.default_corpus;
or any file, --data) is tokenized into characters (the default: the corpus is small, a
two-layer model learns characters in minutes, and every prediction is a character a
reader can check) or, with --tokenizer bpe, into a byte-level BPE trained on it. BERT's
special tokens come first in the vocabulary, [PAD]=0 [CLS]=1 [SEP]=2 [MASK]=3, and the
base tokenizer's ids follow (see SpecialTokens), so no text can ever encode to one. The
token stream is split contiguously into train, val and test: no held-out sequence shares
text with training.

Phase 1, the first `mlm_steps` steps: masked LM. A sequence is [CLS], seq_len - 2
contiguous tokens, [SEP]. `mask_tokens` chooses 15% of the text tokens (80% become
[MASK], 10% a random token, 10% stay); the loss is the cross-entropy at those positions.

Phase 2, the remaining steps: fine-tuning BertForSequenceClassification, whose encoder
*is* the pretrained one (the same module), on next-segment prediction. An input is
[CLS] A [SEP] B [SEP], where A and B are spans of about (seq_len - 3) / 2 tokens and
segment ids are 0 up to the first [SEP], 1 after it. Label 1: B is the text that follows
A; label 0: B comes from a random place of the same split; half of each. A small model
learns it in minutes, mostly at the seam: a true continuation finishes the word, line and
indentation that A broke off in the middle of. (The task is BERT's own NSP, on spans
rather than sentences.)

One AdamW serves both phases: a parameter that gets no gradient in a phase (the
classifier head while pretraining, the LM head while fine-tuning) is left alone, and the
Trainer's single learning-rate schedule spans the whole run.

Evaluation on val or test, on the same held-out sequences and masks every time:
    mlm_loss, mlm_accuracy   at the masked positions of up to eval_sequences sequences
    unigram_accuracy         baseline: always predict the most frequent training token
    cls_loss, cls_accuracy   on eval_sequences held-out pairs
    majority_accuracy        baseline: always predict the more frequent label of those pairs
    loss                     mlm_loss while pretraining, cls_loss once fine-tuning has begun
                             (the Trainer's early stopping and best checkpoint follow it)
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ... import backend
from ...autograd import no_grad
from ...creation import ones_like, tensor
from ...data import ByteLevelBPETokenizer, CharTokenizer, default_corpus, load_text
from ...data.corpora import train_val_test_split
from ...models.bert import BertConfig, BertForMaskedLM, BertForSequenceClassification, mask_tokens
from ...ops.random import rand, randint
from ...optim import AdamW
from .base import Task
from .gpt import tokenizer_from_state, tokenizer_state

SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")
PAD, CLS, SEP, MASK = range(len(SPECIAL_TOKENS))


class SpecialTokens:
    """A tokenizer with BERT's special tokens in front: ids 0-3 are [PAD] [CLS] [SEP]
    [MASK], and id i of the `base` tokenizer becomes i + 4."""

    def __init__(self, base):
        self.base = base

    @property
    def vocab_size(self):
        return len(SPECIAL_TOKENS) + self.base.vocab_size

    def encode(self, text):
        return [i + len(SPECIAL_TOKENS) for i in self.base.encode(text)]

    def decode(self, ids):
        """The text of `ids`, with special tokens written as their names."""
        pieces, run = [], []
        for i in map(int, ids):
            if i >= len(SPECIAL_TOKENS):
                run.append(i - len(SPECIAL_TOKENS))
                continue
            if run:
                pieces.append(self.base.decode(run))
                run = []
            pieces.append(SPECIAL_TOKENS[i])
        if run:
            pieces.append(self.base.decode(run))
        return "".join(pieces)


@dataclass
class BERTTaskConfig:
    data: str | None = None          # a text file; None = the embedded default corpus
    corpus_bytes: int = 1_000_000    # size of the default corpus
    tokenizer: str = "char"          # "char" or "bpe"
    bpe_vocab_size: int = 512
    val_frac: float = 0.1
    test_frac: float = 0.05
    seq_len: int = 64                # tokens per sequence, [CLS] and [SEP] included
    batch_size: int = 32
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 512
    dropout: float = 0.1
    mlm_probability: float = 0.15
    mlm_steps: int = 400             # pretraining steps; the rest of the run fine-tunes
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eval_sequences: int = 256        # held-out sequences (and pairs) per evaluation
    seed: int = 1337


class BERTTask(Task):
    """Pretrain a BERT by masked LM, then fine-tune it on next-segment prediction."""

    name = "bert"
    config_class = BERTTaskConfig

    def __init__(self, cfg: BERTTaskConfig, out_dir, state=None, load_data=True):
        super().__init__(cfg, out_dir)
        if cfg.seq_len < 5:
            raise ValueError(f"bert task: seq_len must be at least 5, got {cfg.seq_len}")
        backend.manual_seed(cfg.seed)
        text = None
        if load_data or state is None:
            text = load_text(cfg.data) if cfg.data else default_corpus(cfg.corpus_bytes)
        if state is not None:
            base = tokenizer_from_state(state["tokenizer"])
        elif cfg.tokenizer == "char":
            base = CharTokenizer.from_text(text)
        elif cfg.tokenizer == "bpe":
            base = ByteLevelBPETokenizer()
            base.train(text, cfg.bpe_vocab_size)
        else:
            raise ValueError(f"bert task: tokenizer must be 'char' or 'bpe', got {cfg.tokenizer!r}")
        self.tokenizer = SpecialTokens(base)
        os.makedirs(out_dir, exist_ok=True)
        self.tokenizer_json = tokenizer_state(base, out_dir)

        self.splits = {}
        self.sample_text = state["sample_text"] if state else None
        if text is not None:
            tokens = np.asarray(self.tokenizer.encode(text), dtype=np.int64)
            self.splits = dict(zip(("train", "val", "test"),
                                   train_val_test_split(tokens, cfg.val_frac, cfg.test_frac)))
            for name, part in self.splits.items():
                if len(part) < cfg.seq_len:
                    raise ValueError(f"bert task: the {name} split has {len(part)} tokens, "
                                     f"fewer than seq_len={cfg.seq_len}; use more text")
            self.unigram_id = int(np.bincount(self.splits["train"]).argmax())
            if self.sample_text is None:
                self.sample_text = self.tokenizer.decode(self.splits["test"][:cfg.seq_len - 2])

        config = BertConfig(vocab_size=self.tokenizer.vocab_size, hidden_size=cfg.hidden_size,
                            num_layers=cfg.num_layers, num_heads=cfg.num_heads,
                            intermediate_size=cfg.intermediate_size,
                            max_position_embeddings=cfg.seq_len, dropout=cfg.dropout,
                            pad_token_id=PAD)
        self.mlm = BertForMaskedLM(config)
        self.classifier = BertForSequenceClassification(config, num_labels=2)
        self.classifier.bert = self.mlm.bert  # fine-tune the pretrained encoder itself
        self.optimizer = self._adamw()
        self.generator = backend.Generator(seed=cfg.seed + 1)  # training batches and masks
        self.batches_drawn = 0
        self._eval_sets = {}

    def _adamw(self):
        """AdamW over the parameters of both models (the shared encoder once), with weight
        decay on the matrices only, as BERT does (not on biases and LayerNorm gains)."""
        params, seen = [], set()
        for p in list(self.mlm.parameters()) + list(self.classifier.parameters()):
            if id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": self.cfg.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return AdamW(groups, lr=self.cfg.learning_rate, betas=(self.cfg.beta1, self.cfg.beta2))

    # ---------------------------------------------------------------- Trainer interface
    def state(self):
        return {"tokenizer": self.tokenizer_json, "sample_text": self.sample_text}

    @property
    def modules(self):
        return {"mlm": self.mlm, "classifier": self.classifier}

    @property
    def optimizers(self):
        return {"model": self.optimizer}

    @property
    def pretraining(self):
        """Whether the next batch belongs to the masked-LM phase."""
        return self.batches_drawn < self.cfg.mlm_steps

    def next_batch(self):
        tokens, n = self.splits["train"], self.cfg.batch_size
        if self.pretraining:
            batch = self._masked_sequences(self._windows(tokens, n, self.generator), self.generator)
        else:
            batch = self._pairs(tokens, n, self.generator)
        self.batches_drawn += 1
        return batch

    def loss(self, name, batch):
        if "token_type_ids" in batch:
            self.classifier.train()
            _, loss = self.classifier(batch["input_ids"], batch["token_type_ids"],
                                      ones_like(batch["input_ids"]), labels=batch["labels"])
            return loss, {"cls_loss": float(loss.item())}
        self.mlm.train()
        _, loss = self.mlm(batch["input_ids"], attention_mask=ones_like(batch["input_ids"]),
                           labels=batch["labels"])
        return loss, {"mlm_loss": float(loss.item())}

    def evaluate(self, split):
        if split not in self.splits:
            return {}
        if split not in self._eval_sets:
            self._eval_sets[split] = self._held_out(split)
        masked, pairs = self._eval_sets[split]
        self.mlm.eval()
        self.classifier.eval()
        with no_grad():
            mlm = self._masked_lm_metrics(masked)
            cls = self._classifier_metrics(pairs)
        self.mlm.train()
        self.classifier.train()
        return {"loss": mlm["mlm_loss"] if self.pretraining else cls["cls_loss"], **mlm, **cls}

    def data_state(self):
        return {"generator": self.generator.get_state(), "batches_drawn": self.batches_drawn}

    def load_data_state(self, state):
        self.generator.set_state(state["generator"])
        self.batches_drawn = state["batches_drawn"]

    def sample(self, seed=0, text=None):
        """Fill in the blanks: mask 15% of the tokens of `text` (by default a snippet of the
        test split) and show what the model predicts for them."""
        ids = self.tokenizer.encode(self.sample_text if text is None else text)[:self.cfg.seq_len - 2]
        gen = backend.Generator(seed=seed)
        chosen = rand(len(ids), generator=gen).numpy() < self.cfg.mlm_probability
        if not chosen.any():
            chosen[int(randint(0, len(ids), (1,), generator=gen).item())] = True
        inputs = [CLS] + [MASK if c else i for i, c in zip(ids, chosen)] + [SEP]
        self.mlm.eval()
        with no_grad():
            logits, _ = self.mlm(tensor([inputs]))
        predicted = logits.numpy()[0, 1:-1].argmax(-1)
        decode = self.tokenizer.decode
        filled = "".join("{" + decode([p]) + "}" if c else decode([i])
                         for i, p, c in zip(ids, predicted, chosen))
        right = int((predicted[chosen] == np.asarray(ids)[chosen]).sum())
        return (f"--- masked ---\n{decode(inputs[1:-1])}\n"
                f"--- filled in by the model, {{predictions}} in braces ---\n{filled}\n"
                f"--- {right} of {int(chosen.sum())} masked tokens right ---")

    # ---------------------------------------------------------------- batches
    def _windows(self, tokens, n, generator):
        """n random windows of seq_len - 2 contiguous tokens, as a NumPy array."""
        length = self.cfg.seq_len - 2
        starts = randint(0, len(tokens) - length + 1, (n,), generator=generator).numpy()
        return tokens[starts[:, None] + np.arange(length)]

    def _masked_sequences(self, windows, generator):
        """[CLS] window [SEP], masked: {"input_ids", "labels"} Tensors (labels -100 where
        nothing is to predict)."""
        n = len(windows)
        ids = np.concatenate([np.full((n, 1), CLS), windows, np.full((n, 1), SEP)], axis=1)
        inputs, labels = mask_tokens(tensor(ids), MASK, self.tokenizer.vocab_size,
                                     special_ids=(PAD, CLS, SEP, MASK), generator=generator,
                                     mlm_probability=self.cfg.mlm_probability)
        return {"input_ids": inputs, "labels": labels}

    def _pairs(self, tokens, n, generator):
        """n next-segment examples [CLS] A [SEP] B [SEP] (see the module docstring):
        {"input_ids", "token_type_ids", "labels"} Tensors."""
        a = (self.cfg.seq_len - 3) // 2
        b = self.cfg.seq_len - 3 - a
        starts = randint(0, len(tokens) - a - b + 1, (n,), generator=generator).numpy()
        is_next = rand(n, generator=generator).numpy() < 0.5
        elsewhere = randint(0, len(tokens) - b + 1, (n,), generator=generator).numpy()
        b_starts = np.where(is_next, starts + a, elsewhere)
        ids = np.concatenate([np.full((n, 1), CLS), tokens[starts[:, None] + np.arange(a)],
                              np.full((n, 1), SEP), tokens[b_starts[:, None] + np.arange(b)],
                              np.full((n, 1), SEP)], axis=1)
        types = np.concatenate([np.zeros((n, a + 2), np.int64), np.ones((n, b + 1), np.int64)],
                               axis=1)
        return {"input_ids": tensor(ids), "token_type_ids": tensor(types),
                "labels": tensor(is_next.astype(np.int64))}

    # ---------------------------------------------------------------- evaluation
    def _held_out(self, split):
        """The split's evaluation sets, drawn once from generators of their own: masked
        consecutive non-overlapping windows, and random pairs."""
        tokens, length = self.splits[split], self.cfg.seq_len - 2
        n = min(self.cfg.eval_sequences, len(tokens) // length)
        windows = tokens[:n * length].reshape(n, length)
        masked = self._masked_sequences(windows, backend.Generator(seed=self.cfg.seed + 2))
        pairs = self._pairs(tokens, self.cfg.eval_sequences, backend.Generator(seed=self.cfg.seed + 3))
        return masked, pairs

    def _masked_lm_metrics(self, masked, batch_size=64):
        losses, hits, unigram_hits, count = 0.0, 0, 0, 0
        for i in range(0, masked["labels"].shape[0], batch_size):
            inputs, labels = masked["input_ids"][i:i + batch_size], masked["labels"][i:i + batch_size]
            logits, loss = self.mlm(inputs, attention_mask=ones_like(inputs), labels=labels)
            target = labels.numpy()
            where = target != -100
            k = int(where.sum())
            losses += float(loss.item()) * k
            hits += int((logits.numpy().argmax(-1)[where] == target[where]).sum())
            unigram_hits += int((target[where] == self.unigram_id).sum())
            count += k
        return {"mlm_loss": losses / count, "mlm_accuracy": hits / count,
                "unigram_accuracy": unigram_hits / count}

    def _classifier_metrics(self, pairs, batch_size=64):
        losses, hits = 0.0, 0
        n = pairs["labels"].shape[0]
        for i in range(0, n, batch_size):
            part = {k: v[i:i + batch_size] for k, v in pairs.items()}
            logits, loss = self.classifier(part["input_ids"], part["token_type_ids"],
                                           ones_like(part["input_ids"]), labels=part["labels"])
            losses += float(loss.item()) * part["labels"].shape[0]
            hits += int((logits.numpy().argmax(-1) == part["labels"].numpy()).sum())
        positive = float(pairs["labels"].numpy().mean())
        return {"cls_loss": losses / n, "cls_accuracy": hits / n,
                "majority_accuracy": max(positive, 1 - positive)}
