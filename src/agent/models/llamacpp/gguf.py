"""A tiny GGUF metadata reader: just enough to learn a model's special tokens and context size."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

GGUF_MAGIC = b"GGUF"
ARRAY = 9
STRING = 8
# Scalar value types of the GGUF format: type id -> struct format.
SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
# llama.cpp's token types; all but NORMAL and BYTE are matched as special text by its tokenizer.
TOKEN_NORMAL = 1
TOKEN_UNKNOWN = 2
TOKEN_CONTROL = 3
TOKEN_USER_DEFINED = 4
TOKEN_UNUSED = 5
SPECIAL_TOKEN_TYPES = frozenset({TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED})


class GGUFFormatError(ValueError):
    """Raised for a file that is not a readable GGUF model."""


def _read(stream: BinaryIO, size: int) -> bytes:
    """Read exactly `size` bytes or fail: a short read means a truncated file."""
    data = stream.read(size)
    if len(data) != size:
        raise GGUFFormatError("the file ends inside its metadata (truncated?)")
    return data


def _unpack(stream: BinaryIO, fmt: str) -> Any:
    """Read one little-endian scalar."""
    return struct.unpack(fmt, _read(stream, struct.calcsize(fmt)))[0]


def _string(stream: BinaryIO) -> str:
    """Read a length-prefixed UTF-8 string."""
    return _read(stream, _unpack(stream, "<Q")).decode("utf-8", errors="replace")


def _value(stream: BinaryIO, kind: int, keep: bool) -> Any:
    """Read (or, when not kept, skip cheaply) one value of the given type."""
    if kind == STRING:
        size = _unpack(stream, "<Q")
        if not keep:
            stream.seek(size, 1)
            return None
        return _read(stream, size).decode("utf-8", errors="replace")
    if kind == ARRAY:
        item_kind, count = _unpack(stream, "<I"), _unpack(stream, "<Q")
        if item_kind in SCALARS and not keep:
            stream.seek(struct.calcsize(SCALARS[item_kind]) * count, 1)
            return None
        if item_kind in SCALARS:
            fmt = SCALARS[item_kind]
            data = _read(stream, struct.calcsize(fmt) * count)
            return list(struct.unpack(f"<{count}{fmt[1]}", data))
        return [_value(stream, item_kind, keep) for _ in range(count)]
    if kind not in SCALARS:
        raise GGUFFormatError(f"unknown metadata value type {kind}")
    return _unpack(stream, SCALARS[kind])


def read_metadata(path: Path, wanted: Callable[[str], bool]) -> dict[str, Any]:
    """Read the metadata keys `wanted` accepts from a GGUF file's header (tensors untouched)."""
    with path.open("rb") as stream:
        if stream.read(4) != GGUF_MAGIC:
            raise GGUFFormatError("not a GGUF file (bad magic bytes)")
        version = _unpack(stream, "<I")
        if version < 2:
            raise GGUFFormatError(f"GGUF version {version} is too old")
        _unpack(stream, "<Q")  # tensor count
        metadata: dict[str, Any] = {}
        for _ in range(_unpack(stream, "<Q")):
            key = _string(stream)
            keep = wanted(key)
            value = _value(stream, _unpack(stream, "<I"), keep)
            if keep:
                metadata[key] = value
        return metadata


def special_tokens(path: Path) -> list[str]:
    """The texts llama.cpp's tokenizer would turn into control/special tokens for this model."""
    keys = {"tokenizer.ggml.tokens", "tokenizer.ggml.token_type"}
    metadata = read_metadata(path, keys.__contains__)
    tokens = metadata.get("tokenizer.ggml.tokens") or []
    types = metadata.get("tokenizer.ggml.token_type") or []
    return [text for text, kind in zip(tokens, types, strict=False) if kind in SPECIAL_TOKEN_TYPES]


def context_length(path: Path) -> int | None:
    """The context length the model was trained with (`<arch>.context_length`), if recorded."""
    metadata = read_metadata(path, lambda key: key.endswith(".context_length"))
    lengths = [value for value in metadata.values() if isinstance(value, int)]
    return lengths[0] if lengths else None
