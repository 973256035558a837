"""minifm.linalg: PyTorch's torch.linalg namespace (the ops live in minifm/ops/linalg.py and
minifm/ops/decompositions.py).

`cross` here takes `dim=-1` as a keyword, as torch.linalg.cross does; `minifm.cross` keeps
torch.cross's default (the first dimension of size 3). A singular matrix raises
`LinAlgError`, a RuntimeError, as torch.linalg.LinAlgError is."""
from .ops.decompositions import (  # noqa: F401
    LinAlgError, cholesky, det, eigh, eigvalsh, inv, matrix_norm, norm, pinv, qr, slogdet, solve,
    svd, svdvals,
)
from .ops.linalg import cdist, linalg_cross as cross, matmul, vector_norm  # noqa: F401
