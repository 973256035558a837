"""The convolution's chunk loops as compiled code: a share of the chunks of samples in one
GIL-free Numba call, im2col, matrix products (NumPy's OpenBLAS, called from Numba through
blas_cpu.gemm) and col2im alike.

conv_cpu cuts a batch into chunks whose column matrices stay in the cache, and gives each
thread a contiguous share of them (see there). A share run from Python returns to the
interpreter between each copy and product, ~20 us a chunk, and on two threads each
waits for the GIL the other holds; here the whole share is one call. Measured on the CIFAR
ResNet's 32-channel 16x16 3x3 layer, batch 64, in conv_cpu's docstring.

Each pass has a twin (columns_pass_shared, adjoint_pass_shared) that runs every thread's
share in one Numba parallel loop, each share with its own buffers and weight-gradient term.

Two passes cover the four maps of a convolution and its transpose, the arrays seen as
(N, channels, positions), the weight as (G, O/G, K) with K = C/G*kh*kw:

    columns_pass   per chunk, the columns of `source` (im2col), then
                   out = weight @ columns            (the forward; the transposed
                                                      convolution's input gradient)
                   term += block(other) @ columns^T  (the weight gradient of the
                                                      transposed convolution)
    adjoint_pass   per chunk, block = gy in the products' layout, then
                   columns = weight^T @ block, gx = col2im(columns)    (input gradient)
                   term += block @ columns(x)^T                         (weight gradient)

A chunk's block, (O, S*P), is its rows of an (N, O, P) array side by side: the array itself
for one sample, else a copy into a scratch buffer. Weight-gradient terms are (G, O/G, K), or
(G, K, O/G) where `transposed` (conv_cpu._transposed_terms: the faster orientation there),
summed over the share's chunks by the product's beta.
"""
from __future__ import annotations

from numba import njit, prange, uint64

from .blas_cpu import NO_TRANS, TRANS, gemm, pointer
from .im2col_cpu import add_columns, to_columns


@njit(cache=True, nogil=True)
def _block(a, start, stop, scratch):
    """The address of chunk start .. stop of a (N, O, P) laid out as (O, S*P): a[start]
    itself for one sample, else copied into scratch (flat)."""
    if stop - start == 1:
        return pointer(a, start * a.shape[1] * a.shape[2])
    o, p = a.shape[1], a.shape[2]
    width = (stop - start) * p
    for s in range(stop - start):
        for c in range(o):
            scratch[c * width + s * p:c * width + (s + 1) * p] = a[start + s, c]
    return pointer(scratch, 0)


@njit(cache=True, nogil=True)
def _unblock(scratch, out, start, stop):
    """out[start:stop] (S, O, P) = scratch (flat, laid out (O, S*P))."""
    o, p = out.shape[1], out.shape[2]
    width = (stop - start) * p
    for s in range(stop - start):
        for c in range(o):
            out[start + s, c] = scratch[c * width + s * p:c * width + (s + 1) * p]


@njit(cache=True, nogil=True)
def _add_weight_term(address, block, cols, width, term, transposed, first):
    """term (+)= block @ cols^T for each group (block: the address of (O, width), cols: flat
    (G, K, width)); term is (G, O/G, K), or its transpose (G, K, O/G) where `transposed`;
    overwritten where `first`, else added to."""
    groups = term.shape[0]
    k, og = (term.shape[1], term.shape[2]) if transposed else (term.shape[2], term.shape[1])
    one = term.dtype.type(1)
    beta = term.dtype.type(0) if first else one
    item = uint64(term.itemsize)
    for g in range(groups):
        b = block + uint64(g * og * width) * item
        c = pointer(cols, g * k * width)
        t = pointer(term, g * og * k)
        if transposed:
            gemm(address, NO_TRANS, TRANS, k, og, width, one, c, width, b, width, beta, t, og)
        else:
            gemm(address, NO_TRANS, TRANS, og, k, width, one, b, width, c, width, beta, t, k)


@njit(cache=True, nogil=True)
def columns_pass(address, starts, geometry, table, source, weight, out, other, term,
                 transposed, cols, scratch):
    """Chunks starts[i] .. starts[i+1]: build the columns of source (N, C, H*W), then
    out (N, O, P) = weight @ columns where out has samples, and term (+)= the weight
    gradient's terms, block(other) @ columns^T, where term has elements (see the module's
    docstring); cols and scratch are flat buffers for the columns and the block of the
    share's widest chunk."""
    groups, og, k = weight.shape
    one, zero = cols.dtype.type(1), cols.dtype.type(0)
    for i in range(len(starts) - 1):
        start, stop = starts[i], starts[i + 1]
        width = (stop - start) * geometry[11] * geometry[12]  # samples * Ho * Wo
        to_columns(source[start:stop].ravel(), stop - start, geometry, table, cols)
        if out.size:
            into = pointer(out, start * out.shape[1] * out.shape[2]) if stop - start == 1 else \
                pointer(scratch, 0)
            for g in range(groups):
                gemm(address, NO_TRANS, NO_TRANS, og, width, k, one, pointer(weight, g * og * k),
                     k, pointer(cols, g * k * width), width, zero,
                     into + uint64(g * og * width * cols.itemsize), width)
            if stop - start > 1:
                _unblock(scratch, out, start, stop)
        if term.size:
            _add_weight_term(address, _block(other, start, stop, scratch), cols, width, term,
                             transposed, i == 0)


@njit(cache=True, nogil=True)
def adjoint_pass(address, starts, geometry, table, gy, weight, gx, x, term, transposed,
                 cols, scratch):
    """Chunks starts[i] .. starts[i+1] of a convolution's backward: gx (N, C, H*W) from
    weight^T @ block(gy) by col2im where gx has samples, and term (+)= block(gy) @
    columns(x)^T where term has elements (see the module's docstring)."""
    groups, og, k = weight.shape
    one, zero = cols.dtype.type(1), cols.dtype.type(0)
    for i in range(len(starts) - 1):
        start, stop = starts[i], starts[i + 1]
        width = (stop - start) * geometry[11] * geometry[12]
        block = _block(gy, start, stop, scratch)
        if gx.size:
            for g in range(groups):
                gemm(address, TRANS, NO_TRANS, k, width, og, one, pointer(weight, g * og * k), k,
                     block + uint64(g * og * width * cols.itemsize), width, zero,
                     pointer(cols, g * k * width), width)
            add_columns(cols, stop - start, geometry, table, gx[start:stop].ravel())
        if term.size:
            to_columns(x[start:stop].ravel(), stop - start, geometry, table, cols)
            _add_weight_term(address, block, cols, width, term, transposed, i == 0)


@njit(parallel=True, cache=True)
def columns_pass_shared(address, bounds, firsts, geometry, table, source, weight, out, other,
                        terms, transposed, cols, scratch):
    """columns_pass on every thread's share at once: share s takes the chunks whose
    boundaries are bounds[firsts[s]] .. bounds[firsts[s + 1]], and its own row of terms,
    cols and scratch (conv_cpu: one share per thread)."""
    for share in prange(len(firsts) - 1):
        columns_pass(address, bounds[firsts[share]:firsts[share + 1] + 1], geometry, table,
                     source, weight, out, other, terms[share], transposed, cols[share],
                     scratch[share])


@njit(parallel=True, cache=True)
def adjoint_pass_shared(address, bounds, firsts, geometry, table, gy, weight, gx, x, terms,
                        transposed, cols, scratch):
    """adjoint_pass on every thread's share at once (as columns_pass_shared)."""
    for share in prange(len(firsts) - 1):
        adjoint_pass(address, bounds[firsts[share]:firsts[share + 1] + 1], geometry, table,
                     gy, weight, gx, x, terms[share], transposed, cols[share], scratch[share])
