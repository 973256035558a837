"""GAN data augmentation on few digits: do a cGAN's samples, learned from the same k real
digits per class, help a classifier trained on those k?

    python benchmarks/gan_augmentation_study.py          # k = 5, 10, 20, 50; 5 seeds
    python benchmarks/gan_augmentation_study.py --quick  # a smoke run (seconds)

For each k and seed, the k training digits of each class are drawn from the fixed training
split (`per_class_subset`, the `cgan` task's `--train-per-class`), and a small CNN is
trained on them under four conditions, then scored on the whole fixed test split (179
digits):

  real       the k real digits per class alone;
  classical  with classical augmentation of every batch: the resnet task's random shifts
             (up to 1 pixel) and a random rotation of up to 10 degrees;
  gan        each batch of real digits joined by as many cGAN samples (labels uniform);
  both       gan, with the classical augmentation applied to real and generated digits.

The cGAN (minifm/train/tasks/cgan.py at 8x8, the digits' own size) is trained once per
(k, seed) on those same k digits per class only, and its pool of samples is shared by
`gan` and `both`. Every condition trains the classifier for the same number of steps from
the same initialization (the seed). Results: benchmarks/results/gan_augmentation.json, .md
and .png (mean test accuracy against k, one line per condition, error bars one standard
deviation over the seeds), and the cGAN's sample grid of seed 0 for each k. With
`--classifier RUN_DIR` (a `minifm train resnet` run) each cGAN's pool is also scored by
that ResNet: the GAN-test accuracy of the samples the classifier trains on.

The classifier's schedule (500 steps of Adam 1e-3) and the largest rotation (10 degrees)
were chosen on the validation split (k = 10 and 50, seed 0: 300 and 600 steps, 0, 10 and
15 degrees); the test split was not used to choose anything.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from common import machine_info, write_json

import minifm.nn as nn
from minifm import backend, runtime
from minifm.autograd import no_grad
from minifm.creation import from_numpy, rand, randint
from minifm.data import load_digits
from minifm.nn import functional as F
from minifm.optim import Adam
from minifm.train.tasks.cgan import (
    CGANTask, CGANTaskConfig, classifier_input, load_classifier, per_class_subset,
)
from minifm.train.tasks.resnet import random_shift

RESULTS = Path(__file__).resolve().parent / "results"
CONDITIONS = ("real", "classical", "gan", "both")
FULL = dict(ks=(5, 10, 20, 50), seeds=5, gan_steps=300, classifier_steps=500, pool=100)
QUICK = dict(ks=(2,), seeds=1, gan_steps=3, classifier_steps=5, pool=4)
CGAN = dict(image_size=8, nz=32, ngf=32, ndf=32, embed_dim=10, learning_rate=1e-3)
BATCH = 32          # real digits per classifier step (and as many generated ones)
MAX_DEGREES = 10.0  # classical augmentation: the largest rotation


class SmallCNN(nn.Module):
    """8x8 digits -> 10 logits: two 3x3 convolutions (16, 32 channels), one 2x2 pooling."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(32 * 4 * 4, 10))

    def forward(self, x):
        return self.net(x)


def classical_augmentation(images, generator):
    """Each digit shifted by up to one pixel (the resnet task's random_shift), then rotated
    about its centre by an angle uniform in [-10, 10] degrees (bilinear, zeros outside)."""
    shifted = random_shift(images, 1, generator)
    angles = (rand(len(images), generator=generator).numpy() * 2 - 1) * MAX_DEGREES
    return np.stack([ndimage.rotate(image, angle, axes=(1, 2), reshape=False, order=1)
                     for image, angle in zip(shifted, angles)]).astype(np.float32)


def train_classifier(real, fake, augment, seed, steps):
    """A SmallCNN trained on `real` (images, labels), each batch joined by as many of
    `fake` (or None); returns it in eval mode. Batches are drawn with replacement."""
    backend.manual_seed(seed)
    model = SmallCNN()
    optimizer = Adam(model.parameters(), lr=1e-3)
    generator = backend.Generator(seed=seed + 1)
    for _ in range(steps):
        parts = [draw(*real, generator)] + ([draw(*fake, generator)] if fake else [])
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if augment:
            images = classical_augmentation(images, generator)
        loss = F.cross_entropy(model(from_numpy(images)), from_numpy(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def draw(images, labels, generator):
    """BATCH examples drawn uniformly with replacement."""
    idx = randint(0, len(labels), (BATCH,), generator=generator).numpy()
    return images[idx], labels[idx]


@no_grad()
def accuracy(model, images, labels):
    return float((model(from_numpy(images)).numpy().argmax(1) == labels).mean())


def train_cgan(k, seed, steps, out_dir):
    """The cGAN task on k training digits per class, `steps` steps of its D then G update
    (the Trainer's order, without its evaluations and checkpoints)."""
    cfg = CGANTaskConfig(**CGAN, batch_size=min(64, 10 * k), train_per_class=k, seed=seed,
                         classifier=None)
    task = CGANTask(cfg, out_dir)
    for _ in range(steps):
        batch = task.next_batch()
        for name, optimizer in task.optimizers.items():
            optimizer.zero_grad(set_to_none=True)
            loss, _ = task.loss(name, batch)
            loss.backward()
            optimizer.step()
    return task


def run(settings, output, classifier=None, log=print):
    """Every (seed, k) in turn, seeds outermost; the results so far are written after
    each seed (all k), so an interrupted study still reports every k."""
    resnet = load_classifier(classifier) if classifier else None
    digits = load_digits(8, (0.0, 1.0))  # the fixed split, the cgan task's at 8x8
    train_images, train_labels = digits["train"]
    test_images, test_labels = digits["test"]
    results = {c: {k: [] for k in settings["ks"]} for c in CONDITIONS}
    gan_test = {k: [] for k in settings["ks"]}
    timing = {"cgan": 0.0, "classifier": 0.0}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(settings["seeds"]):
            for k in settings["ks"]:
                keep = per_class_subset(train_labels, k, seed)
                real = (train_images[keep], train_labels[keep])
                t = time.perf_counter()
                cgan = train_cgan(k, seed, settings["gan_steps"], tmp)
                wanted = np.repeat(np.arange(10), settings["pool"])
                fake = (classifier_input(cgan.generate(wanted, seed=seed + 100)), wanted)
                if resnet is not None:
                    right = resnet.logits(fake[0]).argmax(1) == wanted
                    gan_test[k].append(float(right.mean()))
                if seed == 0:
                    cgan.sample(0, path=str(output.with_name(f"{output.stem}_cgan_k{k}.png")))
                timing["cgan"] += time.perf_counter() - t
                t = time.perf_counter()
                for condition in CONDITIONS:
                    model = train_classifier(real, fake if condition in ("gan", "both") else None,
                                             condition in ("classical", "both"), seed,
                                             settings["classifier_steps"])
                    results[condition][k].append(accuracy(model, test_images, test_labels))
                timing["classifier"] += time.perf_counter() - t
                log(f"k={k} seed={seed}: " + ", ".join(
                    f"{c} {results[c][k][-1]:.3f}" for c in CONDITIONS)
                    + f" ({time.perf_counter() - start:.0f} s)")
            report = {"settings": {**settings, "seeds_done": seed + 1, "cgan": CGAN,
                                   "batch": BATCH, "max_degrees": MAX_DEGREES,
                                   "test_digits": len(test_labels)},
                      "machine": machine_info(),
                      "wall_seconds": round(time.perf_counter() - start, 1),
                      "seconds": {name: round(s, 1) for name, s in timing.items()},
                      "results": summarize(results)}
            if resnet is not None:
                report["gan_test_accuracy"] = {str(k): {"mean": float(np.mean(v)),
                                                        "accuracies": v}
                                               for k, v in gan_test.items()}
            write_json(output.with_suffix(".json"), report)
            output.with_suffix(".md").write_text(markdown(report))
            plot(report, output.with_suffix(".png"))
    return report


def summarize(results):
    """{condition: {k: mean, std (ddof 1) and the accuracies}} of {condition: {k: [...]}}."""
    return {c: {str(k): {"mean": float(np.mean(v)),
                         "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                         "accuracies": v}
                for k, v in per_k.items()} for c, per_k in results.items()}


def markdown(report):
    """The table of mean +- standard deviation of test accuracy, k by condition."""
    ks = report["settings"]["ks"]
    lines = ["| condition | " + " | ".join(f"k = {k}" for k in ks) + " |",
             "|---|" + "---|" * len(ks)]
    for c in CONDITIONS:
        cells = [report["results"][c][str(k)] for k in ks]
        lines.append(f"| {c} | " + " | ".join(
            f"{100 * x['mean']:.1f} ± {100 * x['std']:.1f}" for x in cells) + " |")
    s = report["settings"]
    return ("# GAN data augmentation on few digits\n\n"
            f"Test accuracy (%) on the fixed test split ({s['test_digits']} digits), mean ± "
            f"standard deviation over {s['seeds_done']} seeds, of a small CNN trained on k real "
            "digits per class. `python benchmarks/gan_augmentation_study.py`, "
            f"{report['wall_seconds']:.0f} s ({report['seconds']['cgan']:.0f} s training "
            f"cGANs).\n\n" + "\n".join(lines) + "\n" + paired_table(report)
            + gan_test_line(report))


def paired_table(report):
    """Each condition against `real` on the same seed (same digits, same initialization):
    the mean difference in points and on how many seeds it was better."""
    ks = report["settings"]["ks"]
    results = report["results"]
    lines = ["\nAgainst `real` on the same seed (the same k digits per class and the same "
             "initial weights): mean difference in points, and seeds better / tied / worse.\n",
             "| condition | " + " | ".join(f"k = {k}" for k in ks) + " |",
             "|---|" + "---|" * len(ks)]
    for c in CONDITIONS[1:]:
        cells = []
        for k in ks:
            base = np.asarray(results["real"][str(k)]["accuracies"])
            other = np.asarray(results[c][str(k)]["accuracies"])
            cells.append(f"{100 * (other - base).mean():+.1f} ({(other > base).sum()}/"
                         f"{(other == base).sum()}/{(other < base).sum()})")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def gan_test_line(report):
    """The ResNet's mean accuracy on each k's cGAN samples, when it was measured."""
    if "gan_test_accuracy" not in report:
        return ""
    cells = ", ".join(f"k = {k}: {100 * v['mean']:.1f}%"
                      for k, v in report["gan_test_accuracy"].items())
    return ("\nGAN-test (the `--classifier` ResNet's accuracy on the cGAN samples the "
            f"classifiers train on, mean over the seeds): {cells}.\n")


def plot(report, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = report["settings"]["ks"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, c in enumerate(CONDITIONS):
        cells = [report["results"][c][str(k)] for k in ks]
        x = np.asarray(ks) * (1 + 0.03 * (i - 1.5))  # side by side, error bars apart
        ax.errorbar(x, [100 * e["mean"] for e in cells], [100 * e["std"] for e in cells],
                    marker="o", capsize=3, label=c)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlabel("real training digits per class (k)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"small CNN on k digits per class, {report['settings']['seeds_done']} seeds")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: k = 2, 1 seed")
    parser.add_argument("--classifier", default=None, metavar="RUN_DIR",
                        help="a `minifm train resnet` run: score each cGAN's samples with it")
    parser.add_argument("--output", type=Path, default=RESULTS / "gan_augmentation",
                        help="the results' path without suffix (.json, .md, .png)")
    args = parser.parse_args(argv)
    runtime.limit_threads(None)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = run(QUICK if args.quick else FULL, args.output, args.classifier)
    print(markdown(report))


if __name__ == "__main__":
    main()
