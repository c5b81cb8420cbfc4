"""The lab's data and models: scikit-learn's digits and text the lab generates itself.

Everything is tiny on purpose (seconds per run on one CPU thread) and seeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from torch import nn

#: Characters of the generated text (the char-level language model's vocabulary).
ALPHABET = "abcdefghijklmnopqrstuvwxyz .\n"
#: Words the text generator draws from, most common first (Zipf-like draws).
WORDS = (  # noqa: SIM905 (a word list reads best as text)
    "the a cat dog bird fish man woman child king queen tree house river stone sees "
    "takes finds likes eats walks near under over with small big red old green quick "
    "slow happy sad and then but so very often never always"
).split()
#: Context length of the language model (characters).
CONTEXT = 32
#: Samples of the digits data held out for validation.
VAL_SAMPLES = 397


@dataclass(frozen=True)
class Dataset:
    """Training and validation tensors of one task."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    classes: int


@cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Return the digits images (scaled to 0-1, shape (n, 64)) and labels, in a fixed order."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    return (data.data[order] / 16.0).astype(np.float32), data.target[order].astype(np.int64)


def digits(train_size: int | None = None) -> Dataset:
    """Return the digits task (10 classes); ``train_size`` limits the training samples."""
    x, y = _digits_arrays()
    x_val, y_val = x[:VAL_SAMPLES], y[:VAL_SAMPLES]
    x_train, y_train = x[VAL_SAMPLES:], y[VAL_SAMPLES:]
    if train_size is not None:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    return Dataset(
        torch.from_numpy(x_train),
        torch.from_numpy(y_train),
        torch.from_numpy(x_val),
        torch.from_numpy(y_val),
        10,
    )


@cache
def text(chars: int = 60_000, seed: int = 0) -> str:
    """Return generated English-like text: sentences of words drawn with Zipf-like odds."""
    rng = np.random.default_rng(seed)
    odds = 1.0 / np.arange(1, len(WORDS) + 1)
    odds /= odds.sum()
    out: list[str] = []
    size = 0
    while size < chars:
        words = rng.choice(WORDS, size=int(rng.integers(3, 9)), p=odds)
        sentence = " ".join(words) + (".\n" if rng.random() < 0.3 else ". ")
        out.append(sentence)
        size += len(sentence)
    return "".join(out)[:chars]


def chars() -> Dataset:
    """Return the character-level language-model task: windows of ``CONTEXT`` characters,
    targets shifted by one."""
    codes = torch.tensor([ALPHABET.index(c) for c in text()], dtype=torch.int64)
    windows = codes.unfold(0, CONTEXT + 1, CONTEXT // 2)
    split = int(windows.shape[0] * 0.9)
    inputs, targets = windows[:, :-1], windows[:, 1:]
    return Dataset(inputs[:split], targets[:split], inputs[split:], targets[split:], len(ALPHABET))


class MLP(nn.Module):
    """A multi-layer perceptron over flat digits images."""

    def __init__(self, width: int, depth: int = 1, classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = 64
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.ReLU()]
            size = width
        layers.append(nn.Linear(size, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the class logits."""
        return self.net(x)  # type: ignore[no-any-return]


class CNN(nn.Module):
    """A small convolutional network over 8x8 digits images."""

    def __init__(self, width: int, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(width * 4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the class logits."""
        features = self.conv(x.view(-1, 1, 8, 8))
        return self.head(features.flatten(1))  # type: ignore[no-any-return]


class CharTransformer(nn.Module):
    """A one-block causal transformer over characters."""

    mask: torch.Tensor

    def __init__(self, width: int, vocab: int = len(ALPHABET)) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.zeros(CONTEXT, width))
        self.block = nn.TransformerEncoderLayer(
            width, nhead=2, dim_feedforward=2 * width, dropout=0.0, batch_first=True
        )
        self.head = nn.Linear(width, vocab)
        mask = torch.triu(torch.full((CONTEXT, CONTEXT), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return next-character logits, shape (batch, context, vocab)."""
        hidden = self.embed(x) + self.position[: x.shape[1]]
        mask = self.mask[: x.shape[1], : x.shape[1]]
        hidden = self.block(hidden, src_mask=mask, is_causal=True)
        return self.head(hidden)  # type: ignore[no-any-return]


def build(task: str, width: int) -> tuple[nn.Module, Dataset]:
    """Return a fresh model and the dataset of ``task`` ("mlp", "deep", "cnn" or "char")."""
    if task == "mlp":
        return MLP(width), digits()
    if task == "deep":
        return MLP(width, depth=4), digits()
    if task == "cnn":
        return CNN(width), digits()
    if task == "char":
        return CharTransformer(width), chars()
    raise ValueError(f"unknown task {task!r}")
