"""Pretrain a small BERT on Python source code by masked language modeling, then fine-tune a
copy of it to spot snippets with typos: `minifm train bert`, through the Python API.

    python examples/train_bert.py        # about a minute on a 2-core CPU

The task (minifm/train/tasks/bert.py) builds the data, the two models and the optimizer;
the Trainer runs the steps, evaluates, checkpoints and resumes.
"""
from minifm.train import TrainConfig, Trainer
from minifm.train.tasks.bert import BERTTask, BERTTaskConfig

out_dir = "runs/bert-example"
task = BERTTask(BERTTaskConfig(mlm_steps=400), out_dir)  # 400 steps of masked LM, then fine-tuning
trainer = Trainer(task, TrainConfig(max_steps=600, eval_interval=100, warmup_steps=50,
                                    out_dir=out_dir))
summary = trainer.fit()

test = summary["test"]
print(f"masked tokens predicted right:  {test['mlm_accuracy']:.1%} "
      f"(always guessing the most frequent token: {test['unigram_accuracy']:.1%})")
print(f"typo or not, classified right: {test['cls_accuracy']:.1%} "
      f"(always guessing the majority label: {test['majority_accuracy']:.1%})")
print(task.sample(seed=0))
