"""torch.utils.data's names, from minifm.data: `from minifm.utils.data import DataLoader`."""
from ..data import (  # noqa: F401
    DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler, SequentialSampler, Subset,
    TensorDataset, WeightedRandomSampler, default_collate, random_split,
)

__all__ = ["DataLoader", "Dataset", "DistributedSampler", "RandomSampler", "Sampler",
           "SequentialSampler", "Subset", "TensorDataset", "WeightedRandomSampler",
           "default_collate", "random_split"]
