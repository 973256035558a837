"""Data: datasets, the DataLoader, tokenizers, text corpora and the digits images."""

from .bpe import ByteLevelBPETokenizer, pretokenize
from .char_tokenizer import CharTokenizer
from .corpora import default_corpus, load_text, min_corpus_tokens, train_val_test_split
from .dataloader import DataLoader, default_collate, random_blocks
from .dataset import Dataset, Subset, TensorDataset, random_split
from .digits import load_digits, upsample
from .distributed import DistributedSampler
from .sampler import (
    RandomSampler, Sampler, SequentialSampler, WeightedRandomSampler, group_balanced_weights,
)
from .tokenizers import load_tokenizer, tokenizer_from_dict

__all__ = [
    "ByteLevelBPETokenizer", "CharTokenizer", "DataLoader", "Dataset", "DistributedSampler",
    "RandomSampler",
    "Sampler", "SequentialSampler", "Subset", "WeightedRandomSampler", "group_balanced_weights",
    "TensorDataset", "default_collate", "default_corpus", "load_digits", "load_text",
    "load_tokenizer", "min_corpus_tokens", "pretokenize", "random_blocks", "random_split",
    "tokenizer_from_dict", "train_val_test_split", "upsample",
]
