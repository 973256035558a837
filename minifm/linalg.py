"""minifm.linalg: PyTorch's torch.linalg namespace (the ops live in minifm/ops/linalg.py).

`cross` here takes `dim=-1` as a keyword, as torch.linalg.cross does; `minifm.cross` keeps
torch.cross's default (the first dimension of size 3). A singular matrix raises
`LinAlgError`, a RuntimeError, as torch.linalg.LinAlgError is."""
from .ops.linalg import (  # noqa: F401
    LinAlgError, cdist, cholesky, det, eigh, eigvalsh, inv, linalg_cross as cross, matmul,
    matrix_norm, norm, pinv, qr, slogdet, solve, svd, svdvals, vector_norm,
)
