"""Matrix functions from LAPACK (through NumPy or CuPy): inv, solve, det, slogdet, the
decompositions svd, svdvals, eigh, eigvalsh, cholesky, qr, pinv, and the matrix norms, whose
spectral and nuclear forms need singular values.

A singular matrix raises LinAlgError, a RuntimeError (torch.linalg.LinAlgError). The
derivatives of inv, solve, det and slogdet are written with matrix products and
`_inverse`/`_solve`, which call the recorded op itself under create_graph, so they can be
differentiated again."""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from .. import backend
from ..autograd import Function
from ..dims import normalize_dims
from ..tensor import Tensor
from .elementwise import mul, to_dtype, where
from .linalg import _check_float_input, matmul, vector_norm
from .reduce import amax, amin
from .reduce import sum as _sum
from .shape import cat, transpose, unsqueeze

# ----------------------------------------------------------------------------- inv, solve, det
class LinAlgError(RuntimeError):
    """A linear-algebra routine failed on its input (a singular matrix): torch.linalg's
    LinAlgError, a RuntimeError."""


def _square(op, A):
    _check_float_input(op, A)
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions, got "
                           f"shape {tuple(A.shape)}")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")


def _mT(a):
    return a.swapaxes(-1, -2)


def _lapack(op, routine, *arrays):
    """A NumPy/CuPy linalg routine; a singular matrix raises LinAlgError naming the op."""
    try:
        return routine(*arrays)
    except np.linalg.LinAlgError as err:
        raise LinAlgError(f"{op}: the input matrix of shape {tuple(arrays[0].shape)} is "
                          f"singular ({err}), the operation could not be completed") from None


def _tensor_of(value, like):
    return value.tensor if hasattr(value, "tensor") else Tensor._make(value, like.tensor.device)


def _inverse(xp, a):
    """inv(a): LAPACK's on raw arrays; under create_graph (a boxed Tensor) the recorded op,
    so a derivative that uses it can be differentiated again."""
    if not hasattr(a, "tensor"):
        return _lapack("linalg.inv", xp.linalg.inv, a)
    return type(a)(LinalgInvEx.apply(a.tensor))


def _solve(xp, a, b):
    """The X of a X = b for matrices b: raw, or recorded under create_graph (see _inverse)."""
    box = a if hasattr(a, "tensor") else b if hasattr(b, "tensor") else None
    if box is None:
        return _lapack("linalg.solve", xp.linalg.solve, a, b)
    return type(box)(LinalgSolveEx.apply(_tensor_of(a, box), _tensor_of(b, box)))


class LinalgInvEx(Function):
    """A^-1; d(A^-1) = -A^-1 dA A^-1, so the gradient is -A^-T g A^-T."""

    @staticmethod
    def forward(ctx, A):
        out = _lapack("linalg.inv", ctx.xp.linalg.inv, A)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (inv_,) = ctx.saved
        return -(_mT(inv_) @ g @ _mT(inv_))


class LinalgSolveEx(Function):
    """X with A X = B (B a batch of matrices); gB = A^-T g, gA = -gB X^T."""

    @staticmethod
    def forward(ctx, A, B):
        out = _lapack("linalg.solve", ctx.xp.linalg.solve, A, B)
        ctx.save_for_backward(A, out)
        return out

    @staticmethod
    def backward(ctx, g):
        A, X = ctx.saved
        gB = _solve(ctx.xp, _mT(A), g)
        return (-(gB @ _mT(X)) if ctx.needs_input_grad[0] else None,
                gB if ctx.needs_input_grad[1] else None)


def _cofactors(xp, A):
    """The cofactor matrix of A (the derivative of det A, adj(A)^T), also where A is
    singular, from the SVD as PyTorch computes it there: det(U) det(Vh) U diag(c) Vh, where
    c_i is the product of the singular values other than S_i."""
    U, S, Vh = xp.linalg.svd(A)
    others = xp.where(xp.eye(S.shape[-1], dtype=bool), 1, S[..., None, :]).prod(axis=-1)
    alpha = xp.linalg.det(U) * xp.linalg.det(Vh)
    return alpha[..., None, None] * ((U * others[..., None, :]) @ Vh)


class LinalgDet(Function):
    """det A; d(det A) = det A * tr(A^-1 dA), so the gradient is g det(A) A^-T. A batch with
    a singular matrix gets the cofactor matrix from the SVD instead, as in PyTorch (at rank
    n-1 it is nonzero, below that zero), also under create_graph, through the recorded svd."""

    @staticmethod
    def forward(ctx, A):
        out = ctx.xp.asarray(ctx.xp.linalg.det(A), dtype=A.dtype)
        ctx.save_for_backward(A, out)
        return out

    @staticmethod
    def backward(ctx, g):
        A, det_ = ctx.saved
        if hasattr(A, "tensor"):   # create_graph: the same, in recorded ops
            if not det_.tensor._data.all():
                return g[..., None, None] * type(A)(_recorded_cofactors(A.tensor))
        elif not det_.all():
            return g[..., None, None] * _cofactors(ctx.xp, A).astype(A.dtype, copy=False)
        return (g * det_)[..., None, None] * _mT(_inverse(ctx.xp, A))


def _recorded_cofactors(A):
    """_cofactors of a Tensor, through svd (recorded), so it can be differentiated again."""
    U, S, Vh = svd(A, full_matrices=False)
    xp = backend.array_module(A.device)
    eye = Tensor._make(xp.eye(S.shape[-1], dtype=bool), A.device)
    others = where(eye, 1.0, unsqueeze(S, -2)).prod(-1)
    alpha = xp.linalg.det(U._data) * xp.linalg.det(Vh._data)   # +-1: a constant
    return mul(matmul(U * unsqueeze(others, -2), Vh),
               Tensor._make(alpha[..., None, None].astype(A.dtype), A.device))


class LinalgSlogdet(Function):
    """log |det A|, whose gradient is g A^-T (the sign has none)."""

    @staticmethod
    def forward(ctx, A):
        ctx.save_for_backward(A)
        return ctx.xp.asarray(ctx.xp.linalg.slogdet(A)[1], dtype=A.dtype)

    @staticmethod
    def backward(ctx, g):
        (A,) = ctx.saved
        return g[..., None, None] * _mT(_inverse(ctx.xp, A))


def inv(A):
    """torch.linalg.inv: the inverse of each square matrix; singular -> LinAlgError."""
    _square("linalg.inv", A)
    return LinalgInvEx.apply(A)


def solve(A, B, *, left=True):
    """torch.linalg.solve: X with A X = B (left=True) or X A = B (left=False). B is a batch
    of vectors when it is 1-D, or has A's batch shape and one dimension less; the batch
    dimensions broadcast."""
    _square("linalg.solve", A)
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.solve: expected Tensor B, got {type(B).__name__}")
    if A.dtype != B.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found "
                           f"A of type {backend.dtype_name(A.dtype)} and B of type "
                           f"{backend.dtype_name(B.dtype)} instead")
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    if vector:
        B = unsqueeze(B, -1)
    n = A.shape[-1]
    if B.ndim < 2 or B.shape[-2 if left else -1] != n:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({n}x{n} and "
                           f"{'x'.join(map(str, B.shape[-2:]))})")
    try:
        np.broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[:-2]))
    except ValueError:
        raise RuntimeError(f"linalg.solve: the batch dimensions of A {tuple(A.shape)} and B "
                           f"{tuple(B.shape)} are not broadcastable") from None
    if left:
        out = LinalgSolveEx.apply(A, B)
        return out.squeeze(-1) if vector else out
    return transpose(LinalgSolveEx.apply(transpose(A, -1, -2), transpose(B, -1, -2)), -1, -2)


def det(A):
    """torch.linalg.det: the determinant of each square matrix."""
    _square("linalg.det", A)
    return LinalgDet.apply(A)


class LinalgSlogdetSign(Function):
    """The sign of det A: a step function of A, so its gradient is zero. It is recorded, as
    PyTorch records its sign output, so that it requires grad when A does."""

    @staticmethod
    def forward(ctx, A):
        ctx.shape = A.shape
        return ctx.xp.asarray(ctx.xp.linalg.slogdet(A)[0], dtype=A.dtype)

    @staticmethod
    def backward(ctx, g):
        return ctx.xp.zeros(ctx.shape, dtype=g.dtype)


SignLogAbsDet = namedtuple("SignLogAbsDet", ["sign", "logabsdet"])


def slogdet(A):
    """torch.linalg.slogdet: (sign, log|det|) of each square matrix; a singular one gives
    (0, -inf). Only logabsdet has a gradient."""
    _square("linalg.slogdet", A)
    return SignLogAbsDet(LinalgSlogdetSign.apply(A), LinalgSlogdet.apply(A))


# ----------------------------------------------------------------------------- decompositions
# svd, eigh and qr have several outputs; a Function has one. Each is one Function whose
# output packs the factors along the last dimension, unpacked by slicing and reshaping
# (differentiable ops). Its backward unpacks the gradient the same way (an output left unused
# reaches it as zeros) and is written with matrix products and elementwise ops on ctx.xp,
# so under create_graph it is recorded and can be differentiated again.
def _pack(xp, batch, *factors):
    """The factors, each flattened after the batch dimensions, side by side."""
    return xp.concatenate([f.reshape(batch + (math.prod(f.shape[len(batch):]),))
                           for f in factors], axis=-1)


def _packed_output(ctx, batch, *factors):
    """A factorization's output: its factors packed (see _pack), their trailing shapes kept
    on ctx for _unpack, and the packed array saved for backward."""
    ctx.shapes = tuple(f.shape[len(batch):] for f in factors)
    out = _pack(ctx.xp, batch, *factors)
    ctx.save_for_backward(out)
    return out


def _unpack(packed, shapes):
    """The factors of the given (trailing) shapes packed in the last dimension of `packed`
    (an array, a boxed array or a Tensor)."""
    batch, out, start = tuple(packed.shape[:-1]), [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(packed[..., start:start + size].reshape(batch + tuple(shape)))
        start += size
    return out


def _unused(g):
    """Whether a factor's gradient is all zeros on the first-order path (the factor was not
    used, as PyTorch's undefined gradient). Under create_graph (a boxed array) it is kept."""
    return not hasattr(g, "tensor") and not g.any()


def _diag_embed(xp, v):
    return v[..., :, None] * xp.eye(v.shape[-1], dtype=v.dtype)


def _svd_backward(xp, U, S, Vh, gU, gS, gVh):
    """PyTorch's svd_backward for real A = U diag(S) Vh (reduced, distinct nonzero S):
    gA = U [(skew(U^T gU) / E) S + S (skew(V^T gV) / E) + diag(gS)] Vh
         + (I - U U^T) gU S^-1 Vh + U S^-1 gV^T (I - V V^T),   E_ij = S_j^2 - S_i^2."""
    m, k, n = U.shape[-2], S.shape[-1], Vh.shape[-1]
    eye = xp.eye(k, dtype=S.dtype)
    S2 = S * S
    E = S2[..., None, :] - S2[..., :, None] + eye
    J, K = _mT(U) @ gU, Vh @ _mT(gVh)
    inner = (_diag_embed(xp, gS) + (J - _mT(J)) / E * S[..., None, :]
             + S[..., :, None] * ((K - _mT(K)) / E))
    gA = U @ inner @ Vh
    if m > k:
        gA = gA + ((gU - U @ J) / S[..., None, :]) @ Vh
    if n > k:
        gA = gA + U @ ((gVh - _mT(K) @ Vh) / S[..., :, None])
    return gA


class LinalgSvd(Function):
    """(U, S, Vh) packed (see _pack). With full_matrices=True the gradient reaches only the
    first min(m, n) columns of U and rows of Vh, as in PyTorch (the others are arbitrary)."""

    @staticmethod
    def forward(ctx, A, *, full_matrices):
        U, S, Vh = ctx.xp.linalg.svd(A, full_matrices=full_matrices)
        return _packed_output(ctx, A.shape[:-2], U, S, Vh)

    @staticmethod
    def backward(ctx, g):
        (packed,) = ctx.saved
        U, S, Vh = _unpack(packed, ctx.shapes)
        gU, gS, gVh = _unpack(g, ctx.shapes)
        k = S.shape[-1]
        if _unused(gU) and _unused(gVh):   # S alone: no division by S's differences
            return (U[..., :k] * gS[..., None, :]) @ Vh[..., :k, :]
        return _svd_backward(ctx.xp, U[..., :k], S, Vh[..., :k, :], gU[..., :k], gS,
                             gVh[..., :k, :])


class LinalgSvdvals(Function):
    """The singular values; gradient U diag(g) Vh. U and Vh are saved, so under create_graph
    the engine differentiates the composite (svd's S) instead."""

    node_name = "LinalgSvdBackward0"   # PyTorch computes svdvals through its svd node

    @staticmethod
    def forward(ctx, A):
        U, S, Vh = ctx.xp.linalg.svd(A, full_matrices=False)
        ctx.save_for_backward(A, U, Vh)   # A: for the composite
        return S

    @staticmethod
    def backward(ctx, g):
        _, U, Vh = ctx.saved
        return (U * g[..., None, :]) @ Vh

    @staticmethod
    def composite(A):
        return svd(A, full_matrices=False).S


def _matrix_input(op, A):
    _check_float_input(op, A)
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions, got "
                           f"shape {tuple(A.shape)}")


SVD = namedtuple("SVD", ["U", "S", "Vh"])


def svd(A, full_matrices=True, *, driver=None):
    """torch.linalg.svd: A = U diag(S) Vh, S descending. The singular vectors are unique up
    to sign, so only sign-invariant functions of them have a well-defined gradient; the
    gradient needs distinct singular values (nonzero, when m != n and U or Vh is used).
    driver (a cuSOLVER choice in PyTorch) is accepted and ignored."""
    _matrix_input("linalg.svd", A)
    packed = LinalgSvd.apply(A, full_matrices=bool(full_matrices))
    m, n = A.shape[-2:]
    k = min(m, n)
    shapes = ((m, m if full_matrices else k), (k,), (n if full_matrices else k, n))
    return SVD(*_unpack(packed, shapes))


def svdvals(A, *, driver=None):
    """torch.linalg.svdvals: the singular values of A, descending."""
    _matrix_input("linalg.svdvals", A)
    return LinalgSvdvals.apply(A)


def _svd_matrix_norm(A, ord, rows, cols, keepdim):
    """matrix_norm's ord 2 (largest singular value), -2 (smallest) and 'nuc' (their sum)."""
    rest = [d for d in range(A.ndim) if d not in (rows, cols)]
    s = svdvals(A.permute(*rest, rows, cols))
    if ord == 2 and s.shape[-1] > 0:
        out = amax(s, -1)
    else:  # 'nuc', -2 (amin refuses no values, as PyTorch), and 2 of no values: 0
        out = amin(s, -1) if ord == -2 else _sum(s, -1)
    if keepdim:
        for d in sorted((rows, cols)):
            out = unsqueeze(out, d)
    return out


def _check_uplo(op, UPLO):
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"{op}: Expected UPLO argument to be 'L' or 'U', but got {UPLO}")


def _eigh_backward(xp, L, Q, gL, gQ):
    """PyTorch's backward of a real symmetric eigendecomposition (distinct eigenvalues):
    gA = Q (diag(gL) + skew(Q^T gQ) / 2 / E) Q^T,  E_ij = L_j - L_i."""
    E = L[..., None, :] - L[..., :, None] + xp.eye(L.shape[-1], dtype=L.dtype)
    J = _mT(Q) @ gQ
    return Q @ (_diag_embed(xp, gL) + (J - _mT(J)) * 0.5 / E) @ _mT(Q)


class LinalgEigh(Function):
    """(L, Q) packed (see _pack). The gradient is symmetric, as PyTorch's: it does not
    single out the triangle that UPLO reads."""

    @staticmethod
    def forward(ctx, A, *, UPLO):
        L, Q = ctx.xp.linalg.eigh(A, UPLO=UPLO)
        return _packed_output(ctx, A.shape[:-2], L, Q)

    @staticmethod
    def backward(ctx, g):
        (packed,) = ctx.saved
        L, Q = _unpack(packed, ctx.shapes)
        gL, gQ = _unpack(g, ctx.shapes)
        if _unused(gQ):   # the eigenvalues alone: no division by their differences
            return (Q * gL[..., None, :]) @ _mT(Q)
        return _eigh_backward(ctx.xp, L, Q, gL, gQ)


class LinalgEigvalsh(Function):
    """The eigenvalues of a symmetric matrix; gradient Q diag(g) Q^T. Q is saved, so under
    create_graph the engine differentiates the composite (eigh's eigenvalues) instead."""

    node_name = "LinalgEighBackward0"   # as PyTorch's eigvalsh

    @staticmethod
    def forward(ctx, A, *, UPLO):
        L, Q = ctx.xp.linalg.eigh(A, UPLO=UPLO)
        ctx.save_for_backward(A, Q)   # A: for the composite
        return L

    @staticmethod
    def backward(ctx, g):
        _, Q = ctx.saved
        return (Q * g[..., None, :]) @ _mT(Q)

    @staticmethod
    def composite(A, *, UPLO):
        return eigh(A, UPLO).eigenvalues


Eigh = namedtuple("Eigh", ["eigenvalues", "eigenvectors"])


def eigh(A, UPLO="L"):
    """torch.linalg.eigh: the eigenvalues (ascending) and orthonormal eigenvectors of each
    symmetric matrix, read from its lower (UPLO='L') or upper triangle. The eigenvectors are
    unique up to sign, so only sign-invariant functions of them have a well-defined gradient,
    and it needs distinct eigenvalues."""
    _square("linalg.eigh", A)
    _check_uplo("linalg.eigh", UPLO)
    n = A.shape[-1]
    return Eigh(*_unpack(LinalgEigh.apply(A, UPLO=UPLO), ((n,), (n, n))))


def eigvalsh(A, UPLO="L"):
    """torch.linalg.eigvalsh: the eigenvalues of each symmetric matrix, ascending."""
    _square("linalg.eigvalsh", A)
    _check_uplo("linalg.eigvalsh", UPLO)
    return LinalgEigvalsh.apply(A, UPLO=UPLO)


class LinalgCholeskyEx(Function):
    """The lower Cholesky factor L of A = L L^T. PyTorch's gradient, symmetrised:
    gA = sym(L^-T Phi(L^T gL) L^-1), Phi taking the lower triangle with its diagonal halved."""

    @staticmethod
    def forward(ctx, A):
        try:
            out = ctx.xp.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            raise LinAlgError(f"linalg.cholesky: The factorization could not be completed "
                              f"because the input of shape {tuple(A.shape)} is not "
                              "positive-definite") from None
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (L,) = ctx.saved
        xp = ctx.xp
        phi = xp.tril(_mT(L) @ g)
        phi = phi - 0.5 * phi * xp.eye(L.shape[-1], dtype=L.dtype)
        Linv = _inverse(xp, L)
        gA = _mT(Linv) @ phi @ Linv
        return 0.5 * (gA + _mT(gA))


def cholesky(A, *, upper=False):
    """torch.linalg.cholesky: L lower-triangular with A = L L^T (upper=True: U = L^T, with
    A = U^T U) for each symmetric positive-definite matrix, read from its lower triangle; a
    matrix that is not positive-definite raises LinAlgError."""
    _square("linalg.cholesky", A)
    out = LinalgCholeskyEx.apply(A)
    return transpose(out, -1, -2) if upper else out


_QR_R_ONLY = ("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. "
              "Please use linalg.qr(A, mode='reduced') if you are going to differentiate "
              "through linalg.qr.")


class LinalgQr(Function):
    """(Q, R) packed (see _pack), for A with at least as many rows as columns (qr builds the
    wide case from the square one). The gradient, as PyTorch's and Walter & Lehmann's:
    gA = (gQ + Q copyltu(M)) R^-T with M = R gR^T - gQ^T Q and copyltu(M) the symmetric
    matrix with M's lower triangle. mode='complete' with more rows than columns has none (the
    extra columns of Q are arbitrary); mode='r' none either (Q was not kept), as in PyTorch."""

    @staticmethod
    def forward(ctx, A, *, mode):
        ctx.mode = mode
        Q, R = ctx.xp.linalg.qr(A, mode="reduced" if mode == "r" else mode)
        return _packed_output(ctx, A.shape[:-2], Q, R)

    @staticmethod
    def backward(ctx, g):
        (packed,) = ctx.saved
        Q, R = _unpack(packed, ctx.shapes)
        if ctx.mode == "r":
            raise RuntimeError(_QR_R_ONLY)
        if ctx.mode == "complete" and Q.shape[-1] > R.shape[-1]:
            raise RuntimeError("The QR decomposition is not differentiable when "
                               "mode='complete' and nrows > ncols.")
        gQ, gR = _unpack(g, ctx.shapes)
        M = R @ _mT(gR) - _mT(gQ) @ Q
        lower = ctx.xp.tril(M, -1)
        copyltu = lower + _mT(lower) + M * ctx.xp.eye(M.shape[-1], dtype=M.dtype)
        return (gQ + Q @ copyltu) @ _mT(_inverse(ctx.xp, R))


QR = namedtuple("QR", ["Q", "R"])


def qr(A, mode="reduced"):
    """torch.linalg.qr: A = Q R, Q with orthonormal columns, R upper-triangular. mode
    'reduced' (Q m x k, R k x n, k = min(m, n)), 'complete' (Q m x m, R m x n) or 'r' (R only;
    Q is an empty tensor). For a wide A (m < n), Q and the first m columns of R are the QR of
    A's first m columns, and the rest of R is Q^T times the other columns: so it is built
    and differentiated."""
    _matrix_input("linalg.qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           "'reduced' (default), 'r', or 'complete'")
    m, n = A.shape[-2:]
    if m < n and mode != "r":
        Q, R = qr(A[..., :m])
        return QR(Q, cat([R, _mT(Q) @ A[..., m:]], -1))
    packed = LinalgQr.apply(A, mode=mode)
    k = m if mode == "complete" else min(m, n)
    Q, R = _unpack(packed, ((m, k), (k, n)))
    if mode == "r":
        Q = Tensor._make(backend.array_module(A.device).zeros((0,), A.dtype), A.device)
    return QR(Q, R)


class LinalgPinv(Function):
    """The pseudoinverse from the SVD (or, hermitian, from eigh), singular values at or below
    max(atol, rtol * the largest) treated as zero. PyTorch's backward (valid where the rank
    is constant around A), with products only, so it records under create_graph."""

    @staticmethod
    def forward(ctx, A, *, atol, rtol, hermitian):
        xp = ctx.xp
        if hermitian:
            L, Q = xp.linalg.eigh(A)
            S, left, right = xp.abs(L), Q, _mT(Q)
            values = L
        else:
            left, S, right = xp.linalg.svd(A, full_matrices=False)
            values = S
        largest = S.max(axis=-1, keepdims=True) if S.shape[-1] else S.sum(-1, keepdims=True)
        keep = S > xp.maximum(atol, rtol * largest)
        inv_values = xp.where(keep, 1 / xp.where(keep, values, 1), 0)
        out = (_mT(right) * inv_values[..., None, :]) @ _mT(left)
        out = out.astype(A.dtype, copy=False)
        ctx.save_for_backward(A, out)
        return out

    @staticmethod
    def backward(ctx, g):
        A, P = ctx.saved
        Ph, gh = _mT(P), _mT(g)
        if A.shape[-2] <= A.shape[-1]:
            K = gh @ P
            KPh = K @ Ph
            return -_mT(P @ K) + KPh - (A @ P) @ KPh + (Ph @ P) @ (gh - K @ A)
        K = P @ gh
        PhK = Ph @ K
        return -_mT(K @ P) + (gh - A @ K) @ P @ Ph + PhK - PhK @ P @ A


def pinv(A, *, atol=None, rtol=None, hermitian=False):
    """torch.linalg.pinv: the Moore-Penrose pseudoinverse of each matrix. Singular values
    (absolute eigenvalues, hermitian=True, reading the lower triangle) at or below
    max(atol, rtol * the largest) count as zero; rtol defaults to eps * max(m, n) when atol
    is not given (or 0), else to 0, as in PyTorch."""
    _matrix_input("linalg.pinv", A)
    if hermitian:
        _square("linalg.pinv", A)
    if rtol is None:
        rtol = np.finfo(A.dtype).eps * max(A.shape[-2:]) if not atol else 0.0
    return LinalgPinv.apply(A, atol=0.0 if atol is None else float(atol), rtol=float(rtol),
                            hermitian=bool(hermitian))


# ----------------------------------------------------------------------------- matrix norms
def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """torch.linalg.matrix_norm: the Frobenius norm ('fro'), the largest (smallest)
    absolute column (1) or row (inf) sum, or from the singular values the largest (2),
    the smallest (-2) or their sum ('nuc')."""
    _check_float_input("linalg.matrix_norm", A)
    if A.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 "
                           f"dimensions, got shape {tuple(A.shape)}")
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {dim}")
    rows, cols = (normalize_dims("linalg.matrix_norm", d, A.ndim)[0] for d in dim)
    if rows == cols:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got {tuple(dim)}")
    if dtype is not None:
        A = to_dtype(A, np.dtype(dtype))
    if ord == "fro":
        return vector_norm(A, 2, (rows, cols), keepdim)
    if ord in ("nuc", 2, -2):
        return _svd_matrix_norm(A, ord, rows, cols, keepdim)
    if ord not in (1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    summed, reduced = (rows, cols) if abs(ord) == 1 else (cols, rows)
    sums = _sum(A.abs(), summed, keepdim=True)
    if ord > 0 and sums.shape[reduced] == 0:  # the largest of no sums: 0, as in PyTorch
        out = _sum(sums, reduced, keepdim=True)
    else:
        out = (amax if ord > 0 else amin)(sums, reduced, keepdim=True)
    return out if keepdim else out.squeeze(max(rows, cols)).squeeze(min(rows, cols))


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm: a vector norm over one dimension (or over all, flattened, when
    neither ord nor dim is given), a matrix norm over two (and for a 2-D input with ord)."""
    _check_float_input("linalg.norm", A)
    if isinstance(dim, int) or (isinstance(dim, (tuple, list)) and len(dim) == 1):
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if dim is None and ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if dim is None:
        if A.ndim not in (1, 2):
            raise RuntimeError("linalg.norm: If dim is not specified but ord is, the input "
                               f"must be 1D or 2D. Got {A.ndim}D.")
        if A.ndim == 1:
            return vector_norm(A, ord, None, keepdim, dtype=dtype)
        dim = (-2, -1)
    return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
