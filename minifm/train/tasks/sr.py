"""Super-resolution: ESPCN (Shi et al., 2016) learns to upscale scikit-learn's two sample
photographs by `scale` (2x by default), measured against bicubic upscaling.

Data (minifm/data/photos.py): fixed row bands of both photos for training, validation
and test, on the luma channel Y by default (`--channels rgb` for colour), values in
[0, 1]. The low-resolution input is the band downscaled bicubically (PyTorch's
interpolate, no antialiasing). A training step takes `batch_size` random aligned patch
pairs, `lr_patch_size` low-resolution pixels square, each flipped at random.

Training minimises the mean squared error between ESPCN's output and the high-resolution
patch, with Adam (the paper uses SGD, 0.01 falling to 0.0001; Adam at 3e-3 with a cosine
decay to 3e-4 gets there in fewer steps: 1e-3 was 0.2 dB behind after 1,000 steps).
`--adversarial-weight w` (SRGAN, Ledig et al., 2017: w = 1e-3) adds w times the
non-saturating GAN loss BCE(D(SR), 1) of a discriminator (minifm/models/srgan.py) that is
trained, one update before each ESPCN update, to tell high-resolution patches (1) from
ESPCN's outputs (0): the DCGAN task's two-optimizer scheme, with ESPCN as the generator.
SRGAN starts from a generator trained on the MSE alone: `--init-from CHECKPOINT` starts a
new run from an sr checkpoint's ESPCN.

Evaluation upscales each whole low-resolution band of the split, clips the result to
[0, 1], crops a border of `scale` pixels (where zero padding and the interpolation's edge
rule decide more than the image does), and reports the mean over the two photos of PSNR
and SSIM (minifm.metrics, data range 1), each photo's PSNR, and "loss", the mean MSE
(lower is better, for early stopping and best.safetensors); beside them the same metrics
of bicubic upscaling (PyTorch's, as for the downscaling) and of nearest-neighbour
upscaling. `sample` writes a PNG of test crops, one row per photo: nearest, bicubic, ESPCN, the
original.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ... import backend
from ...autograd import no_grad
from ...creation import from_numpy, ones_like, randint, zeros_like
from ...data.photos import (
    CHANNELS, PHOTOS, ROW_BANDS, bicubic_resize, photo_regions, random_patches,
)
from ...metrics import psnr, ssim
from ...models.espcn import ESPCN
from ...models.srgan import SRDiscriminator
from ...nn import functional as F
from ...ops.activation import sigmoid
from ...optim import Adam
from ..checkpoint import read_checkpoint
from ..images import save_image
from ..settings import (
    ConfigError, require_at_least, require_choices, require_finite, require_positive, setting,
)
from .base import Task

METHODS = ("nearest", "bicubic")  # the baselines evaluate reports beside ESPCN


@dataclass
class SRTaskConfig:
    scale: int = setting(2, "the upscaling factor r", choices=(2, 3, 4))
    channels: str = setting("y", "the luma Y (BT.601) or the three colour channels",
                            choices=CHANNELS)
    lr_patch_size: int = setting(24, "side of a training patch, in low-resolution pixels")
    batch_size: int = setting(16, "patches per training step")
    n1: int = setting(64, "channels of ESPCN's first (5x5) convolution")
    n2: int = setting(32, "channels of ESPCN's second (3x3) convolution")
    learning_rate: float = setting(3e-3, "Adam's peak learning rate (both networks)")
    adversarial_weight: float = setting(0.0, "SRGAN: weight of the adversarial loss beside "
                                        "the MSE (0: none; the SRGAN paper uses 1e-3)")
    init_from: str | None = setting(None, "an sr checkpoint whose ESPCN weights start a new "
                                    "run (SRGAN fine-tunes an MSE-trained ESPCN)")
    ndf: int = setting(16, "SRGAN: width of the discriminator's first convolutions")
    crop_size: int = setting(96, "sample: side of each crop, in high-resolution pixels")
    seed: int = setting(1337, "seed of the initial weights and of the patches")

    def __post_init__(self):
        require_finite(self)
        require_choices(self)
        require_at_least(self, 1, "lr_patch_size", "batch_size", "n1", "n2", "ndf")
        require_positive(self, "learning_rate")
        require_at_least(self, 0, "adversarial_weight")
        if self.init_from:  # absolute, so that the run works from any folder
            self.init_from = os.path.abspath(self.init_from)
        rows = min(bottom - top for top, bottom in ROW_BANDS["train"]) // self.scale
        if self.lr_patch_size > rows:
            raise ConfigError("SRTaskConfig", f"lr_patch_size={self.lr_patch_size} does not "
                              f"fit the narrowest training band: {rows} low-resolution rows "
                              f"at scale={self.scale}", "lr_patch_size", "scale")
        (top, bottom), = ROW_BANDS["test"]
        if not self.scale <= self.crop_size <= bottom - top:
            raise ConfigError("SRTaskConfig", f"crop_size={self.crop_size} must be between "
                              f"scale={self.scale} and the test band's {bottom - top} rows",
                              "crop_size", "scale")


class SRTask(Task):
    """Train ESPCN to upscale photographs (super-resolution), against bicubic upscaling."""

    name = "sr"
    config_class = SRTaskConfig
    train_defaults = dict(max_steps=4000, eval_interval=500, warmup_steps=0, min_lr_ratio=0.1,
                          grad_clip=None, out_dir="runs/sr")
    val_metrics = ("loss",)
    sample_options = ("path",)
    item_name = "patches"

    def __init__(self, cfg: SRTaskConfig, out_dir, state=None, load_data=True, device="cpu"):
        super().__init__(cfg, out_dir, device=device)
        backend.manual_seed(cfg.seed)
        channels = 1 if cfg.channels == "y" else 3
        self.model = ESPCN(cfg.scale, channels, cfg.n1, cfg.n2)
        if cfg.init_from and state is None:  # a new run (a resumed one has its own weights)
            self.model.load_state_dict(espcn_weights(cfg.init_from, cfg))
        self.model.to(device)
        self.optimizer = Adam(self.model.parameters(), lr=cfg.learning_rate)
        self.netD = self.optimizerD = None
        if cfg.adversarial_weight > 0:
            self.netD = SRDiscriminator(channels, cfg.ndf).to(device)
            self.optimizerD = Adam(self.netD.parameters(), lr=cfg.learning_rate)
        self.generator = backend.Generator(seed=cfg.seed + 1)  # draws the patches
        self.regions = photo_regions(cfg.channels, cfg.scale) if load_data else {}
        self._baselines = {}   # split -> the metrics of nearest and bicubic (they never change)
        self._upscaled = None  # ESPCN's output of this step's patches, made by the D loss

    # ---------------------------------------------------------------- Trainer interface
    @property
    def modules(self):
        return {"model": self.model, **({"discriminator": self.netD} if self.netD else {})}

    @property
    def optimizers(self):
        return {**({"D": self.optimizerD} if self.netD else {}), "model": self.optimizer}

    @property
    def items_per_step(self):
        return self.cfg.batch_size

    def next_batch(self):
        """(low-res patches, high-res patches) from the training bands."""
        lr, hr = random_patches(self.regions["train"], self.cfg.lr_patch_size,
                                self.cfg.batch_size, self.generator)
        return self._tensor(lr), self._tensor(hr)

    def _tensor(self, array):
        return from_numpy(np.ascontiguousarray(array)).to(self.device)

    def loss(self, name, batch):
        lr, hr = batch
        self.model.train()
        if name == "D" and self.netD is not None:
            return self._discriminator_loss(lr, hr)
        if name != "model":
            raise ValueError(f"sr task: no optimizer named {name!r} (expected "
                             f"{' or '.join(map(repr, self.optimizers))})")
        upscaled = self.model(lr) if self._upscaled is None else self._upscaled
        self._upscaled = None
        mse = F.mse_loss(upscaled, hr)
        if self.netD is None:
            return mse, {"loss": float(mse.item())}
        logits = self.netD(upscaled)
        adversarial = F.binary_cross_entropy_with_logits(logits, ones_like(logits))
        loss = mse + self.cfg.adversarial_weight * adversarial
        return loss, {"loss": float(mse.item()), "adversarial": float(adversarial.item())}

    def _discriminator_loss(self, lr, hr):
        """BCE of the discriminator on real patches (1) and ESPCN's outputs (0); caches the
        outputs for ESPCN's loss, which follows."""
        self.netD.train()
        self._upscaled = self.model(lr)
        real, fake = self.netD(hr), self.netD(self._upscaled.detach())
        loss = (F.binary_cross_entropy_with_logits(real, ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, zeros_like(fake)))
        return loss, {"loss_D": float(loss.item()), "D(x)": float(sigmoid(real).mean().item()),
                      "D(G(z))": float(sigmoid(fake).mean().item())}

    def evaluate(self, split):
        """ESPCN's loss (MSE), PSNR and SSIM on the split's bands, and the baselines'."""
        if split not in self.regions:
            return {}
        if split not in self._baselines:
            self._baselines[split] = {
                f"{name}_{method}": value for method in METHODS
                for name, value in self._scores(split, getattr(self, method)).items()}
        return {**self._scores(split, self.upscale), **self._baselines[split]}

    def _scores(self, split, upscale):
        """{"loss", "psnr", "ssim"}: means over the split's bands (one per photo) of the
        upscaled band against the original, both cropped by a border of `scale` pixels;
        and each photo's PSNR ("psnr_china", "psnr_flower")."""
        b = self.cfg.scale
        scores = {"loss": [], "psnr": [], "ssim": []}
        for lr, hr in self.regions[split]:
            out = np.clip(upscale(lr), 0.0, 1.0)[:, b:-b, b:-b]
            ref = hr[:, b:-b, b:-b]
            scores["loss"].append(float(np.mean((out.astype(np.float64) - ref) ** 2)))
            scores["psnr"].append(psnr(ref, out, data_range=1.0))
            scores["ssim"].append(ssim(ref, out, data_range=1.0, channel_axis=0))
        photos = {f"psnr_{name.split('.')[0]}": value
                  for name, value in zip(PHOTOS, scores["psnr"])}
        return {**{name: float(np.mean(values)) for name, values in scores.items()}, **photos}

    # ---------------------------------------------------------------- the three upscalers
    @no_grad()
    def upscale(self, lr):
        """ESPCN's output for a low-resolution image (C, h, w), a NumPy array (unclipped)."""
        self.model.eval()
        try:
            return self.model(self._tensor(lr[None])).cpu().numpy()[0]
        finally:
            self.model.train()

    def bicubic(self, lr):
        """lr (C, h, w) upscaled by PyTorch's bicubic interpolation (unclipped)."""
        return bicubic_resize(lr, (lr.shape[1] * self.cfg.scale, lr.shape[2] * self.cfg.scale))

    def nearest(self, lr):
        """lr (C, h, w) with each pixel repeated scale x scale times."""
        return lr.repeat(self.cfg.scale, axis=1).repeat(self.cfg.scale, axis=2)

    # ---------------------------------------------------------------- sample
    def sample(self, seed=0, path=None):
        """Write a PNG of one test crop per photo, side by side: nearest, bicubic, ESPCN,
        the original (crop_size pixels square, shown 2x enlarged); returns its path. The
        crops' places depend on `seed` alone; each whole band is upscaled, then cropped, so
        a crop has no edges of its own."""
        path = path or os.path.join(self.out_dir, f"samples_seed{seed}.png")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        regions = self.regions or photo_regions(self.cfg.channels, self.cfg.scale)
        gen = backend.Generator(seed=seed)
        size, s = self.cfg.crop_size, self.cfg.scale
        tiles = []
        for lr, hr in regions["test"]:
            top = s * int(randint(0, (hr.shape[1] - size) // s + 1, (1,), generator=gen).item())
            left = s * int(randint(0, (hr.shape[2] - size) // s + 1, (1,), generator=gen).item())
            for upscaled in (self.nearest(lr), self.bicubic(lr), self.upscale(lr), hr):
                tiles.append(upscaled[:, top:top + size, left:left + size])
        return save_image(np.stack(tiles), path, nrow=4, padding=4, pad_value=1.0, scale=2)

    # ---------------------------------------------------------------- saving and rebuilding
    def data_state(self):
        return {"generator": self.generator.get_state()}

    def load_data_state(self, state):
        self.generator.set_state(state["generator"])


def espcn_weights(path, cfg):
    """The ESPCN weights of the sr checkpoint `path`, checked to fit the model of `cfg`."""
    ckpt = read_checkpoint(path)
    config = ckpt["config"]["task"]
    if config.get("name") != "sr":
        raise ValueError(f"--init-from {path}: expected an sr checkpoint, this one is of the "
                         f"{config.get('name')!r} task")
    for name in ("scale", "channels", "n1", "n2"):
        if config[name] != getattr(cfg, name):
            raise ValueError(f"--init-from {path}: its {name}={config[name]!r} differs from "
                             f"this run's {name}={getattr(cfg, name)!r}")
    return ckpt["modules"]["model"]
