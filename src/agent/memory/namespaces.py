"""Store namespaces: every label the project writes is derived from user text by one encoding.

LangGraph's stores refuse labels that are empty or contain '.' or NUL, yet thread ids are often
dotted ("session.42") and user ids are often emails. `label()` maps any non-empty text to a
valid label, injectively, so two different ids can never share a namespace.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

USERS = "users"


def label(text: str) -> str:
    """A valid, injective store-namespace label for any non-empty text.

    Percent-encodes everything but letters, digits, '-', '_' and '~' ('.' included), so the
    result never contains '.', NUL or a separator, and `unlabel(label(x)) == x`.

    Args:
        text: A thread id, user id or other identifier chosen outside the project.

    Returns:
        The encoded label (ASCII; equal to `text` for plain identifiers like "abc-123").

    Raises:
        ValueError: If `text` is empty or not a string.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"A namespace label needs a non-empty string, got {text!r}.")
    return quote(text, safe="-_~", errors="surrogatepass").replace(".", "%2E")


def unlabel(encoded: str) -> str:
    """The text a label was made from (the inverse of `label`)."""
    return unquote(encoded, errors="surrogatepass")


def user_namespace(user_id: str, *labels: str) -> tuple[str, ...]:
    """The namespace of a user's own data: under ("users", label(user_id)), never elsewhere.

    Args:
        user_id: The user's identity as the server or application knows it (any spelling).
        *labels: Labels below the user's root, e.g. "memories".

    Returns:
        ("users", label(user_id), *labels).

    Raises:
        ValueError: If `user_id` is empty or not a string.
    """
    return (USERS, label(user_id), *labels)
