"""Batching: the DataLoader with PyTorch's default_collate, and nanoGPT's random blocks.

``DataLoader`` walks a map-style dataset in the order its sampler gives (in order, a
seeded random order, or weighted draws: sampler.py), groups ``batch_size`` samples and
stacks them into Tensors. Unlike torch.utils.data it has no worker processes; what it
adds is ``state_dict()`` / ``load_state_dict()``, the loader's position, so a trainer can
stop mid-epoch and resume with exactly the batches it would have seen.
"""

import collections.abc
import copy
import math

import numpy as np

import minifm
from minifm import backend

from .sampler import RandomSampler, SequentialSampler


def default_collate(batch):
    """Merge a list of samples into a batch, as torch.utils.data.default_collate does.

    Tensors and NumPy arrays are stacked along a new first dimension; Python floats
    become a float64 Tensor, ints an int64 Tensor, bools a bool Tensor and NumPy scalars a
    Tensor of their dtype; strings stay a list. Containers are collated field by field: a
    dict gives a dict, a namedtuple a namedtuple, any other sequence (tuples included) a
    list. Unlike PyTorch, a Mapping subclass is returned as a plain dict.
    """
    elem = batch[0]
    if isinstance(elem, minifm.Tensor):
        return minifm.stack(batch, 0)
    if isinstance(elem, (np.ndarray, np.generic)) and elem.dtype.kind not in "SUO":
        arrays = [np.asarray(b) for b in batch]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise RuntimeError(f"default_collate: cannot stack arrays of shapes {sorted(shapes)}")
        return minifm.from_numpy(np.stack(arrays))
    if isinstance(elem, float):
        return minifm.tensor(batch, dtype=minifm.float64)
    if isinstance(elem, bool):
        return minifm.tensor(batch, dtype=minifm.bool)
    if isinstance(elem, int):
        return minifm.tensor(batch, dtype=minifm.int64)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError(
                "default_collate: each element in list of batch should be of equal size"
            )
        return [default_collate(list(field)) for field in zip(*batch)]
    raise TypeError(
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem)}"
    )


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` collated samples.

    Each ``iter(loader)`` is one epoch: the indices of one pass over ``sampler``. With
    ``shuffle=True`` the sampler is a RandomSampler drawing a new permutation every epoch
    with ``minifm.randperm`` from ``generator`` (the default CPU generator when None);
    otherwise, without a sampler, samples come in order. ``drop_last`` drops a final short
    batch.

    Resuming: ``state_dict()`` says where the next batch comes from: ``epoch`` (how many
    epochs began before this one), ``batch_index`` (batches of it already yielded) and
    ``generator_state`` (the state of the sampler's generator just before this epoch's
    order was drawn; None for a sampler without randomness or not drawn yet). After
    ``load_state_dict(state)`` the next ``iter(loader)`` yields the rest of that epoch, in
    the same order, and later iterations start new epochs. The order is redrawn by a copy
    of the sampler with a private generator in the saved state, so the sampler's own
    generator is left alone: restore it (``minifm.set_rng_state`` for the default one)
    from the same checkpoint, and later epochs match too. Use one iterator at a time;
    starting a new one before the last is exhausted begins a new epoch.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, drop_last=False,
                 collate_fn=None, generator=None):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if sampler is None:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.sampler = sampler
        self.drop_last = drop_last
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.generator = generator
        self._epoch = 0            # the epoch the next batch belongs to
        self._batch_index = 0      # batches of that epoch already yielded
        self._order_state = None   # generator state its permutation was drawn from
        self._continue = True      # whether the next iter() continues that epoch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        if not self._continue:
            self._epoch += 1
            self._batch_index = 0
            self._order_state = None
        self._continue = False
        return self._batches()

    def _batches(self):
        order = self._order()
        for b in range(self._batch_index, len(self)):
            indices = order[b * self.batch_size:(b + 1) * self.batch_size]
            batch = self.collate_fn([self.dataset[i] for i in indices])
            self._batch_index = b + 1
            yield batch
        self._epoch += 1
        self._batch_index = 0
        self._order_state = None
        self._continue = True

    def _order(self):
        """The sample indices of the current epoch, in the order they are visited."""
        if not hasattr(self.sampler, "generator"):  # no randomness: nothing to record
            return list(self.sampler)
        if self._order_state is None:
            generator = self.sampler.generator or backend.default_generator()
            self._order_state = generator.get_state()
            return list(self.sampler)
        replay = copy.copy(self.sampler)
        replay.generator = backend.Generator().set_state(self._order_state)
        return list(replay)

    def state_dict(self):
        """The loader's position as a JSON-able dict (see the class docstring)."""
        return {
            "epoch": self._epoch,
            "batch_index": self._batch_index,
            "generator_state": self._order_state,
        }

    def load_state_dict(self, state):
        """Make the next ``iter(self)`` continue from a position saved by ``state_dict``."""
        batch_index, order_state = state["batch_index"], state["generator_state"]
        if not 0 <= batch_index <= len(self):
            raise ValueError(
                f"DataLoader.load_state_dict: batch_index {batch_index} is outside this "
                f"loader's [0, {len(self)}] batches"
            )
        random = hasattr(self.sampler, "generator")
        if random and batch_index > 0 and order_state is None:
            raise ValueError(
                "DataLoader.load_state_dict: a shuffling loader needs the generator_state "
                "of a partly consumed epoch"
            )
        self._epoch = state["epoch"]
        self._batch_index = batch_index
        self._order_state = order_state if random else None
        self._continue = True


def random_blocks(tokens, block_size, batch_size, generator=None, device=None):
    """A batch of ``batch_size`` random windows of a token stream, as nanoGPT's get_batch.

    ``tokens`` is a 1-D NumPy array of token ids. Returns (x, y), int64 Tensors of shape
    (batch_size, block_size) on ``device``: x is ``tokens[i:i+block_size]`` for offsets i
    drawn uniformly from [0, len(tokens) - block_size) with ``generator``, and y is x
    shifted one token on, the next-token targets.
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or len(tokens) <= block_size:
        raise ValueError(
            f"random_blocks: need a 1-D token array longer than block_size={block_size}, "
            f"got shape {tokens.shape}"
        )
    offsets = minifm.randint(0, len(tokens) - block_size, (batch_size,), generator=generator)
    window = offsets.numpy()[:, None] + np.arange(block_size)
    x = tokens[window].astype(np.int64)
    y = tokens[window + 1].astype(np.int64)
    return minifm.tensor(x, device=device), minifm.tensor(y, device=device)
