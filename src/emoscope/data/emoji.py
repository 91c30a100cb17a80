"""The emoji in a corpus and their names: most encoders' vocabularies lack emoji (all-MiniLM-L6-v2 reads the 209
kinds in GoEmotions' train split, in 1,405 places, as [UNK]), and their names are words the encoder knows."""

from __future__ import annotations

from collections.abc import Iterable


def emoji_in(texts: Iterable[str]) -> list[str]:
    """The distinct single-character emoji in `texts`, in code point order."""
    import emoji  # on use: its tables take about 80 ms to import, and most runs never need them

    return sorted({ch for text in texts for ch in set(text) if emoji.is_emoji(ch)})


def emoji_name(ch: str) -> str:
    """The emoji's CLDR short name in plain words: 😂 -> "face with tears of joy"."""
    import emoji

    if not emoji.is_emoji(ch):
        raise ValueError(f"ch must be one emoji character, got {ch!r}")
    return emoji.EMOJI_DATA[ch]["en"].strip(":").replace("_", " ")
