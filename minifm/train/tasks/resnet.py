"""A CIFAR-style ResNet (He et al., 2015, section 4.2) classifies the handwritten digits.

The data are scikit-learn's 1,797 8x8 digits (no download), pixel values in [0, 1], split
80/10/10 into train/validation/test by load_digits' fixed permutation (seed 0, the DCGAN
task's split too), whatever the task's own seed. The network is resnet20 by default
(`--depth` 32, 44 or 56 for the deeper ones): its three stages see 8x8, 4x4 and 2x2 maps.

Training follows the paper's recipe, shortened: SGD with momentum 0.9, learning rate 0.1
and weight decay (5e-4 here, 1e-4 in the paper, which trains far longer on 50,000
images), a one-epoch linear warmup and a cosine decay to zero (the paper divides by 10
twice instead). `--augment shift` (the default) moves each training digit by up to
`max_shift` pixels in each direction, zeros shifted in: the digits' strokes vary by about
that much, and the paper's CIFAR augmentation is the same idea (4 pixels of padding and a
random 32x32 crop). Test-time inputs are never shifted.

Evaluation reports the cross-entropy, the accuracy and the error rate (1 - accuracy, the
lower-is-better metric for early stopping) of the whole split, with batch norm on its
running estimates. `sample` prints the confusion matrix of the test split and the
digits it gets wrong.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import backend
from ...autograd import no_grad
from ...creation import from_numpy, randint
from ...data import DataLoader, TensorDataset, load_digits
from ...models.resnet import CifarResNet
from ...nn import functional as F
from ...optim import SGD
from ..settings import (
    require_at_least, require_choices, require_finite, require_fraction, require_positive,
    setting,
)
from .base import EpochCycle, Task


@dataclass
class ResNetTaskConfig:
    depth: int = setting(20, "the CIFAR ResNet's depth 6n + 2", choices=(20, 32, 44, 56))
    batch_size: int = setting(64, "images per training batch")
    learning_rate: float = setting(0.1, "SGD's peak learning rate")
    momentum: float = setting(0.9, "SGD's momentum")
    weight_decay: float = setting(5e-4, "SGD's L2 weight decay")
    augment: str = setting("shift", "training-time augmentation: random shifts of each "
                           "digit, or none", choices=("shift", "none"))
    max_shift: int = setting(1, "augment shift: the largest shift in pixels, each direction")
    val_frac: float = setting(0.1, "fraction of the digits held out for validation")
    test_frac: float = setting(0.1, "fraction of the digits held out for the final test")
    seed: int = setting(1337, "seed of the initial weights, the batch order and the shifts")

    def __post_init__(self):
        require_finite(self)
        require_choices(self)
        require_at_least(self, 1, "batch_size", "max_shift")
        require_fraction(self, "val_frac", "test_frac", "momentum")
        require_positive(self, "learning_rate")
        require_at_least(self, 0, "weight_decay")


def random_shift(images, max_shift, generator):
    """Each image of `images` (N, C, H, W) moved by its own (dy, dx), each uniform in
    [-max_shift, max_shift], with zeros shifted in (the digits' background).

    Pad every side by max_shift, then crop an H x W window at a random offset per image:
    one gather, with the offsets drawn from `generator`.
    """
    n, c, h, w = images.shape
    s = max_shift
    padded = np.pad(images, ((0, 0), (0, 0), (s, s), (s, s)))
    offsets = randint(0, 2 * s + 1, (n, 2), generator=generator).numpy()
    rows = (offsets[:, 0, None] + np.arange(h))[:, None, :, None]  # (N, 1, H, 1)
    cols = (offsets[:, 1, None] + np.arange(w))[:, None, None, :]  # (N, 1, 1, W)
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                  rows, cols]


class ResNetTask(Task):
    """Train a CIFAR-style ResNet (He et al.) on the 8x8 digits."""

    name = "resnet"
    config_class = ResNetTaskConfig
    # 20 epochs of 22 batches (15 left the validation error at 1.7%, 20 and 25 at 0.6%)
    train_defaults = dict(max_steps=440, eval_interval=110, warmup_steps=22, min_lr_ratio=0.0,
                          grad_clip=None, out_dir="runs/resnet")
    val_metrics = ("error", "loss")
    item_name = "images"

    def __init__(self, cfg: ResNetTaskConfig, out_dir, state=None, load_data=True,
                 device="cpu"):
        super().__init__(cfg, out_dir, device=device)
        backend.manual_seed(cfg.seed)
        self.model = CifarResNet(cfg.depth, num_classes=10, in_channels=1).to(device)
        self.optimizer = SGD(self.model.parameters(), lr=cfg.learning_rate,
                             momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        # draws the batch order and the shifts
        self.generator = backend.Generator(seed=cfg.seed + 1)
        self.digits = {}
        if load_data:
            self.digits = self.load_digits()
            self.loader = DataLoader(TensorDataset(*self.digits["train"]), cfg.batch_size,
                                     shuffle=True, drop_last=True, generator=self.generator)
            self.batches = EpochCycle(self.loader)

    def load_digits(self):
        """{"train" | "val" | "test": (images, labels)}, the fixed split."""
        return load_digits(8, (0.0, 1.0), val_frac=self.cfg.val_frac,
                           test_frac=self.cfg.test_frac)

    # ---------------------------------------------------------------- Trainer interface
    @property
    def modules(self):
        return {"model": self.model}

    @property
    def optimizers(self):
        return {"model": self.optimizer}

    @property
    def items_per_step(self):
        return self.cfg.batch_size

    def next_batch(self):
        """(images, labels) of the shuffled training digits, shifted with --augment shift,
        on the task's device (drawn and shifted on the host)."""
        batch = self.batches.next()
        images, labels = batch
        if self.cfg.augment == "shift":
            images = from_numpy(random_shift(images.numpy(), self.cfg.max_shift,
                                             self.generator))
        return images.to(self.device), labels.to(self.device)

    def loss(self, name, batch):
        if name != "model":
            raise ValueError(f"resnet task: no optimizer named {name!r} (expected 'model')")
        images, labels = batch
        self.model.train()
        logits = self.model(images)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return loss, {"loss": float(loss.item()), "accuracy": float(accuracy.item())}

    def evaluate(self, split):
        """Cross-entropy, accuracy and error rate on the whole split (eval mode)."""
        if split not in self.digits:
            return {}
        images, labels = self.digits[split]
        logits = self.logits(images)
        loss = float(F.cross_entropy(from_numpy(logits), from_numpy(labels)).item())
        accuracy = float((logits.argmax(1) == labels).mean())
        return {"loss": loss, "accuracy": accuracy, "error": 1.0 - accuracy}

    def predictions(self, split):
        """(true labels, predicted labels) of a split, for per-group reports (eval --groups)."""
        if split not in self.digits:
            raise ValueError(f"the run has no {split} split; evaluate another one (--split)")
        images, labels = self.digits[split]
        return labels, self.logits(images).argmax(1)

    def group_fields(self, split):
        """Groupings of a split's examples that the task knows by name: the true digit."""
        return {"label": self.digits[split][1]}

    @no_grad()
    def logits(self, images, batch_size=512):
        """The model's logits (N, 10) of images (N, 1, 8, 8), a NumPy array, in eval mode
        (batch norm on its running estimates); the model is left in train mode."""
        self.model.eval()
        try:
            return np.concatenate([
                self.model(from_numpy(images[i:i + batch_size]).to(self.device)).cpu().numpy()
                for i in range(0, len(images), batch_size)])
        finally:
            self.model.train()

    def sample(self, seed=0):
        """The confusion matrix of the test split and its misclassified digits, as text
        (`seed` is unused: the whole split is shown)."""
        images, labels = (self.digits or self.load_digits())["test"]
        predicted = self.logits(images).argmax(1)
        confusion = np.zeros((10, 10), dtype=np.int64)
        np.add.at(confusion, (labels, predicted), 1)
        lines = [f"test accuracy {(predicted == labels).mean():.4f} on {len(labels)} digits",
                 "confusion matrix (row: true digit, column: predicted)",
                 "     " + " ".join(f"{d:>3}" for d in range(10))]
        lines += [f"{d:>3}: " + " ".join(f"{n:>3}" for n in row)
                  for d, row in enumerate(confusion)]
        wrong = np.flatnonzero(predicted != labels)
        lines.append("misclassified (test index: true -> predicted): " + (", ".join(
            f"{i}: {labels[i]} -> {predicted[i]}" for i in wrong) or "none"))
        return "\n".join(lines)

    # ---------------------------------------------------------------- saving and rebuilding
    def data_state(self):
        return {"loader": self.loader.state_dict(), "generator": self.generator.get_state()}

    def load_data_state(self, state):
        self.loader.load_state_dict(state["loader"])
        self.generator.set_state(state["generator"])
        self.batches.reset()
