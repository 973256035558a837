"""Training: the Trainer loop, its config, checkpoints, metrics and the tasks it runs."""
from .checkpoint import read_checkpoint, save_checkpoint  # noqa: F401
from .config import TrainConfig  # noqa: F401
from .schedule import WarmupCosine  # noqa: F401
from .settings import ConfigError  # noqa: F401
from .trainer import NonFiniteLoss, Trainer  # noqa: F401
