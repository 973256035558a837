"""Map-style datasets and random splits (torch.utils.data's Dataset, TensorDataset,
Subset and random_split).

A dataset is anything with ``dataset[i]`` and ``len(dataset)``; the DataLoader turns
its samples into batches.
"""

import math
import warnings

import minifm


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Sample i is ``tuple(t[i] for t in tensors)``: tensors indexed along their first dimension."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        sizes = [tuple(t.shape) for t in tensors]
        if any(len(s) == 0 or s[0] != sizes[0][0] for s in sizes):
            raise ValueError(
                f"TensorDataset: every tensor needs the same first dimension, got shapes {sizes}"
            )
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


def _split_lengths(n, lengths):
    """Integer lengths summing to ``n``: fractions become floor(n * fraction), and the
    remainder is handed out one by one, round-robin from the first split (PyTorch's rule)."""
    if math.isclose(sum(lengths), 1) and sum(lengths) <= n:
        if any(not 0 <= frac <= 1 for frac in lengths):
            raise ValueError(f"random_split: fractions must lie in [0, 1], got {lengths}")
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(f"random_split: split {i} is empty", stacklevel=3)
        return counts
    if sum(lengths) != n:
        raise ValueError(
            f"random_split: lengths {list(lengths)} sum to {sum(lengths)}, but the dataset "
            f"has {n} samples (give integer lengths summing to {n}, or fractions summing to 1)"
        )
    return list(lengths)


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping random Subsets of the given lengths.

    ``lengths`` are sample counts summing to ``len(dataset)`` or fractions summing to 1.
    The permutation comes from ``generator`` (the default CPU generator when None), so the
    same seed gives the same split.
    """
    counts = _split_lengths(len(dataset), lengths)
    indices = minifm.randperm(sum(counts), generator=generator).tolist()
    subsets, start = [], 0
    for count in counts:
        subsets.append(Subset(dataset, indices[start:start + count]))
        start += count
    return subsets
