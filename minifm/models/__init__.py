"""Models built only from minifm.nn: GPT (nanoGPT), BERT, DCGAN's two networks, and
ResNet (torchvision's ImageNet networks and He et al.'s CIFAR ones)."""
from .bert import (
    BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel, mask_tokens,
)
from .dcgan import Discriminator, Generator, weights_init
from .gpt import GPT, GPTConfig, KVCache, convert_hf_gpt2_state_dict
from .resnet import (
    BasicBlock, Bottleneck, CifarResNet, ResNet, resnet18, resnet20, resnet32, resnet34,
    resnet44, resnet50, resnet56, resnet101, resnet152,
)

__all__ = [
    "BertConfig", "BertForMaskedLM", "BertForSequenceClassification", "BertModel",
    "Discriminator", "GPT", "GPTConfig", "Generator", "KVCache", "convert_hf_gpt2_state_dict",
    "mask_tokens", "weights_init",
    "BasicBlock", "Bottleneck", "CifarResNet", "ResNet", "resnet18", "resnet20", "resnet32",
    "resnet34", "resnet44", "resnet50", "resnet56", "resnet101", "resnet152",
]
