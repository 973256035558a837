"""Samplers: the order, and the choice, of the samples a DataLoader visits
(torch.utils.data's Sampler, SequentialSampler, RandomSampler, WeightedRandomSampler).

A sampler is an iterable of dataset indices with a length; the DataLoader turns them into
batches. A random sampler draws from its `generator` attribute (the default CPU generator
when None), PyTorch's convention, which is also how the DataLoader replays an epoch's order
when it resumes mid-epoch.

WeightedRandomSampler is how to train on data that under-represents a group: give each
sample a weight inversely proportional to its group's size and every group is drawn
equally often (see `group_balanced_weights`).
"""

import numpy as np

import minifm


class Sampler:
    """Base class: subclasses define ``__iter__`` (indices) and ``__len__``."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation of the indices each iteration (with replacement=True,
    num_samples indices drawn uniformly, repeats allowed)."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source, self.replacement, self.generator = data_source, replacement, generator
        self._num_samples = num_samples
        _check_num_samples(self.num_samples)

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        if self.replacement:
            return iter(minifm.randint(0, n, (self.num_samples,), generator=self.generator).tolist())
        order = []  # without replacement, more than n samples take several permutations
        while len(order) < self.num_samples:
            order += minifm.randperm(n, generator=self.generator).tolist()
        return iter(order[:self.num_samples])

    def __len__(self):
        return self.num_samples


class WeightedRandomSampler(Sampler):
    """num_samples indices drawn with probabilities proportional to `weights` (one
    non-negative weight per sample), with or without replacement."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        _check_num_samples(num_samples)
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement!r}")
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have "
                             f"shape {weights.shape}")
        self.weights = minifm.tensor(weights)
        self.num_samples, self.replacement, self.generator = num_samples, replacement, generator

    def __iter__(self):
        drawn = minifm.multinomial(self.weights, self.num_samples, self.replacement,
                            generator=self.generator)
        return iter(drawn.tolist())

    def __len__(self):
        return self.num_samples


def _check_num_samples(num_samples):
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
        raise ValueError(f"num_samples should be a positive integer value, but got "
                         f"num_samples={num_samples!r}")


def group_balanced_weights(groups):
    """One weight per sample, 1 / (the size of its group): with these weights every group
    carries the same total weight, so a WeightedRandomSampler draws each group equally
    often, and a weighted loss counts each group equally."""
    _, inverse, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]
