"""A small thread-safe LRU map: chat models keyed by client-chosen values stay bounded."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
MODEL_CACHE_SIZE = 32  # distinct (model, temperature, reply cap) settings kept per backend


class LRUCache(Generic[V]):
    """At most `maxsize` values; the least recently used goes when a new one would exceed it.

    A server's clients choose model names and temperatures, so an unbounded cache keyed by them
    would grow with every distinct value a client sends.
    """

    def __init__(self, maxsize: int = MODEL_CACHE_SIZE) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}.")
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, create: Callable[[], V]) -> V:
        """The value for `key`, created (outside the lock) and kept if it is not cached yet."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = create()
        with self._lock:
            if key in self._items:  # another thread created it meanwhile: keep one
                self._items.move_to_end(key)
                return self._items[key]
            self._items[key] = value
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
            return value

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
