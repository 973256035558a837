"""Models built only from minifm.nn: GPT (nanoGPT), BERT, DCGAN's two networks (and their
class-conditional versions), and ResNet (torchvision's ImageNet networks and He et al.'s
CIFAR ones); ESPCN and SRGAN's discriminator for super-resolution."""
from .bert import (
    BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel, mask_tokens,
)
from .cgan import ConditionalDiscriminator, ConditionalGenerator
from .dcgan import Discriminator, Generator, weights_init
from .espcn import ESPCN
from .gpt import GPT, GPTConfig, KVCache, convert_hf_gpt2_state_dict
from .resnet import (
    BasicBlock, Bottleneck, CifarResNet, ResNet, resnet18, resnet20, resnet32, resnet34,
    resnet44, resnet50, resnet56, resnet101, resnet152,
)
from .srgan import SRDiscriminator

__all__ = [
    "BertConfig", "BertForMaskedLM", "BertForSequenceClassification", "BertModel",
    "ConditionalDiscriminator", "ConditionalGenerator",
    "Discriminator", "GPT", "GPTConfig", "Generator", "KVCache", "convert_hf_gpt2_state_dict",
    "mask_tokens", "weights_init",
    "BasicBlock", "Bottleneck", "CifarResNet", "ResNet", "resnet18", "resnet20", "resnet32",
    "resnet34", "resnet44", "resnet50", "resnet56", "resnet101", "resnet152",
    "ESPCN", "SRDiscriminator",
]
