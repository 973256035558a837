"""BERT on Python source: masked-language-model pretraining, then fine-tuning a copy of
the pretrained encoder to spot typos, in one run.

Data. The text (by default the standard library's sources, minifm.data.default_corpus;
or any file, --data) is tokenized into characters (the default: the corpus is small, a
two-layer model learns characters in minutes, and every prediction is a character a
reader can check) or, with --tokenizer bpe, into a byte-level BPE trained on it. BERT's
special tokens come first in the vocabulary, [PAD]=0 [CLS]=1 [SEP]=2 [MASK]=3, and the
base tokenizer's ids follow (see SpecialTokens), so no text can ever encode to one. The
token stream is split contiguously into train, val and test: no held-out sequence shares
text with training. A sequence is [CLS], seq_len - 2 contiguous tokens, [SEP].

Phase 1, the first `mlm_steps` steps: masked LM (BertForMaskedLM). `mask_tokens` chooses
15% of the text tokens (80% become [MASK], 10% a random token, 10% stay); the loss is the
cross-entropy at those positions.

Phase 2, the remaining steps: BertForSequenceClassification, its encoder a copy of the
pretrained one made when the phase begins (as a fine-tuned BERT starts from a pretrained
checkpoint, which stays as it was), learns typo detection. Half of the sequences are
left as written (label 0); in the other half (label 1), typo_rate of the text tokens are
replaced by tokens drawn from the training text's unigram distribution, never the token
they replace. Drawn that way, typos leave token frequencies as they were: only context
gives them away, which is what masked-LM pretraining teaches. (BERT's own pretraining
classifier, next-sentence prediction, does not fit here: on spans of a few dozen
characters a two-layer model stays at chance for hundreds of steps.)

One AdamW holds the parameters of both models; those that get no gradient in a phase
are left alone, and the Trainer's single learning-rate schedule spans the whole run.

Evaluation on val or test, on the same held-out sequences and masks every time:
    mlm_loss, mlm_accuracy   at the masked positions of up to eval_sequences sequences
    unigram_accuracy         baseline: always predict the most frequent training token
    cls_loss, cls_accuracy   typo detection on eval_sequences held-out sequences
    majority_accuracy        baseline: always predict the more frequent label of those
    loss                     mlm_loss while pretraining, cls_loss once fine-tuning has begun
                             (the Trainer's early stopping and best checkpoint follow it)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import backend
from ...autograd import no_grad
from ...creation import ones_like, rand, randint, tensor
from ...models.bert import BertConfig, BertForMaskedLM, BertForSequenceClassification, mask_tokens
from ...ops.random import multinomial
from ...optim import AdamW
from ..settings import require_at_least, require_divisible, require_fraction, require_positive, setting
from .base import Task
from .text import TextDataConfig, corpus_and_tokenizer, encode_prompt, split_tokens

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
class BERTTaskConfig(TextDataConfig):
    seq_len: int = setting(32, "tokens per sequence, [CLS] and [SEP] included (>= 3)")
    batch_size: int = setting(128, "sequences per training step")
    hidden_size: int = setting(128, "width of the encoder")
    num_layers: int = setting(2, "transformer layers")
    num_heads: int = setting(4, "attention heads per layer (hidden_size divisible by it)")
    intermediate_size: int = setting(512, "width of the feed-forward layers")
    dropout: float = setting(0.0, "dropout probability (a default run sees each character "
                             "only a few times)")
    mlm_probability: float = setting(0.15, "fraction of the tokens masked in pretraining")
    typo_rate: float = setting(0.1, "fraction of a window's tokens replaced in a typo example")
    mlm_steps: int = setting(400, "pretraining steps; the rest of the run fine-tunes")
    learning_rate: float = setting(2e-3, "AdamW's peak learning rate")
    weight_decay: float = setting(0.01, "AdamW's weight decay on the matrices")
    beta1: float = setting(0.9, "AdamW's beta1")
    beta2: float = setting(0.999, "AdamW's beta2")
    eval_sequences: int = setting(256, "held-out sequences per evaluation and phase")
    seed: int = setting(1337, "seed of the initial weights, the batches and the masks")

    def __post_init__(self):
        super().__post_init__()
        require_at_least(self, 3, "seq_len")
        require_at_least(self, 1, "batch_size", "hidden_size", "num_layers", "num_heads",
                         "intermediate_size", "eval_sequences")
        require_at_least(self, 0, "mlm_steps", "weight_decay")
        require_divisible(self, "hidden_size", "num_heads")
        require_fraction(self, "dropout", "mlm_probability", "typo_rate", "beta1", "beta2")
        require_positive(self, "learning_rate")


class BERTTask(Task):
    """Pretrain a BERT by masked LM, then fine-tune a copy of it to spot typos."""

    name = "bert"
    config_class = BERTTaskConfig
    train_defaults = dict(max_steps=600, eval_interval=100, warmup_steps=50, grad_clip=1.0,
                          out_dir="runs/bert")
    val_metrics = ("loss", "mlm_loss", "cls_loss")
    sample_options = ("prompt",)
    item_name = "tokens"

    def __init__(self, cfg: BERTTaskConfig, out_dir, state=None, load_data=True, device="cpu"):
        super().__init__(cfg, out_dir, device=device)
        backend.manual_seed(cfg.seed)
        text, base = corpus_and_tokenizer(cfg, state, load_data)
        self.tokenizer = SpecialTokens(base)

        self.splits = {}
        self.sample_text = state["sample_text"] if state else None
        if text is not None:
            self.splits = split_tokens("bert", cfg, self.tokenizer.encode(text), cfg.seq_len,
                                       "seq_len")
            counts = np.bincount(self.splits["train"], minlength=self.tokenizer.vocab_size)
            self.unigram = counts / counts.sum()  # the training tokens' frequencies
            self.unigram_id = int(counts.argmax())
            if self.sample_text is None:
                self.sample_text = self.tokenizer.decode(self.splits["test"][:3 * (cfg.seq_len - 2)])

        config = BertConfig(vocab_size=self.tokenizer.vocab_size, hidden_size=cfg.hidden_size,
                            num_layers=cfg.num_layers, num_heads=cfg.num_heads,
                            intermediate_size=cfg.intermediate_size,
                            max_position_embeddings=cfg.seq_len, dropout=cfg.dropout,
                            pad_token_id=PAD)
        self.mlm = BertForMaskedLM(config).to(device)
        self.classifier = BertForSequenceClassification(config, num_labels=2).to(device)
        self.optimizer = self._adamw()
        self.generator = backend.Generator(seed=cfg.seed + 1)  # training batches and masks
        self.batches_drawn = 0
        self._eval_sets = {}

    def _adamw(self):
        """AdamW over the parameters of both models, with weight decay on the matrices
        only, as BERT does (not on biases and LayerNorm gains)."""
        params = list(self.mlm.parameters()) + list(self.classifier.parameters())
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": self.cfg.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return AdamW(groups, lr=self.cfg.learning_rate, betas=(self.cfg.beta1, self.cfg.beta2))

    # ---------------------------------------------------------------- Trainer interface
    def state(self):
        return {"tokenizer": self.tokenizer.base.to_dict(), "sample_text": self.sample_text}

    @property
    def modules(self):
        return {"mlm": self.mlm, "classifier": self.classifier}

    @property
    def optimizers(self):
        return {"model": self.optimizer}

    @property
    def items_per_step(self):
        return self.cfg.batch_size * self.cfg.seq_len

    @property
    def fine_tuning(self):
        """Whether the run is past pretraining (the next batch is a typo batch)."""
        return self.batches_drawn > self.cfg.mlm_steps or self.cfg.mlm_steps == 0

    def metric_label(self, name):
        """"loss" is mlm_loss while pretraining and cls_loss once fine-tuning has begun."""
        if name != "loss":
            return name
        return "loss (= cls_loss, fine-tuning)" if self.fine_tuning else "loss (= mlm_loss, pretraining)"

    def next_batch(self):
        """("mlm", masked sequences) while pretraining, then ("typos", typo examples)."""
        tokens, n = self.splits["train"], self.cfg.batch_size
        if self.batches_drawn == self.cfg.mlm_steps > 0:  # fine-tuning begins
            self.classifier.bert.load_state_dict(self.mlm.bert.state_dict())
        if self.batches_drawn < self.cfg.mlm_steps:
            batch = "mlm", self._masked_sequences(self._windows(tokens, n, self.generator),
                                                  self.generator)
        else:
            batch = "typos", self._typos(tokens, n, self.generator)
        self.batches_drawn += 1
        return batch

    def loss(self, name, batch):
        phase, batch = batch
        inputs, labels = batch["input_ids"], batch["labels"]
        if phase == "typos":
            self.classifier.train()
            _, loss = self.classifier(inputs, attention_mask=ones_like(inputs), labels=labels)
            return loss, {"cls_loss": float(loss.item())}
        self.mlm.train()
        _, loss = self.mlm(inputs, attention_mask=ones_like(inputs), labels=labels)
        return loss, {"mlm_loss": float(loss.item())}

    def evaluate(self, split):
        if split not in self.splits:
            return {}
        if split not in self._eval_sets:
            self._eval_sets[split] = self._held_out(split)
        masked, typos = self._eval_sets[split]
        self.mlm.eval()
        self.classifier.eval()
        with no_grad():
            mlm = self._masked_lm_metrics(masked)
            cls = self._classifier_metrics(typos)
        self.mlm.train()
        self.classifier.train()
        return {"loss": cls["cls_loss"] if self.fine_tuning else mlm["mlm_loss"], **mlm, **cls}

    def data_state(self):
        return {"generator": self.generator.get_state(), "batches_drawn": self.batches_drawn}

    def load_data_state(self, state):
        self.generator.set_state(state["generator"])
        self.batches_drawn = state["batches_drawn"]

    def sample(self, seed=0, prompt=None):
        """Fill in the blanks: mask mlm_probability of the tokens of `prompt` (by default the
        start of the test split) and show what the pretrained model predicts for them."""
        ids = encode_prompt(self.tokenizer, self.sample_text if prompt is None else prompt)
        if not ids:
            raise ValueError("the prompt is empty: give a text whose blanks to fill in")
        gen = backend.Generator(seed=seed)
        chosen = rand(len(ids), generator=gen).numpy() < self.cfg.mlm_probability
        if not chosen.any():
            chosen[int(randint(0, len(ids), (1,), generator=gen).item())] = True
        masked = [MASK if c else i for i, c in zip(ids, chosen)]
        predicted = self._fill_in(masked)
        decode = self.tokenizer.decode
        filled = "".join("{" + decode([p]) + "}" if c else decode([i])
                         for i, p, c in zip(ids, predicted, chosen))
        right = int((predicted[chosen] == np.asarray(ids)[chosen]).sum())
        return (f"--- masked ---\n{decode(masked)}\n"
                f"--- filled in by the model, {{predictions}} in braces ---\n{filled}\n"
                f"--- {right} of {int(chosen.sum())} masked tokens right ---")

    @no_grad()
    def _fill_in(self, ids):
        """The MLM's most likely token at every position of `ids`, read in chunks of
        seq_len - 2 tokens, each as [CLS] chunk [SEP]."""
        self.mlm.eval()
        length, predicted = self.cfg.seq_len - 2, []
        for start in range(0, len(ids), length):
            logits, _ = self.mlm(tensor([[CLS] + ids[start:start + length] + [SEP]],
                                        device=self.device))
            predicted.append(logits.cpu().numpy()[0, 1:-1].argmax(-1))
        return np.concatenate(predicted)

    # ---------------------------------------------------------------- batches
    def _windows(self, tokens, n, generator):
        """n random windows of seq_len - 2 contiguous tokens, as a NumPy array."""
        length = self.cfg.seq_len - 2
        starts = randint(0, len(tokens) - length + 1, (n,), generator=generator).numpy()
        return tokens[starts[:, None] + np.arange(length)]

    def _masked_sequences(self, windows, generator):
        """[CLS] window [SEP], masked: {"input_ids", "labels"} Tensors on the task's device
        (labels -100 where nothing is to predict). Batches are drawn on the host, from CPU
        generators, so a seed gives the same batches on every device."""
        n = len(windows)
        ids = np.concatenate([np.full((n, 1), CLS), windows, np.full((n, 1), SEP)], axis=1)
        inputs, labels = mask_tokens(tensor(ids), MASK, self.tokenizer.vocab_size,
                                     special_ids=(PAD, CLS, SEP, MASK), generator=generator,
                                     mlm_probability=self.cfg.mlm_probability)
        return {"input_ids": inputs.to(self.device), "labels": labels.to(self.device)}

    def _typos(self, tokens, n, generator):
        """n typo-detection examples [CLS] window [SEP] (see the module docstring):
        {"input_ids", "labels"} Tensors on the task's device, label 1 for a window with
        typos."""
        windows = self._windows(tokens, n, generator)
        length = windows.shape[1]
        k = max(1, round(self.cfg.typo_rate * length))
        has_typos = rand(n, generator=generator).numpy() < 0.5
        where = rand(n, length, generator=generator).numpy().argsort(axis=1)[:, :k]
        rows = np.repeat(np.arange(n), k)
        original = windows[rows, where.ravel()]
        # each typo is drawn from the unigram distribution, minus the token it replaces
        weights = np.tile(self.unigram, (len(original), 1))
        weights[np.arange(len(original)), original] = 0.0
        typos = multinomial(tensor(weights), 1, generator=generator).numpy()[:, 0]
        hit = has_typos[rows]
        windows[rows[hit], where.ravel()[hit]] = typos[hit]
        ids = np.concatenate([np.full((n, 1), CLS), windows, np.full((n, 1), SEP)], axis=1)
        return {"input_ids": tensor(ids, device=self.device),
                "labels": tensor(has_typos.astype(np.int64), device=self.device)}

    # ---------------------------------------------------------------- evaluation
    def _held_out(self, split):
        """The split's evaluation sets, drawn once from generators of their own: masked
        consecutive non-overlapping windows, and typo examples."""
        tokens, length = self.splits[split], self.cfg.seq_len - 2
        n = min(self.cfg.eval_sequences, len(tokens) // length)
        windows = tokens[:n * length].reshape(n, length)
        masked = self._masked_sequences(windows, backend.Generator(seed=self.cfg.seed + 2))
        typos = self._typos(tokens, self.cfg.eval_sequences, backend.Generator(seed=self.cfg.seed + 3))
        return masked, typos

    def _masked_lm_metrics(self, masked, batch_size=64):
        losses, hits, unigram_hits, count = 0.0, 0, 0, 0
        for i in range(0, masked["labels"].shape[0], batch_size):
            inputs, labels = masked["input_ids"][i:i + batch_size], masked["labels"][i:i + batch_size]
            logits, loss = self.mlm(inputs, attention_mask=ones_like(inputs), labels=labels)
            target = labels.cpu().numpy()
            where = target != -100
            k = int(where.sum())
            losses += float(loss.item()) * k
            hits += int((logits.cpu().numpy().argmax(-1)[where] == target[where]).sum())
            unigram_hits += int((target[where] == self.unigram_id).sum())
            count += k
        return {"mlm_loss": losses / count, "mlm_accuracy": hits / count,
                "unigram_accuracy": unigram_hits / count}

    def _classifier_metrics(self, examples, batch_size=64):
        losses, hits = 0.0, 0
        n = examples["labels"].shape[0]
        for i in range(0, n, batch_size):
            inputs, labels = examples["input_ids"][i:i + batch_size], examples["labels"][i:i + batch_size]
            logits, loss = self.classifier(inputs, attention_mask=ones_like(inputs), labels=labels)
            losses += float(loss.item()) * labels.shape[0]
            hits += int((logits.cpu().numpy().argmax(-1) == labels.cpu().numpy()).sum())
        positive = float(examples["labels"].cpu().numpy().mean())
        return {"cls_loss": losses / n, "cls_accuracy": hits / n,
                "majority_accuracy": max(positive, 1 - positive)}
