"""minifm.explain: why did the model say that?

Attribution methods with Captum's class names, `attribute` arguments and results
(`captum.attr`), so Captum code runs after changing its imports, and attention rollout for
transformers. Start with saliency.py (one gradient), then integrated_gradients.py.

    gradients      Saliency, InputXGradient, IntegratedGradients
    perturbation   Occlusion
    smoothing      NoiseTunnel (SmoothGrad, SmoothGrad^2, VarGrad) around any of them
    layers         LayerActivation, LayerGradCam (forward hooks on a Module)
    transformers   attention_rollout, on the attentions of output_attentions=True

pictures.py draws them (matplotlib, imported only when drawing); `minifm explain`
(minifm/train/explain_command.py) draws them for a trained checkpoint.
"""
from .attribution import Attribution, GradientAttribution
from .integrated_gradients import IntegratedGradients
from .layer import LayerActivation, LayerAttribution, LayerGradCam
from .noise_tunnel import NoiseTunnel
from .occlusion import Occlusion
from .rollout import attention_rollout
from .saliency import InputXGradient, Saliency

__all__ = ["Attribution", "GradientAttribution", "Saliency", "InputXGradient",
           "IntegratedGradients", "Occlusion", "NoiseTunnel", "LayerAttribution",
           "LayerActivation", "LayerGradCam", "attention_rollout"]
