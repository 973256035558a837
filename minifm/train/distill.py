"""Knowledge distillation (Hinton, Vinyals and Dean, 2015): a student model learns from a
trained teacher's output distribution as well as from the data.

The teacher's logits z_t and the student's z_s are both softened by a temperature T,
p = softmax(z / T), which lifts the small probabilities the teacher gives to wrong but
plausible tokens ("dark knowledge") out of the noise. The student minimises

    alpha * T^2 * KL(p_teacher || p_student)  +  (1 - alpha) * cross_entropy(z_s, y)

The T^2 keeps the soft term's gradients the size of the data term's as T changes (their
gradient scales as 1/T^2). `minifm train gpt --distill-from CHECKPOINT` uses it
(--distill-temperature, --distill-alpha); the teacher is frozen and only runs forward.
"""
from __future__ import annotations

from ..data import tokenizer_from_dict
from ..models.gpt import GPT, GPTConfig
from ..nn import functional as F
from .checkpoint import read_checkpoint


def soft_target_loss(student_logits, teacher_logits, temperature):
    """T^2 KL(softmax(teacher / T) || softmax(student / T)), averaged over the rows of
    logits (N, vocab); the student's combines it with its data loss as
    alpha * this + (1 - alpha) * data loss."""
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                    F.log_softmax(teacher_logits / temperature, dim=-1),
                    reduction="batchmean", log_target=True) * temperature ** 2


def load_teacher(path, device="cpu"):
    """(teacher GPT in eval mode, its tokenizer as a dict) from a `minifm train gpt`
    checkpoint; the student must use the same tokenizer, so its logits mean the same."""
    ckpt = read_checkpoint(path)
    config = ckpt["config"]["task"]
    if config.get("name") != "gpt":
        raise ValueError(f"--distill-from {path}: the teacher must be a gpt checkpoint, this "
                         f"one is of the {config.get('name')!r} task")
    tokenizer = config["state"]["tokenizer"]
    teacher = GPT(GPTConfig(block_size=config["block_size"],
                            vocab_size=tokenizer_from_dict(tokenizer).vocab_size,
                            n_layer=config["n_layer"], n_head=config["n_head"],
                            n_embd=config["n_embd"], bias=config["bias"]))
    teacher.load_state_dict(ckpt["modules"]["model"])
    teacher.requires_grad_(False)
    return teacher.to(device).eval(), tokenizer
