"""all-MiniLM-L6-v2 in plain numpy: the forward pass sentence-transformers runs, without torch.

The model is a 6-layer BERT (hidden size 384, 12 heads) followed by mean pooling over the
tokens and L2 normalisation. Weights come from the model's `model.safetensors`, tokens from its
`tokenizer.json` (the `tokenizers` package). Everything here is float32 and side-effect free once
loaded, so one `MiniLM` can serve any number of threads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

HIDDEN = 384
HEADS = 12
LAYERS = 6
INTERMEDIATE = 1536
VOCAB = 30522
POSITIONS = 512
MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length: longer texts are truncated
# Only a text's first MAX_TOKENS tokens count, so tokenizing more is wasted: a 50 MB message took
# minutes. 100 characters per token is 20 times what ordinary text needs (a word over 100
# characters is a single [UNK] token anyway).
MAX_CHARS = MAX_TOKENS * 100
LAYER_NORM_EPS = 1e-12
NORMALIZE_EPS = 1e-12  # torch.nn.functional.normalize's default
DEFAULT_BATCH = 32
FEED_FORWARD_ROWS = 512  # tokens per feed-forward slice (see feed_forward)


class ModelFileError(ValueError):
    """The model directory is missing a file or holds a tensor of the wrong name or shape."""


@dataclass(frozen=True)
class Layer:
    """One encoder layer's weights, pre-transposed for `x @ w` (query, key, value fused)."""

    qkv_w: Array
    qkv_b: Array
    out_w: Array
    out_b: Array
    attention_norm_w: Array
    attention_norm_b: Array
    up_w: Array
    up_b: Array
    down_w: Array
    down_b: Array
    output_norm_w: Array
    output_norm_b: Array


@dataclass(frozen=True)
class Weights:
    """The whole model: embedding tables, their layer norm, and the encoder layers."""

    words: Array
    positions: Array
    token_types: Array
    norm_w: Array
    norm_b: Array
    layers: tuple[Layer, ...]


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor the forward pass reads, with the shape all-MiniLM-L6-v2 gives it."""
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (VOCAB, HIDDEN),
        "embeddings.position_embeddings.weight": (POSITIONS, HIDDEN),
        "embeddings.token_type_embeddings.weight": (2, HIDDEN),
        "embeddings.LayerNorm.weight": (HIDDEN,),
        "embeddings.LayerNorm.bias": (HIDDEN,),
    }
    for number in range(LAYERS):
        prefix = f"encoder.layer.{number}."
        for name in ("query", "key", "value"):
            shapes[f"{prefix}attention.self.{name}.weight"] = (HIDDEN, HIDDEN)
            shapes[f"{prefix}attention.self.{name}.bias"] = (HIDDEN,)
        shapes[f"{prefix}attention.output.dense.weight"] = (HIDDEN, HIDDEN)
        shapes[f"{prefix}attention.output.dense.bias"] = (HIDDEN,)
        shapes[f"{prefix}intermediate.dense.weight"] = (INTERMEDIATE, HIDDEN)
        shapes[f"{prefix}intermediate.dense.bias"] = (INTERMEDIATE,)
        shapes[f"{prefix}output.dense.weight"] = (HIDDEN, INTERMEDIATE)
        shapes[f"{prefix}output.dense.bias"] = (HIDDEN,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{prefix}{norm}.weight"] = (HIDDEN,)
            shapes[f"{prefix}{norm}.bias"] = (HIDDEN,)
    return shapes


def read_safetensors(path: Path) -> dict[str, Array]:
    """The float32 tensors of a safetensors file, checked against `expected_shapes()`."""
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except FileNotFoundError as error:
        raise ModelFileError(f"Model weights not found: {path}") from error
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise ModelFileError(f"Cannot read the model weights {path}: {error}") from error
    checked: dict[str, Array] = {}
    for name, shape in expected_shapes().items():
        tensor = tensors.get(name)
        if tensor is None:
            raise ModelFileError(f"{path}: tensor {name!r} is missing (not all-MiniLM-L6-v2?)")
        if tensor.shape != shape or tensor.dtype != np.float32:
            raise ModelFileError(
                f"{path}: tensor {name!r} is {tensor.dtype}{list(tensor.shape)}, "
                f"expected float32{list(shape)}"
            )
        checked[name] = tensor
    return checked


def to_weights(tensors: dict[str, Array]) -> Weights:
    """Arrange checked tensors for the forward pass (transposed once, here, not per call)."""

    def t(name: str) -> Array:
        return np.ascontiguousarray(tensors[name].T)

    layers = []
    for number in range(LAYERS):
        p = f"encoder.layer.{number}."
        qkv = [f"{p}attention.self.{name}" for name in ("query", "key", "value")]
        layers.append(
            Layer(
                qkv_w=np.ascontiguousarray(np.concatenate([t(f"{n}.weight") for n in qkv], 1)),
                qkv_b=np.concatenate([tensors[f"{n}.bias"] for n in qkv]),
                out_w=t(f"{p}attention.output.dense.weight"),
                out_b=tensors[f"{p}attention.output.dense.bias"],
                attention_norm_w=tensors[f"{p}attention.output.LayerNorm.weight"],
                attention_norm_b=tensors[f"{p}attention.output.LayerNorm.bias"],
                up_w=t(f"{p}intermediate.dense.weight"),
                up_b=tensors[f"{p}intermediate.dense.bias"],
                down_w=t(f"{p}output.dense.weight"),
                down_b=tensors[f"{p}output.dense.bias"],
                output_norm_w=tensors[f"{p}output.LayerNorm.weight"],
                output_norm_b=tensors[f"{p}output.LayerNorm.bias"],
            )
        )
    return Weights(
        words=tensors["embeddings.word_embeddings.weight"],
        positions=tensors["embeddings.position_embeddings.weight"],
        token_types=tensors["embeddings.token_type_embeddings.weight"],
        norm_w=tensors["embeddings.LayerNorm.weight"],
        norm_b=tensors["embeddings.LayerNorm.bias"],
        layers=tuple(layers),
    )


def layer_norm(x: Array, weight: Array, bias: Array) -> Array:
    """LayerNorm over the last axis (biased variance, as torch computes it)."""
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    variance = (centered * centered).mean(axis=-1, keepdims=True)
    result: Array = centered / np.sqrt(variance + np.float32(LAYER_NORM_EPS)) * weight + bias
    return result


def erf(x: Array) -> Array:
    """The error function to ~1.5e-7 (Abramowitz & Stegun 7.1.26): numpy has none built in.

    Computed in place on two buffers: the activations it runs on are the model's largest arrays.
    """
    a = np.abs(x)
    t = a * np.float32(0.3275911)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += coefficient
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(np.float32(1.0), poly, out=poly)
    result: Array = np.copysign(poly, x, out=poly)
    return result


def gelu(x: Array) -> Array:
    """BERT's exact GELU, x * Phi(x) (not the tanh approximation)."""
    result = erf(x * np.float32(1 / math.sqrt(2)))
    result += 1.0
    result *= x
    result *= 0.5
    return result


def softmax(x: Array) -> Array:
    """Softmax over the last axis (in place), shifted by the row maximum so it cannot overflow.

    Shifted scores are floored at -80 (weight e^-80, ~1e-35): smaller ones would underflow to
    denormal floats, which make the next matrix product many times slower on x86.
    """
    x -= x.max(axis=-1, keepdims=True)
    np.maximum(x, np.float32(-80.0), out=x)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def self_attention(query: Array, key: Array, value: Array) -> Array:
    """Scaled dot-product attention of one sequence, all heads at once: (heads, length, size).

    One sequence at a time, at its own length: no padding to mask, and the (heads, length,
    length) scores stay small enough for the CPU cache (a whole batch's would be ~100 MB).
    """
    scores = query @ np.ascontiguousarray(key.transpose(0, 2, 1))
    scores *= np.float32(1 / math.sqrt(query.shape[-1]))
    result: Array = softmax(scores) @ value
    return result


def attention(x: Array, layer: Layer, lengths: Sequence[int]) -> Array:
    """Multi-head self-attention over a right-padded batch; padding positions come out as 0."""
    batch, length, _ = x.shape
    size = HIDDEN // HEADS
    qkv = (x.reshape(batch * length, HIDDEN) @ layer.qkv_w + layer.qkv_b).reshape(
        batch, length, 3, HEADS, size
    )
    heads = np.ascontiguousarray(qkv.transpose(0, 2, 3, 1, 4))  # (batch, 3, heads, length, size)
    context = np.zeros((batch, length, HEADS, size), dtype=np.float32)
    for row, real in enumerate(lengths):
        query, key, value = heads[row, :, :, :real]
        context[row, :real] = self_attention(query, key, value).transpose(1, 0, 2)
    result: Array = context.reshape(batch * length, HIDDEN) @ layer.out_w + layer.out_b
    return result.reshape(batch, length, HIDDEN)


def feed_forward(x: Array, layer: Layer, rows: int = FEED_FORWARD_ROWS) -> Array:
    """The position-wise feed-forward block, `rows` tokens at a time.

    Its 1,536-wide activations are the model's largest arrays; in slices they stay in the CPU
    cache instead of streaming ~50 MB through memory several times per layer.
    """
    out = np.empty_like(x)
    for start in range(0, x.shape[0], rows):
        hidden = gelu(x[start : start + rows] @ layer.up_w + layer.up_b)
        out[start : start + rows] = hidden @ layer.down_w + layer.down_b
    return out


def encoder_layer(x: Array, layer: Layer, lengths: Sequence[int]) -> Array:
    """One BERT layer: attention and a feed-forward block, each with residual + layer norm."""
    batch, length, _ = x.shape
    x = layer_norm(x + attention(x, layer, lengths), layer.attention_norm_w, layer.attention_norm_b)
    hidden = feed_forward(x.reshape(batch * length, HIDDEN), layer)
    return layer_norm(
        x + hidden.reshape(batch, length, HIDDEN), layer.output_norm_w, layer.output_norm_b
    )


def embed_tokens(weights: Weights, ids: IntArray) -> Array:
    """Word + position + token-type embeddings (one segment), layer-normed."""
    length = ids.shape[1]
    summed = weights.words[ids] + weights.positions[:length] + weights.token_types[0]
    return layer_norm(summed, weights.norm_w, weights.norm_b)


def forward(weights: Weights, ids: IntArray, lengths: Sequence[int]) -> Array:
    """The encoder's last hidden states for a right-padded batch of token ids."""
    x = embed_tokens(weights, ids)
    for layer in weights.layers:
        x = encoder_layer(x, layer, lengths)
    return x


def mean_pool(hidden: Array, lengths: Sequence[int]) -> Array:
    """The average of each sequence's real tokens' states (padding excluded)."""
    pooled: Array = np.stack([hidden[row, :real].mean(axis=0) for row, real in enumerate(lengths)])
    return pooled


def normalize(vectors: Array) -> Array:
    """Scale each row to unit length, so a dot product is the cosine similarity."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: Array = vectors / np.maximum(norms, np.float32(NORMALIZE_EPS))
    return result


def pad(sequences: Sequence[Sequence[int]]) -> IntArray:
    """Right-pad token id lists with 0 ([PAD]) to the longest one."""
    ids = np.zeros((len(sequences), max(len(ids) for ids in sequences)), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
    return ids


def load_tokenizer(path: Path) -> Tokenizer:
    """The model's WordPiece tokenizer, truncating like sentence-transformers and never padding.

    The file's own settings (pad and cut everything to 128) are what `transformers` overrides
    per call; here they are replaced once.
    """
    from tokenizers import Tokenizer

    if not path.is_file():
        raise ModelFileError(f"Tokenizer not found: {path}")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


def check_config(path: Path) -> None:
    """Refuse a model directory whose config is not the architecture this module implements."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelFileError(f"Cannot read the model config {path}: {error}") from error
    expected = {
        "hidden_size": HIDDEN,
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
    }
    wrong = {key: config.get(key) for key, value in expected.items() if config.get(key) != value}
    if wrong:
        raise ModelFileError(f"{path}: not an all-MiniLM-L6-v2 config: {wrong}")


class MiniLM:
    """all-MiniLM-L6-v2: text in, unit-length 384-dim float32 vectors out (thread-safe)."""

    dimensions = HIDDEN

    def __init__(self, weights: Weights, tokenizer: Tokenizer) -> None:
        self.weights = weights
        self.tokenizer = tokenizer

    @classmethod
    def from_directory(cls, path: Path) -> MiniLM:
        """Load a sentence-transformers model directory (config, safetensors, tokenizer).

        Args:
            path: The directory holding `config.json`, `model.safetensors` and `tokenizer.json`.

        Returns:
            The loaded model.

        Raises:
            ModelFileError: A file is missing or is not all-MiniLM-L6-v2's.
        """
        check_config(path / "config.json")
        weights = to_weights(read_safetensors(path / "model.safetensors"))
        return cls(weights, load_tokenizer(path / "tokenizer.json"))

    def token_ids(self, text: str) -> list[int]:
        """[CLS] + the WordPiece ids of the text's first 254 tokens + [SEP]."""
        ids: list[int] = self.tokenizer.encode(text[:MAX_CHARS]).ids
        return ids

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH) -> Array:
        """Embed texts in batches of similar length (less padding), in the order given.

        Args:
            texts: The texts; each is cut to its first 256 tokens, as sentence-transformers does.
            batch_size: Texts per forward pass (memory grows with batch size x length^2).

        Returns:
            A float32 array of shape (len(texts), 384) with unit-length rows.
        """
        if not texts:
            return np.zeros((0, HIDDEN), dtype=np.float32)
        tokens = [self.token_ids(text) for text in texts]
        order = sorted(range(len(tokens)), key=lambda i: -len(tokens[i]))
        result = np.empty((len(tokens), HIDDEN), dtype=np.float32)
        for start in range(0, len(order), max(batch_size, 1)):
            chosen = order[start : start + max(batch_size, 1)]
            lengths = [len(tokens[i]) for i in chosen]
            hidden = forward(self.weights, pad([tokens[i] for i in chosen]), lengths)
            result[chosen] = normalize(mean_pool(hidden, lengths))
        return result
