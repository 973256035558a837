"""Models built only from minifm.nn: GPT (nanoGPT), BERT, and DCGAN's two networks."""
from .bert import (
    BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel, mask_tokens,
)
from .dcgan import Discriminator, Generator, weights_init
from .gpt import GPT, GPTConfig, KVCache, convert_hf_gpt2_state_dict

__all__ = [
    "BertConfig", "BertForMaskedLM", "BertForSequenceClassification", "BertModel",
    "Discriminator", "GPT", "GPTConfig", "Generator", "KVCache", "convert_hf_gpt2_state_dict",
    "mask_tokens", "weights_init",
]
