"""DCGAN on the handwritten digits: a generator learns to draw 16x16 digits from noise.

The data are scikit-learn's 1,797 8x8 digits (no download), upsampled bilinearly to
`image_size` with pixel values in [-1, 1], the range of the generator's tanh. Each
training step is one generator update, preceded by discriminator updates, in the order
of `optimizers`. Two losses:

`--loss standard` (the default; PyTorch's DCGAN example), one update each:

    D  minimise BCE(D(x), 1) + BCE(D(G(z)), 0) on a real batch x and a fake batch G(z).
       The fake batch enters as fake.detach(): this backward stops at D and leaves G's
       graph intact for the next step, which reuses the same fake batch (cached here).
    G  minimise BCE(D(G(z)), 1), through the discriminator just updated: the
       "non-saturating" loss, whose gradient stays strong while D easily spots fakes.

   BCE is `binary_cross_entropy_with_logits` (the discriminator returns logits); both
   optimizers are Adam(lr 2e-4, betas (0.5, 0.999)), the paper's settings.

`--loss wgan-gp` (Gulrajani et al., 2017, Algorithm 1): D is a critic whose score
estimates the Wasserstein distance, mean D(x) - mean D(G(z)), kept 1-Lipschitz by a
gradient penalty instead of weight clipping:

    D  n_critic times, each on a fresh real batch, noise and eps ~ U[0, 1] per image:
       minimise mean D(G(z)) - mean D(x) + lambda * mean((||grad D(x_hat)||_2 - 1)^2)
       at x_hat = eps * x + (1 - eps) * G(z), points between real and fake images.
    G  minimise -mean D(G(z)), reusing the last critic update's fake batch as above.

   The penalty is a function of a gradient, so its own gradient with respect to the
   critic's weights is a second derivative: grad(create_graph=True) records the first.
   The critic has layer norm where DCGAN's discriminator has batch norm (see
   minifm/models/dcgan.py); both optimizers are Adam(lr 1e-4, betas (0, 0.9)), lambda 10,
   n_critic 5, the paper's settings. The Trainer updates each optimizer once per step, so
   the first n_critic - 1 critic updates run inside `loss("D")` and the Trainer makes the
   last one (--grad-clip, if given, clips that last one only).

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
from ...autograd import grad, no_grad
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
from .base import EpochCycle, Task


# Adam's settings for each loss, used where the config leaves them None: DCGAN's (Radford
# et al.) and WGAN-GP's (Gulrajani et al., Algorithm 1)
ADAM_SETTINGS = {"standard": dict(learning_rate=2e-4, beta1=0.5, beta2=0.999),
                 "wgan-gp": dict(learning_rate=1e-4, beta1=0.0, beta2=0.9)}


@dataclass
class DCGANTaskConfig:
    image_size: int = setting(16, "digits are upsampled from 8x8 to this (a power of 2, >= 8)")
    upsample_mode: str = setting("bilinear", "how the digits are upsampled",
                                 choices=("bilinear", "nearest"))
    nz: int = setting(32, "length of the noise vector z")
    ngf: int = setting(32, "generator width (channels of its last hidden layer)")
    ndf: int = setting(32, "discriminator width (channels of its first layer)")
    batch_size: int = setting(64, "images per batch (wgan-gp: per critic update)")
    loss: str = setting("standard", "the GAN loss: DCGAN's binary cross-entropy, or a "
                        "Wasserstein critic with a gradient penalty", choices=tuple(ADAM_SETTINGS))
    gp_weight: float = setting(10.0, "wgan-gp: weight lambda of the gradient penalty")
    n_critic: int = setting(5, "wgan-gp: critic updates per generator update")
    critic_norm: str = setting("layer", "wgan-gp: the critic's normalization (no batch "
                               "norm: it breaks the per-image penalty)",
                               choices=("layer", "none"))
    learning_rate: float | None = setting(None, "Adam's learning rate, for both networks "
                                          "(default: 2e-4, or 1e-4 with --loss wgan-gp)")
    beta1: float | None = setting(None, "Adam's beta1 (default: 0.5, or 0 with --loss wgan-gp)")
    beta2: float | None = setting(None, "Adam's beta2 (default: 0.999, or 0.9 with "
                                  "--loss wgan-gp)")
    val_frac: float = setting(0.1, "fraction of the digits held out for validation")
    test_frac: float = setting(0.1, "fraction of the digits held out for the final test")
    grid_size: int = setting(64, "images in a sample grid")
    classifier_epochs: int = setting(15, "training of the Frechet distance's feature extractor")
    seed: int = setting(1337, "seed of the initial weights, the batches and the noise")

    def __post_init__(self):
        require_finite(self)
        require_choices(self)
        for name, value in ADAM_SETTINGS[self.loss].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        require_at_least(self, 8, "image_size")
        require_at_least(self, 1, "nz", "ngf", "ndf", "batch_size", "grid_size",
                         "classifier_epochs", "n_critic")
        require_fraction(self, "val_frac", "test_frac", "beta1", "beta2")
        require_positive(self, "learning_rate", "gp_weight")
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
        self.netG, self.netD = (net.to(device) for net in self.build_networks())
        betas = (cfg.beta1, cfg.beta2)
        self.optimizerD = Adam(self.netD.parameters(), lr=cfg.learning_rate, betas=betas)
        self.optimizerG = Adam(self.netG.parameters(), lr=cfg.learning_rate, betas=betas)
        # draws the batch order and the noise z of each training step
        self.generator = backend.Generator(seed=cfg.seed + 1)
        self.digits = {}
        if load_data:
            self.digits = load_digits(cfg.image_size, (-1.0, 1.0), cfg.upsample_mode,
                                      cfg.val_frac, cfg.test_frac)
            self.loader = DataLoader(TensorDataset(*self.training_set()), cfg.batch_size,
                                     shuffle=True, drop_last=True, generator=self.generator)
            self.batches = EpochCycle(self.loader)
        self._fake = None          # (G(z), condition) of this step, made by the (last) D
        #                            loss, reused by G's
        self._classifier = None    # the Frechet distance's feature extractor, trained lazily
        self._references = {}      # split -> the reference metrics (they never change)

    def build_networks(self):
        """(generator, discriminator), freshly initialized from the default generator."""
        cfg = self.cfg
        return (Generator(cfg.nz, cfg.ngf, 1, cfg.image_size),
                Discriminator(1, cfg.ndf, cfg.image_size,
                              norm="batch" if cfg.loss == "standard" else cfg.critic_norm))

    def training_set(self):
        """The arrays the training batches are drawn from: (images,). A conditional task
        adds the labels, and every batch then ends with the condition the networks take
        after their first argument: netG(z, *condition), netD(images, *condition)."""
        return (self.digits["train"][0],)

    # ---------------------------------------------------------------- Trainer interface
    @property
    def modules(self):
        return {"generator": self.netG, "discriminator": self.netD}

    @property
    def optimizers(self):
        return {"D": self.optimizerD, "G": self.optimizerG}

    @property
    def items_per_step(self):
        """Real images a training step sees: one batch, or one per critic update."""
        return self.cfg.batch_size * (1 if self.cfg.loss == "standard" else self.cfg.n_critic)

    def next_batch(self):
        """Standard loss: (real images, noise z, *condition). WGAN-GP: a list of n_critic
        (real images, noise z, eps, *condition), one per critic update, eps of shape
        (batch_size, 1, 1, 1): each image's interpolation weight. The condition is empty
        here (see training_set)."""
        if self.cfg.loss == "standard":
            real, *condition = self._real_batch()
            return (real, self._noise(), *condition)
        batches = []
        for _ in range(self.cfg.n_critic):
            real, *condition = self._real_batch()
            eps = rand(self.cfg.batch_size, 1, 1, 1, generator=self.generator)
            batches.append((real, self._noise(), eps.to(self.device), *condition))
        return batches

    def _real_batch(self):
        """The next batch of the shuffled training set, [images, *condition]."""
        return [t.to(self.device) for t in self.batches.next()]

    def _noise(self):
        """A batch of noise vectors z, (batch_size, nz, 1, 1), drawn on the CPU (the same
        numbers on every device)."""
        z = randn(self.cfg.batch_size, self.cfg.nz, 1, 1, generator=self.generator)
        return z.to(self.device)

    def loss(self, name, batch):
        self.netG.train()
        self.netD.train()
        if name == "D":
            if self.cfg.loss == "standard":
                return self._discriminator_loss(*batch)
            for critic_batch in batch[:-1]:  # the Trainer makes the last update
                self.optimizerD.zero_grad(set_to_none=True)
                self._critic_loss(*critic_batch)[0].backward()
                self.optimizerD.step()
            return self._critic_loss(*batch[-1])
        if name != "G":
            raise ValueError(f"dcgan task: no optimizer named {name!r} (expected 'D' or 'G')")
        if self._fake is None:
            raise RuntimeError("dcgan task: the G loss reuses the fake batch of the D loss; "
                               "step D before G")
        (fake, condition), self._fake = self._fake, None
        output = self.netD(fake, *condition)
        if self.cfg.loss == "standard":
            loss = F.binary_cross_entropy_with_logits(output, ones_like(output))
        else:
            loss = -output.mean()
        return loss, {"loss_G": float(loss.item())}

    def _discriminator_loss(self, real, z, *condition):
        """DCGAN's discriminator loss on one batch; caches G(z) for the G loss."""
        fake = self.netG(z, *condition)
        self._fake = fake, condition
        logits_real = self.netD(real, *condition)
        logits_fake = self.netD(fake.detach(), *condition)
        loss = (F.binary_cross_entropy_with_logits(logits_real, ones_like(logits_real))
                + F.binary_cross_entropy_with_logits(logits_fake, zeros_like(logits_fake)))
        return loss, {"loss_D": float(loss.item()),
                      "D(x)": float(sigmoid(logits_real).mean().item()),
                      "D(G(z))": float(sigmoid(logits_fake).mean().item())}

    def _critic_loss(self, real, z, eps, *condition):
        """WGAN-GP's critic loss on one batch; caches G(z) for the G loss."""
        self._fake = self.netG(z, *condition), condition
        fake = self._fake[0].detach()

        def critic(x):
            return self.netD(x, *condition)

        wasserstein = critic(real).mean() - critic(fake).mean()
        penalty = gradient_penalty(critic, real, fake, eps)
        loss = self.cfg.gp_weight * penalty - wasserstein
        return loss, {"loss_D": float(loss.item()),
                      "wasserstein_estimate": float(wasserstein.item()),
                      "gradient_penalty": float(penalty.item())}

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
            fake = self.netG(z.to(self.device)).cpu().numpy()
            self.netG.train()
        return {"frechet_distance": frechet_distance_of_features(
                    real, classifier_features(classifier, fake)),
                **self._references[split]}

    def data_state(self):
        return {"loader": self.loader.state_dict(), "generator": self.generator.get_state()}

    def load_data_state(self, state):
        self.loader.load_state_dict(state["loader"])
        self.generator.set_state(state["generator"])
        self.batches.reset()

    def sample(self, seed=0, path=None):
        """Write a grid of `grid_size` generated digits as a PNG; returns its path. The noise
        depends on `seed` alone, so seed 0 shows the same z at every stage of training."""
        path = path or os.path.join(self.out_dir, f"samples_seed{seed}.png")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        z = randn(self.cfg.grid_size, self.cfg.nz, 1, 1, generator=backend.Generator(seed=seed))
        with no_grad():
            self.netG.eval()
            images = self.netG(z.to(self.device)).cpu()
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


def gradient_penalty(critic, real, fake, eps):
    """WGAN-GP's penalty mean((||grad_x critic(x)||_2 - 1)^2) at x_hat = eps * real +
    (1 - eps) * fake (Gulrajani et al.): it pushes the critic's gradient norm towards 1,
    the 1-Lipschitz bound of the Wasserstein dual, on the lines between real and fake
    images. `real` and `fake` carry no graph; eps broadcasts (one weight per image).

    The gradient is taken with create_graph=True, so it is itself a function of the
    critic's weights, and the penalty's backward reaches them (a second derivative).
    Summing the scores gives each image's own gradient at once: the critic treats the
    images of a batch independently (no batch norm).
    """
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (gradient,) = grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((gradient.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
