"""Link tokens: made once here, stored only as hashes, derivable from a secret.

A resident's test or survey is reached by a random URL-safe token in its link; the
database keeps only :func:`hash_token` of it (a 192-bit random token needs no key).
Short secrets such as invitation codes are stored as :func:`keyed_hash` (HMAC with
the app secret). A token can also be derived from the
app secret and a code (:func:`derive_token`), so entering the same invitation code
again leads to the same session without storing the token anywhere.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

#: random bytes in a new token: 192 bits, 32 URL-safe characters
TOKEN_BYTES = 24


def hash_token(token: str) -> str:
    """SHA-256 hex of a token's UTF-8 bytes: what the database stores and looks up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def keyed_hash(secret: str, text: str) -> str:
    """HMAC-SHA-256 hex of ``text`` keyed by the app ``secret``: a short secret (an
    invitation code) stored this way cannot be found by hashing every candidate
    without the secret, as an unsalted SHA-256 could be."""
    if not secret:
        raise ValueError("the app secret is empty: cannot hash codes")
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def new_token(nbytes: int = TOKEN_BYTES) -> str:
    """A new random URL-safe link token (``nbytes`` random bytes, base64 without padding)."""
    return secrets.token_urlsafe(nbytes)


def derive_token(secret: str, *parts: str) -> str:
    """A link token derived from ``secret`` and ``parts`` (HMAC-SHA256 of the parts joined
    with ``:`` in UTF-8; URL-safe base64 without padding, 43 characters).

    ``derive_token(secret, "survey-after-test", test_token)`` and
    ``derive_token(secret, f"invitation-{purpose}", code)`` give the tokens the surveys
    and the invitation entry derive today (for ASCII codes, which normalised codes are).
    """
    if not secret:
        raise ValueError("the app secret is empty: cannot derive tokens")
    if not parts:
        raise ValueError("derive_token needs at least one part to derive from")
    message = ":".join(parts).encode("utf-8")
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
