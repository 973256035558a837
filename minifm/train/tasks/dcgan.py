"""DCGAN on the handwritten digits: a generator learns to draw 16x16 digits from noise.

The data are scikit-learn's 1,797 8x8 digits (no download), upsampled bilinearly to
`image_size` with pixel values in [-1, 1], the range of the generator's tanh. Each
training step is two optimizer steps, in the order of `optimizers` (PyTorch's DCGAN
example):

    D  minimise BCE(D(x), 1) + BCE(D(G(z)), 0) on a real batch x and a fake batch G(z).
       The fake batch enters as fake.detach(): this backward stops at D and leaves G's
       graph intact for the next step, which reuses the same fake batch (cached here).
    G  minimise BCE(D(G(z)), 1), through the discriminator just updated: the
       "non-saturating" loss, whose gradient stays strong while D easily spots fakes.

BCE is `binary_cross_entropy_with_logits` (the discriminator returns logits); both
optimizers are Adam(lr 2e-4, betas (0.5, 0.999)), the paper's settings.

Evaluation reports the Frechet distance (see minifm/train/frechet.py) between the
features of n generated digits and the n real digits of the split, where the features
are the penultimate layer of a small digit classifier trained, seeded, on the training
split at the first evaluation. Beside it, computed the same way with n images each:
uniform noise in [-1, 1], Gaussian noise with the training digits' per-pixel mean and
standard deviation, and n real training digits (the floor: two disjoint real sets).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ... import backend
from ...autograd import no_grad
from ...creation import ones_like, rand, randn, randperm, zeros_like
from ...data import DataLoader, TensorDataset, load_digits
from ...models.dcgan import Discriminator, Generator
from ...nn import functional as F
from ...ops.activation import sigmoid
from ...optim import Adam
from ..frechet import (
    classifier_accuracy, classifier_features, frechet_distance_of_features,
    train_digit_classifier,
)
from ..images import save_image
from ..settings import (
    ConfigError, require_at_least, require_choices, require_finite, require_fraction,
    require_positive, setting,
)
from .base import Task


@dataclass
class DCGANTaskConfig:
    image_size: int = setting(16, "digits are upsampled from 8x8 to this (a power of 2, >= 8)")
    upsample_mode: str = setting("bilinear", "how the digits are upsampled",
                                 choices=("bilinear", "nearest"))
    nz: int = setting(32, "length of the noise vector z")
    ngf: int = setting(32, "generator width (channels of its last hidden layer)")
    ndf: int = setting(32, "discriminator width (channels of its first layer)")
    batch_size: int = setting(64, "images per training step")
    learning_rate: float = setting(2e-4, "Adam's learning rate, for both networks")
    beta1: float = setting(0.5, "Adam's beta1")
    beta2: float = setting(0.999, "Adam's beta2")
    val_frac: float = setting(0.1, "fraction of the digits held out for validation")
    test_frac: float = setting(0.1, "fraction of the digits held out for the final test")
    grid_size: int = setting(64, "images in a sample grid")
    classifier_epochs: int = setting(15, "training of the Frechet distance's feature extractor")
    seed: int = setting(1337, "seed of the initial weights, the batches and the noise")

    def __post_init__(self):
        require_finite(self)
        require_choices(self)
        require_at_least(self, 8, "image_size")
        require_at_least(self, 1, "nz", "ngf", "ndf", "batch_size", "grid_size",
                         "classifier_epochs")
        require_fraction(self, "val_frac", "test_frac", "beta1", "beta2")
        require_positive(self, "learning_rate")
        if self.image_size & (self.image_size - 1):
            raise ConfigError("DCGANTaskConfig", f"image_size={self.image_size} must be a "
                              "power of 2", "image_size")


class DCGANTask(Task):
    """Train a DCGAN on the 8x8 digits upsampled to 16x16 (Radford et al.'s recipe)."""

    name = "dcgan"
    config_class = DCGANTaskConfig
    train_defaults = dict(max_steps=1500, eval_interval=250, warmup_steps=0, min_lr_ratio=1.0,
                          grad_clip=None, out_dir="runs/dcgan")
    val_metrics = ("frechet_distance",)
    sample_options = ("path",)
    item_name = "images"

    def __init__(self, cfg: DCGANTaskConfig, out_dir, state=None, load_data=True, device="cpu"):
        super().__init__(cfg, out_dir, device=device)
        backend.manual_seed(cfg.seed)
        self.netG = Generator(cfg.nz, cfg.ngf, 1, cfg.image_size)
        self.netD = Discriminator(1, cfg.ndf, cfg.image_size)
        betas = (cfg.beta1, cfg.beta2)
        self.optimizerD = Adam(self.netD.parameters(), lr=cfg.learning_rate, betas=betas)
        self.optimizerG = Adam(self.netG.parameters(), lr=cfg.learning_rate, betas=betas)
        # draws the batch order and the noise z of each training step
        self.generator = backend.Generator(seed=cfg.seed + 1)
        self.digits = {}
        if load_data:
            self.digits = load_digits(cfg.image_size, (-1.0, 1.0), cfg.upsample_mode,
                                      cfg.val_frac, cfg.test_frac)
            self.loader = DataLoader(TensorDataset(self.digits["train"][0]), cfg.batch_size,
                                     shuffle=True, drop_last=True, generator=self.generator)
        self._batches = None       # the loader's current epoch
        self._fake = None          # G(z) of this step, made by the D loss, reused by the G loss
        self._classifier = None    # the Frechet distance's feature extractor, trained lazily
        self._references = {}      # split -> the reference metrics (they never change)

    # ---------------------------------------------------------------- Trainer interface
    @property
    def modules(self):
        return {"generator": self.netG, "discriminator": self.netD}

    @property
    def optimizers(self):
        return {"D": self.optimizerD, "G": self.optimizerG}

    @property
    def items_per_step(self):
        return self.cfg.batch_size

    def next_batch(self):
        """(real images, noise z): the next batch of the shuffled training digits."""
        if self._batches is None:
            self._batches = iter(self.loader)
        batch = next(self._batches, None)
        if batch is None:  # the epoch is over: start the next one
            self._batches = iter(self.loader)
            batch = next(self._batches)
        z = randn(self.cfg.batch_size, self.cfg.nz, 1, 1, generator=self.generator)
        return batch[0], z

    def loss(self, name, batch):
        real, z = batch
        self.netG.train()
        self.netD.train()
        if name == "D":
            self._fake = self.netG(z)
            logits_real = self.netD(real)
            logits_fake = self.netD(self._fake.detach())
            loss = (F.binary_cross_entropy_with_logits(logits_real, ones_like(logits_real))
                    + F.binary_cross_entropy_with_logits(logits_fake, zeros_like(logits_fake)))
            return loss, {"loss_D": float(loss.item()),
                          "D(x)": float(sigmoid(logits_real).mean().item()),
                          "D(G(z))": float(sigmoid(logits_fake).mean().item())}
        if name != "G":
            raise ValueError(f"dcgan task: no optimizer named {name!r} (expected 'D' or 'G')")
        if self._fake is None:
            raise RuntimeError("dcgan task: the G loss reuses the fake batch of the D loss; "
                               "step D before G")
        fake, self._fake = self._fake, None
        logits = self.netD(fake)
        loss = F.binary_cross_entropy_with_logits(logits, ones_like(logits))
        return loss, {"loss_G": float(loss.item())}

    def evaluate(self, split):
        """Frechet distances to the real digits of `split` (see the module docstring). The
        noise comes from generators seeded afresh: every evaluation compares the same z,
        and the training RNG is untouched."""
        if split not in self.digits:
            return {}
        images, labels = self.digits[split]
        classifier = self.classifier()
        real = classifier_features(classifier, images)
        if split not in self._references:
            self._references[split] = self._reference_metrics(real, images, labels)
        with no_grad():
            self.netG.eval()
            z = randn(len(labels), self.cfg.nz, 1, 1, generator=backend.Generator(seed=self.cfg.seed + 2))
            fake = self.netG(z).numpy()
            self.netG.train()
        return {"frechet_distance": frechet_distance_of_features(
                    real, classifier_features(classifier, fake)),
                **self._references[split]}

    def data_state(self):
        return {"loader": self.loader.state_dict(), "generator": self.generator.get_state()}

    def load_data_state(self, state):
        self.loader.load_state_dict(state["loader"])
        self.generator.set_state(state["generator"])
        self._batches = None

    def sample(self, seed=0, path=None):
        """Write a grid of `grid_size` generated digits as a PNG; returns its path. The noise
        depends on `seed` alone, so seed 0 shows the same z at every stage of training."""
        path = path or os.path.join(self.out_dir, f"samples_seed{seed}.png")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        z = randn(self.cfg.grid_size, self.cfg.nz, 1, 1, generator=backend.Generator(seed=seed))
        with no_grad():
            self.netG.eval()
            images = self.netG(z)
            self.netG.train()
        return save_image(images, path, nrow=8, value_range=(-1.0, 1.0), pad_value=0.5,
                          scale=max(1, 64 // self.cfg.image_size))

    # ---------------------------------------------------------------- evaluation helpers
    def classifier(self):
        """The digit classifier whose penultimate layer gives the features (trained once)."""
        if self._classifier is None:
            self._classifier = train_digit_classifier(*self.digits["train"],
                                                      epochs=self.cfg.classifier_epochs,
                                                      seed=self.cfg.seed + 3)
        return self._classifier

    def _reference_metrics(self, real, images, labels):
        """The distances of noise and of other real digits to `real` (the features of the
        split's images), and the classifier's accuracy on the split."""
        n, shape = len(labels), images.shape
        train = self.digits["train"][0]
        gen = backend.Generator(seed=self.cfg.seed + 4)
        uniform = rand(shape, generator=gen).numpy() * 2 - 1
        mean, std = train.mean(axis=0), train.std(axis=0)
        gaussian = np.clip(mean + std * randn(shape, generator=gen).numpy(), -1, 1)
        other_real = train[randperm(len(train), generator=gen).numpy()[:n]]
        classifier = self.classifier()

        def distance(x):
            return frechet_distance_of_features(
                real, classifier_features(classifier, x.astype(np.float32)))

        return {"frechet_distance_real": distance(other_real),
                "frechet_distance_gaussian_noise": distance(gaussian),
                "frechet_distance_uniform_noise": distance(uniform),
                "classifier_accuracy": classifier_accuracy(classifier, images, labels)}
