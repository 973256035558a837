"""The Frechet distance between two sets of images, FID's measure (Heusel et al., 2017) on a
scale a CPU can afford: a small MLP trained on the digits in seconds stands in for Inception.

Fit a Gaussian to the features of each set (mean mu, covariance S). The Frechet
(2-Wasserstein) distance between the two Gaussians is

    d^2 = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)).

S1 S2 is not symmetric, but it is similar to S1^(1/2) S2 S1^(1/2), which is symmetric
positive semi-definite: both have the same eigenvalues, so Tr((S1 S2)^(1/2)) is the sum
of the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2). Two symmetric
eigendecompositions (numpy.linalg.eigh) give it, with no general matrix square root and
no complex round-off.

The estimate from n samples is biased upwards (the sample covariances are noisy), so only
compare distances computed from sets of equal size, and read them beside the floor of
two disjoint sets of real images.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import enable_grad, no_grad
from ..creation import from_numpy, randperm
from ..nn import Flatten, Linear, Module, ReLU, Sequential
from ..nn import functional as F
from ..optim import Adam


def gaussian_statistics(features):
    """(mean, covariance) of feature vectors (N, D), in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"gaussian_statistics: expected features of shape (N >= 2, D), "
                         f"got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """The Frechet distance d^2 between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"frechet_distance: expected means of shape (D,) and covariances of "
                         f"shape (D, D), got mu1 {mu1.shape}, sigma1 {sigma1.shape}, "
                         f"mu2 {mu2.shape}, sigma2 {sigma2.shape}")
    w, v = np.linalg.eigh(sigma1)
    sqrt1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    middle = sqrt1 @ sigma2 @ sqrt1
    middle = (middle + middle.T) / 2  # symmetric in exact arithmetic; remove the round-off
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def frechet_distance_of_features(features1, features2):
    """The Frechet distance between Gaussians fitted to two sets of feature vectors."""
    return frechet_distance(*gaussian_statistics(features1), *gaussian_statistics(features2))


class DigitClassifier(Module):
    """An MLP for (N, 1, S, S) digit images: two ReLU hidden layers, then 10 logits. Its
    second hidden layer (`features`) is the representation the Frechet distance compares."""

    def __init__(self, image_size, hidden=128, num_features=64):
        super().__init__()
        self.body = Sequential(Flatten(), Linear(image_size * image_size, hidden), ReLU(),
                               Linear(hidden, num_features), ReLU())
        self.head = Linear(num_features, 10)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def train_digit_classifier(images, labels, epochs=15, batch_size=64, lr=1e-3, seed=0):
    """A DigitClassifier trained on images (N, 1, S, S) and labels (N,), NumPy arrays.

    Its init and batch order come from `seed` alone, and the default generator's state is
    restored after the init, so it can be trained at any moment of a run (say, at its
    first evaluation, under no_grad) without changing that run's randomness.
    """
    saved = backend.get_rng_state()
    backend.manual_seed(seed)
    try:
        model = DigitClassifier(images.shape[-1])
    finally:
        backend.set_rng_state(saved)
    _fit(model, images, labels, epochs, batch_size, lr, backend.Generator(seed=seed))
    return model.eval()


@enable_grad()
def _fit(model, images, labels, epochs, batch_size, lr, generator):
    """Adam on the cross-entropy, `epochs` passes in an order drawn from `generator`."""
    optimizer = Adam(model.parameters(), lr=lr)
    n = len(labels)
    for _ in range(epochs):
        order = randperm(n, generator=generator).numpy()
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(model(from_numpy(images[idx])), from_numpy(labels[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


@no_grad()
def classifier_features(model, images, batch_size=512):
    """The model's features of images (N, 1, S, S) as a float64 NumPy array (N, D)."""
    return np.concatenate([model.features(from_numpy(images[i:i + batch_size])).numpy()
                           for i in range(0, len(images), batch_size)]).astype(np.float64)


@no_grad()
def classifier_accuracy(model, images, labels, batch_size=512):
    """The fraction of images the model labels correctly."""
    predictions = np.concatenate([model(from_numpy(images[i:i + batch_size])).numpy().argmax(1)
                                  for i in range(0, len(images), batch_size)])
    return float((predictions == labels).mean())
