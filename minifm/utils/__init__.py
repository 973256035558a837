"""minifm.utils: PyTorch's import paths (torch.utils.data) for code ported by changing
imports; everything here lives in minifm.data."""
from . import data  # noqa: F401
