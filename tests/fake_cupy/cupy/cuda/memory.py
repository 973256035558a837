"""cupy.cuda.memory in the stand-in: a memory pool that counts what device arrays hold.

Every device array's memory (a NumPy array underneath) is charged to the pool when it is
made and given back when its NumPy owner is garbage-collected, through the allocator of
`set_allocator` (the pool's malloc by default), as CuPy's arrays are. As in CuPy's pool,
sizes are rounded up to 512 bytes and a freed block stays cached: used_bytes() counts live
arrays, total_bytes() adds the cached blocks, free_all_blocks() drops the cache. A cached
block is reused by the next allocation of at most its size (CuPy's pool matches block
sizes more finely). No device memory exists: the bytes are host bytes.
"""
from __future__ import annotations

import weakref

ROUND = 512


class MemoryPointer:
    """A block of the pool; giving it back (free) returns its bytes to the pool's cache."""

    def __init__(self, pool, size):
        self.pool, self.size, self.ptr = pool, size, 0

    def free(self):
        if self.size:
            self.pool._release(self.size)
            self.size = 0


class MemoryPool:
    def __init__(self):
        self._used = 0
        self._cached = []      # sizes of freed blocks kept for reuse

    def malloc(self, size):
        size = -(-size // ROUND) * ROUND
        fits = [s for s in self._cached if s >= size]
        if fits:
            self._cached.remove(min(fits))
            size = min(fits)
        self._used += size
        return MemoryPointer(self, size)

    def _release(self, size):
        self._used -= size
        self._cached.append(size)

    def used_bytes(self):
        return self._used

    def free_bytes(self):
        return sum(self._cached)

    def total_bytes(self):
        return self._used + sum(self._cached)

    def free_all_blocks(self, stream=None):
        self._cached.clear()

    def n_free_blocks(self):
        return len(self._cached)


default_pool = MemoryPool()
_allocator = default_pool.malloc
_live: dict = {}     # id(NumPy owner array) -> its MemoryPointer, while the owner lives


def set_allocator(allocator=None):
    """Route device allocations through `allocator(nbytes) -> MemoryPointer` (None: the
    default pool's malloc)."""
    global _allocator
    _allocator = default_pool.malloc if allocator is None else allocator


def get_allocator():
    return _allocator


def charge(owner):
    """Allocate pool memory for a new device array's NumPy owner, freed with the owner."""
    pointer = _allocator(owner.nbytes)
    _live[id(owner)] = pointer
    weakref.finalize(owner, _give_back, id(owner), pointer)


def _give_back(key, pointer):
    _live.pop(key, None)
    pointer.free()
