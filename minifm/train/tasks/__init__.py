"""Training tasks: each builds its data, model and optimizers from a JSON-able config and
answers the Trainer's questions (see minifm/train/trainer.py)."""
from .bert import BERTTask  # noqa: F401
from .cgan import CGANTask  # noqa: F401
from .dcgan import DCGANTask  # noqa: F401
from .gpt import GPTTask  # noqa: F401
from .resnet import ResNetTask  # noqa: F401
from .sr import SRTask  # noqa: F401

TASKS = {"gpt": GPTTask, "bert": BERTTask, "dcgan": DCGANTask, "cgan": CGANTask,
         "resnet": ResNetTask, "sr": SRTask}
