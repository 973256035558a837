"""Train a small character-level GPT with minifm's Python API, then sample from it.

    python examples/train_gpt.py                        # the embedded default corpus
    python examples/train_gpt.py --data ../shared/data/tinyshakespeare.txt --steps 2000

The same run from the command line is `minifm train gpt`; this script shows the pieces.
"""
import argparse

import numpy as np

import minifm
from minifm.data import CharTokenizer, default_corpus, load_text, random_blocks
from minifm.data.corpora import train_val_test_split
from minifm.models import GPT, GPTConfig
from minifm.train import WarmupCosine

parser = argparse.ArgumentParser()
parser.add_argument("--data", default=None, help="a text file (default: Python's stdlib source)")
parser.add_argument("--steps", type=int, default=500)
args = parser.parse_args()

minifm.manual_seed(1337)
text = load_text(args.data) if args.data else default_corpus(1_000_000)
tokenizer = CharTokenizer.from_text(text)
train, val, _ = train_val_test_split(np.array(tokenizer.encode(text)), val_frac=0.1)

# nanoGPT's small CPU configuration
model = GPT(GPTConfig(block_size=64, vocab_size=tokenizer.vocab_size, n_layer=4, n_head=4,
                      n_embd=128, dropout=0.0, bias=False))
optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.99))
schedule = WarmupCosine(warmup_steps=min(100, args.steps // 10), decay_steps=args.steps,
                        min_ratio=0.1)
batches = minifm.Generator(seed=1)

for step in range(args.steps):
    for group in optimizer.param_groups:
        group["lr"] = 1e-3 * schedule(step)
    x, y = random_blocks(train, block_size=64, batch_size=12, generator=batches)
    logits, loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    minifm.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step % 100 == 0 or step == args.steps - 1:
        model.eval()
        with minifm.no_grad():
            held_out = minifm.Generator(seed=2)
            val_loss = np.mean([model(*random_blocks(val, 64, 12, generator=held_out))[1].item()
                                for _ in range(10)])
        model.train()
        print(f"step {step}: train loss {loss.item():.3f}, val loss {val_loss:.3f}")

model.eval()
prompt = minifm.tensor([tokenizer.encode("\n")])
print(tokenizer.decode(model.generate(prompt, 300, temperature=0.8, top_k=None,
                                      generator=minifm.Generator(seed=0))[0].tolist()))
