"""What `minifm explain` does: pictures of what a trained model looks at.

- gpt:   the text's tokens -> the most likely next token. Every layer's attention, head
         by head (output_attentions=True); the attention rollout; and each token's
         integrated gradients (IG on the token embeddings, zero baseline, summed over the
         embedding) for that prediction, beside the rollout of the last position.
- bert:  the same for the masked-LM's prediction at the first [MASK] in the text (the
         text's last token is masked when it has none).
- dcgan: saliency and IG maps (baseline: a blank -1 image, no ink) of the
         discriminator's logit on real test digits and on generated ones.
- resnet: Grad-CAM (Selvaraju et al.) of the predicted digit at the classifier's middle
         stage, upsampled to the image, and IG from a blank image, on test digits.

The checks come first (the checkpoint, the text, matplotlib), then the pictures.
"""
from __future__ import annotations

import importlib.util
import os


from .. import backend
from ..autograd import no_grad
from ..creation import randn, tensor
from ..explain import (IntegratedGradients, LayerAttribution, LayerGradCam, Saliency,
                       attention_rollout, pictures)
from ..ops.activation import sigmoid, softmax
from .commands import task_from_checkpoint
from .tasks.bert import CLS, MASK, SEP
from .tasks.text import encode_prompt

MASK_TEXT = "[MASK]"


def explain_checkpoint(checkpoint, text=None, out_dir=None, n_steps=50, device="cpu"):
    """Write the pictures for the model of `checkpoint` into out_dir (default: explain/
    beside the checkpoint); returns the paths written."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ValueError("minifm explain draws with matplotlib, which is not installed "
                         "(pip install matplotlib)")
    if n_steps < 1:
        raise ValueError(f"--steps must be >= 1, got {n_steps}")
    out_dir = out_dir or os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "explain")
    task, _ = task_from_checkpoint(checkpoint, load_data=False, device=device)
    if task.name in ("dcgan", "resnet"):  # rebuilt with its data: the real digits
        task, _ = task_from_checkpoint(checkpoint, load_data=True, device=device)
        os.makedirs(out_dir, exist_ok=True)
        explain = explain_dcgan if task.name == "dcgan" else explain_resnet
        return explain(task, out_dir, n_steps)
    if task.name not in ("gpt", "bert"):
        raise ValueError(f"minifm explain draws gpt, bert, dcgan and resnet models; "
                         f"{checkpoint} is a {task.name} one")
    if not text:
        raise ValueError(f"explaining a {task.name} model needs a --text")
    ids, position, truth = prepare_text(task, text)
    os.makedirs(out_dir, exist_ok=True)
    if task.name == "gpt":  # without targets, GPT returns the last position's logits
        return transformer_pictures("gpt", task.model, task.tokenizer, ids, position,
                                    lambda logits: logits[:, -1], truth, out_dir, n_steps,
                                    "next token")
    return transformer_pictures("bert", task.mlm, task.tokenizer, ids, position,
                                lambda logits: logits[:, position], truth, out_dir, n_steps,
                                f"masked token at position {position}:")


def prepare_text(task, text):
    """(token ids, the position whose prediction is explained, its true id or None)."""
    if task.name == "gpt":
        ids = encode_prompt(task.tokenizer, text)[-task.cfg.block_size:]
        if not ids:
            raise ValueError("the --text is empty")
        return ids, len(ids) - 1, None
    pieces = [encode_prompt(task.tokenizer, piece) for piece in text.split(MASK_TEXT)]
    ids = [CLS] + [i for k, piece in enumerate(pieces) for i in ([MASK] if k else []) + piece]
    ids.append(SEP)
    if len(ids) > task.cfg.seq_len:
        raise ValueError(f"the --text has {len(ids) - 2} tokens; this BERT reads at most "
                         f"{task.cfg.seq_len - 2}")
    if len(ids) < 3:
        raise ValueError("the --text is empty")
    truth = None
    if MASK not in ids:  # mask the last token of the text
        truth, ids[-2] = ids[-2], MASK
    return ids, ids.index(MASK), truth


def transformer_pictures(name, model, tokenizer, ids, position, logits_at, truth, out_dir,
                         n_steps, what):
    """The attention, rollout and attribution pictures of a GPT or BERT prediction;
    logits_at(the model's logits) -> the (B, vocab) logits at `position`."""
    model.eval()
    x = tensor([ids], dtype=backend.int64, device=model_device(model))
    with no_grad():
        logits, _, attentions = model(x, output_attentions=True)
        probs = softmax(logits_at(logits)[0], dim=-1).numpy()
    predicted = int(probs.argmax())
    tokens = [tokenizer.decode([i]) for i in ids]
    paths = [pictures.attention_heads(
        os.path.join(out_dir, f"{name}_attention_layer{layer}.png"), att[0].numpy(), tokens,
        f"{name.upper()} layer {layer}: attention probabilities per head")
        for layer, att in enumerate(attentions)]
    rollout = attention_rollout(attentions)[0].numpy()
    paths.append(pictures.token_matrix(
        os.path.join(out_dir, f"{name}_rollout.png"), rollout, tokens,
        f"{name.upper()} attention rollout over {len(attentions)} layers: how much each "
        "position\n(row) draws on each input token (column), through the residual stream",
        "share of the token's representation"))
    scores, change = token_attributions(model, x, logits_at, predicted, n_steps)
    shown = [repr(tokenizer.decode([i])) for i in (predicted, truth) if i is not None]
    title = (f"{name.upper()}, {what} {shown[0]} (p = {probs[predicted]:.2f})"
             + (f", the text has {shown[1]}" if truth is not None else "")
             + f"\nIG, {n_steps} steps: attributions sum to {scores.sum():.3f}, "
             f"logit change {change:.3f}")
    paths.append(pictures.token_attributions(
        os.path.join(out_dir, f"{name}_token_attributions.png"), tokens, scores,
        rollout[position], title, position))
    return paths


def token_attributions(model, x, logits_at, target, n_steps):
    """(each token's integrated gradients for the logit of `target`, summed over the
    embedding, from zero embeddings; the logit change they split up, f(x) - f(0))."""
    embeds = embedding_layer(model)(x).detach()
    ig = IntegratedGradients(lambda e: logits_at(model(inputs_embeds=e)[0]))
    attributions, delta = ig.attribute(embeds, target=target, n_steps=n_steps,
                                       return_convergence_delta=True)
    scores = attributions[0].sum(dim=-1).numpy()
    return scores, float(scores.sum()) - float(delta.item())


def explain_dcgan(task, out_dir, n_steps, count=8):
    """Saliency and IG maps of the discriminator on `count` real and generated digits."""
    netD, netG = task.netD.eval(), task.netG.eval()
    split = "test" if "test" in task.digits else "train"
    real = tensor(task.digits[split][0][:count])
    z = randn(count, task.cfg.nz, 1, 1, generator=backend.Generator(seed=0))
    with no_grad():
        fake = netG(z)
    paths = []
    for name, images in (("real", real), ("generated", fake)):
        with no_grad():
            p_real = sigmoid(netD(images)).numpy()
        saliency = Saliency(netD).attribute(images)
        ig = IntegratedGradients(netD).attribute(images, baselines=-1.0, n_steps=n_steps)
        maps = {"saliency |dD/dx|": saliency[:, 0].numpy(),
                "integrated gradients": ig[:, 0].numpy()}
        paths.append(pictures.image_attributions(
            os.path.join(out_dir, f"dcgan_discriminator_{name}.png"), images[:, 0].numpy(),
            maps, [f"P(real) = {p:.2f}" for p in p_real],
            f"Discriminator on {name} digits: where it looks (IG from a blank image; red: "
            "evidence for 'real')"))
    return paths


def explain_resnet(task, out_dir, n_steps, count=8):
    """Grad-CAM and IG maps of the classifier's predicted digit on `count` test digits.
    Grad-CAM looks at layer2, the last stage whose maps are still 4x4 on 8x8 digits (the
    last one, layer3, is 2x2: too coarse to point at a stroke)."""
    model = task.model.eval()
    split = "test" if "test" in task.digits else "val"
    images = tensor(task.digits[split][0][:count])
    labels = task.digits[split][1][:count]
    with no_grad():
        predicted = model(images).argmax(1)
    cam = LayerGradCam(model, model.layer2).attribute(images, target=predicted,
                                                     relu_attributions=True)
    cam = LayerAttribution.interpolate(cam, tuple(images.shape[-2:]))
    ig = IntegratedGradients(model).attribute(images, baselines=0.0, target=predicted,
                                              n_steps=n_steps)
    maps = {"Grad-CAM (layer2)": cam[:, 0].numpy(), "integrated gradients": ig[:, 0].numpy()}
    captions = [f"{t} -> {p}" for t, p in zip(labels, predicted.numpy())]
    return [pictures.image_attributions(
        os.path.join(out_dir, "resnet_gradcam.png"), images[:, 0].numpy() * 2 - 1, maps,
        captions, "ResNet on test digits (true -> predicted): where the predicted class's "
        "evidence lies")]


def embedding_layer(model):
    """The token-embedding table of a GPT or a BERT."""
    return model.transformer.wte if hasattr(model, "transformer") else \
        model.bert.embeddings.word_embeddings


def model_device(model):
    return next(iter(model.parameters())).device
