"""A class-conditional DCGAN on the handwritten digits: draw a digit of the class asked for.

The networks are minifm/models/cgan.py's (DCGAN's, each given a label embedding); the
data, the losses (`--loss standard` or `wgan-gp`), the optimizers and the training step
are the DCGAN task's (minifm/train/tasks/dcgan.py): every batch carries the real digits'
labels, the fake batch is drawn for the same labels, and both networks see them.
`--train-per-class k` keeps only k training digits of each class (drawn by the seed), the
few-shot setting of benchmarks/gan_augmentation_study.py.

Evaluation is per class. For each digit c, with n_c the real digits of class c in the
split:

- frechet_distance_class<c>: the Frechet distance (minifm/train/frechet.py, on the DCGAN
  task's small digit classifier's features) between n_c generated digits of class c and
  the split's n_c; beside it frechet_distance_real_class<c>, the same between n_c
  training digits of class c and the split's (the floor). n_c is 10-30 on the default
  split, so these estimates are rough: compare a class's distance with its own floor.
- gan_test_accuracy_class<c> (Shmelkov et al., 2018, "GAN-test"): how many of
  `gan_test_samples` generated digits of class c a ResNet trained on the real digits
  (a `minifm train resnet` run, `--classifier`) labels c. The ResNet sees 8x8 images
  in [0, 1]: larger generated digits are averaged down to 8x8 first, and the ResNet's
  accuracy on the split's real digits, resampled the same way, is classifier_accuracy.

frechet_distance and gan_test_accuracy are the means over the classes (the former is the
metric of early stopping). `minifm sample` draws a grid with one row per class, 0 to 9.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ... import backend
from ...autograd import no_grad
from ...creation import randn, randperm, tensor
from ...models.cgan import ConditionalDiscriminator, ConditionalGenerator
from ..frechet import classifier_features, frechet_distance_of_features
from ..checkpoint import load_modules, read_checkpoint
from ..images import save_image
from ..settings import ConfigError, require_at_least, setting
from .dcgan import DCGANTask, DCGANTaskConfig
from .resnet import ResNetTask

NUM_CLASSES = 10
CLASSIFIER_SIZE = 8  # the side of the images the ResNet classifier was trained on


@dataclass
class CGANTaskConfig(DCGANTaskConfig):
    embed_dim: int = setting(10, "length of the generator's label embedding")
    classifier: str | None = setting("runs/resnet", "a `minifm train resnet` run folder (or "
                                     "its checkpoint) whose classifier scores the generated "
                                     "digits (GAN-test); none: no GAN-test")
    gan_test_samples: int = setting(100, "generated digits per class for the GAN-test")
    train_per_class: int = setting(0, "keep only this many training digits of each class, "
                                   "drawn by the seed (0: all)")
    grid_size: int = setting(100, "images in a sample grid, one row per class (a multiple "
                             "of 10)")

    def __post_init__(self):
        super().__post_init__()
        require_at_least(self, 1, "embed_dim", "gan_test_samples")
        require_at_least(self, 0, "train_per_class")
        if self.grid_size % NUM_CLASSES:
            raise ConfigError("CGANTaskConfig", f"grid_size={self.grid_size} must be a "
                              f"multiple of {NUM_CLASSES} (one row per class)", "grid_size")
        if self.classifier:  # absolute, so that a checkpoint works from any folder
            self.classifier = os.path.abspath(self.classifier)


def per_class_subset(labels, k, seed):
    """Indices of k examples of each class of `labels`, drawn by `seed` alone, in
    increasing order; all indices for k = 0."""
    if k == 0:
        return np.arange(len(labels))
    order = randperm(len(labels), generator=backend.Generator(seed=seed)).numpy()
    chosen = []
    for c in range(NUM_CLASSES):
        members = order[labels[order] == c]
        if len(members) < k:
            raise ValueError(f"--train-per-class {k}: class {c} has only {len(members)} "
                             "training digits")
        chosen.append(members[:k])
    return np.sort(np.concatenate(chosen))


def load_classifier(path):
    """The ResNet task of a `minifm train resnet` run folder or checkpoint, on the CPU.

    Built here from the checkpoint rather than through commands.task_from_checkpoint, which
    sits above the tasks (it imports them all)."""
    checkpoint = path
    if os.path.isdir(path):
        checkpoint = os.path.join(path, "checkpoint.safetensors")
    if not os.path.isfile(checkpoint):
        raise ValueError(f"cgan task: --classifier {path}: no checkpoint there; train one "
                         "with `minifm train resnet --out-dir RUN_DIR` and pass "
                         "--classifier RUN_DIR (or --classifier none: no GAN-test)")
    ckpt = read_checkpoint(checkpoint)
    config = ckpt["config"]["task"]
    if config.get("name") != "resnet":
        raise ValueError(f"cgan task: --classifier {path} is a {config.get('name')} run, not a "
                         "resnet one")
    task = ResNetTask.from_config(config, os.path.dirname(os.path.abspath(checkpoint)),
                                  load_data=False)
    load_modules(ckpt, task.modules)
    return task


def classifier_input(images):
    """Generated digits (N, 1, S, S) in [-1, 1] as the ResNet classifier's input: 8x8 in
    [0, 1], each 8x8 pixel the mean of its (S / 8)^2 pixels."""
    n, c, side = images.shape[0], images.shape[1], images.shape[-1]
    f = side // CLASSIFIER_SIZE
    pooled = images.reshape(n, c, CLASSIFIER_SIZE, f, CLASSIFIER_SIZE, f).mean(axis=(3, 5))
    return ((pooled + 1) / 2).astype(np.float32)


class CGANTask(DCGANTask):
    """Train a class-conditional DCGAN on the digits: one row of samples per class."""

    name = "cgan"
    config_class = CGANTaskConfig
    train_defaults = {**DCGANTask.train_defaults, "out_dir": "runs/cgan"}

    def __init__(self, cfg: CGANTaskConfig, out_dir, state=None, load_data=True,
                 device="cpu"):
        super().__init__(cfg, out_dir, state=state, load_data=load_data, device=device)
        self._resnet = None  # the GAN-test's classifier, loaded with the data
        if load_data and cfg.classifier:
            self._resnet = load_classifier(cfg.classifier)

    def build_networks(self):
        cfg = self.cfg
        return (ConditionalGenerator(cfg.nz, cfg.ngf, 1, cfg.image_size, NUM_CLASSES,
                                     cfg.embed_dim),
                ConditionalDiscriminator(1, cfg.ndf, cfg.image_size, NUM_CLASSES,
                                         norm="batch" if cfg.loss == "standard"
                                         else cfg.critic_norm))

    def training_set(self):
        """(images, labels) of the training split, or of its per-class subset."""
        images, labels = self.digits["train"]
        keep = per_class_subset(labels, self.cfg.train_per_class, self.cfg.seed)
        return images[keep], labels[keep]

    @no_grad()
    def generate(self, labels, seed):
        """Generated digits (N, 1, S, S) in [-1, 1], a NumPy array, one per label of the
        NumPy array `labels`, from noise drawn by `seed` alone (eval mode)."""
        z = randn(len(labels), self.cfg.nz, 1, 1, generator=backend.Generator(seed=seed))
        self.netG.eval()
        try:
            y = tensor(np.asarray(labels, dtype=np.int64), device=self.device)
            return self.netG(z.to(self.device), y).cpu().numpy()
        finally:
            self.netG.train()

    def evaluate(self, split):
        """The per-class Frechet distances and GAN-test accuracies (module docstring)."""
        if split not in self.digits:
            return {}
        images, labels = self.digits[split]
        train_images, train_labels = self.digits["train"]
        features = self.classifier()
        metrics = {}
        for c in range(NUM_CLASSES):
            real = classifier_features(features, images[labels == c])
            n = len(real)
            fake = self.generate(np.full(n, c), seed=self.cfg.seed + 2 + c)
            other = train_images[train_labels == c][:n]
            metrics[f"frechet_distance_class{c}"] = frechet_distance_of_features(
                real, classifier_features(features, fake))
            metrics[f"frechet_distance_real_class{c}"] = frechet_distance_of_features(
                real, classifier_features(features, other))
        if self._resnet is not None:
            per_class = self.cfg.gan_test_samples
            wanted = np.repeat(np.arange(NUM_CLASSES), per_class)
            fake = self.generate(wanted, seed=self.cfg.seed + 2 + NUM_CLASSES)
            right = self._resnet.logits(classifier_input(fake)).argmax(1) == wanted
            for c in range(NUM_CLASSES):
                metrics[f"gan_test_accuracy_class{c}"] = float(right[wanted == c].mean())
            metrics["gan_test_accuracy"] = float(right.mean())
            predicted = self._resnet.logits(classifier_input(images)).argmax(1)
            metrics["classifier_accuracy"] = float((predicted == labels).mean())
        metrics["frechet_distance"] = float(np.mean(
            [metrics[f"frechet_distance_class{c}"] for c in range(NUM_CLASSES)]))
        metrics["frechet_distance_real"] = float(np.mean(
            [metrics[f"frechet_distance_real_class{c}"] for c in range(NUM_CLASSES)]))
        return metrics

    def sample(self, seed=0, path=None):
        """Write a grid of generated digits as a PNG, row c showing class c (0 to 9), and
        return its path. The noise depends on `seed` alone."""
        path = path or os.path.join(self.out_dir, f"samples_seed{seed}.png")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        columns = self.cfg.grid_size // NUM_CLASSES
        images = self.generate(np.repeat(np.arange(NUM_CLASSES), columns), seed)
        return save_image(images, path, nrow=columns, value_range=(-1.0, 1.0), pad_value=0.5,
                          scale=max(1, 64 // self.cfg.image_size))
