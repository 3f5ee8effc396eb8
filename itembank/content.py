"""What an item version says and how an answer to it is scored, as plain values.

The one scoring rule (``score_choice``) is used by the ORM ``ItemVersion`` and by the
frozen ``VersionContent`` other packages receive, so both always score alike.
"""
from __future__ import annotations

from dataclasses import dataclass


def score_choice(key: int | None, reverse: bool, n_options: int, choice: int) -> int:
    """Score of a 1-based option choice: 0/1 against the key, or the rating category."""
    if key is not None:
        return int(choice == key)
    return (n_options - choice) if reverse else (choice - 1)


def _lang(locale: str) -> str:
    return "en" if locale.startswith("en") else "zh"


@dataclass(frozen=True)
class VersionContent:
    """One immutable item version as delivery shows and scores it (no database object)."""

    id: int
    item_id: int
    item_code: str
    item_type: str
    version: int
    stem_zh: str
    stem_en: str
    #: ({"zh": ..., "en": ...}, ...) in display order; rating categories in score order
    options: tuple[dict, ...]
    key: int | None
    reverse: bool
    media: str | None

    def stem(self, locale: str) -> str:
        return self.stem_en if _lang(locale) == "en" else self.stem_zh

    def option_texts(self, locale: str) -> list[str]:
        lang = _lang(locale)
        return [o[lang] for o in self.options]

    def score(self, choice: int) -> int:
        """Score of a 1-based option choice (see :func:`score_choice`)."""
        return score_choice(self.key, self.reverse, len(self.options), choice)
