"""Train a DCGAN to draw handwritten digits: `minifm train dcgan`, through the Python API.

    python examples/train_dcgan.py       # under a minute on a 2-core CPU

Every step updates the discriminator, then the generator (minifm/train/tasks/dcgan.py).
The Frechet distance compares generated and real digits through a small classifier's
features; noise images and a second set of real digits show what is far and what is near.
"""
from minifm.train import TrainConfig, Trainer
from minifm.train.tasks.dcgan import DCGANTask, DCGANTaskConfig

out_dir = "runs/dcgan-example"
task = DCGANTask(DCGANTaskConfig(image_size=16), out_dir)
trainer = Trainer(task, TrainConfig(max_steps=1500, eval_interval=250, warmup_steps=0,
                                    min_lr_ratio=1.0, grad_clip=None,
                                    early_stopping_metric="frechet_distance", out_dir=out_dir))
summary = trainer.fit()

test = summary["test"]
print(f"Frechet distance to real test digits: generated {test['frechet_distance']:.1f}, "
      f"Gaussian noise {test['frechet_distance_gaussian_noise']:.1f}, "
      f"uniform noise {test['frechet_distance_uniform_noise']:.1f}, "
      f"other real digits {test['frechet_distance_real']:.1f}")
print("samples:", task.sample(seed=0))
