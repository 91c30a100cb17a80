"""The GoEmotions label sets: the 28 original labels and their Ekman and sentiment groupings.

Names come from a data dir's `emotions.txt`, `ekman_mapping.json` and `sentiment_dict.json` when it has
them, else from the copies shipped in this package, so a taxonomy is always available offline. The mapping
files are checked against `emotions.txt`: a grouping that silently lost an emotion would bias every metric.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from emoscope.core.errors import DataError, UserError
from emoscope.core.vocab import TAXONOMIES

PACKAGE_DIR = Path(__file__).resolve().parent
EMOTIONS_FILE, EKMAN_FILE, SENTIMENT_FILE = "emotions.txt", "ekman_mapping.json", "sentiment_dict.json"
NEUTRAL = "neutral"
EKMAN_LABELS = ("anger", "disgust", "fear", "joy", "sadness", "surprise", NEUTRAL)
SENTIMENT_LABELS = ("positive", "negative", "ambiguous", NEUTRAL)
MIXED = "mixed"  # a text whose labels fall in more than one non-neutral sentiment group
# The colour of each sentiment group in every figure: the PNGs of `emoscope analyze` and the report's Plotly.
SENTIMENT_COLOURS = {
    "positive": "#2B9348",
    "negative": "#D62828",
    "ambiguous": "#F77F00",
    NEUTRAL: "#9E9E9E",
    MIXED: "#7B2CBF",
    "other": "#444444",
}


def sentiment_colour(group: str | None) -> str:
    """The palette colour of a group; "other" for a group outside it (a label with no sentiment group)."""
    return SENTIMENT_COLOURS.get(group or "other", SENTIMENT_COLOURS["other"])


def text_sentiment(label_groups: Iterable[str]) -> str | None:
    """The sentiment group of a text from its labels' groups: `mixed` when they disagree (neutral aside),
    neutral when every label is neutral, None for a text without labels."""
    found = set(label_groups)
    rest = found - {NEUTRAL}
    if len(rest) > 1:
        return MIXED
    return next(iter(rest)) if rest else NEUTRAL if found else None


@dataclass(frozen=True)
class Taxonomy:
    name: str  # "original" | "ekman" | "sentiment"
    labels: tuple[str, ...]  # output label names, neutral last
    # original emotion name -> sentiment group; insertion order is the order of emotions.txt
    sentiment_of: dict[str, str]
    ekman_of: dict[str, str]  # original emotion name -> Ekman group ("neutral" for neutral)

    @property
    def original_labels(self) -> tuple[str, ...]:
        """The 28 original names in emotions.txt order: what readers' label ids index."""
        return tuple(self.ekman_of)

    @cached_property
    def _target_of(self) -> tuple[int, ...]:
        index = {name: i for i, name in enumerate(self.labels)}
        group = {"original": lambda n: n, "ekman": self.ekman_of.get, "sentiment": self.sentiment_of.get}
        return tuple(index[group[self.name](n)] for n in self.original_labels)

    def coarse_groups(self) -> tuple[tuple[str, ...], np.ndarray]:
        """(names, membership [labels, groups] 0/1) of the Ekman and sentiment groups of two or more of this
        taxonomy's labels: the label hierarchy the auxiliary losses train on (`--aux_weight`). A group of one
        label (disgust, neutral) would only repeat that label's own loss and is left out."""
        if self.name != "original":
            raise UserError(f"the Ekman and sentiment groups are groups of the original emotions, not of {self.name}")
        names, columns = [], []
        for kind, group_of in (("ekman", self.ekman_of), ("sentiment", self.sentiment_of)):
            for group in dict.fromkeys(group_of.values()):
                members = [group_of[label] == group for label in self.labels]
                if sum(members) > 1:
                    names.append(f"{kind}:{group}")
                    columns.append(members)
        return tuple(names), np.array(columns, dtype=np.float32).T

    def map_labels(self, original_ids: Iterable[int]) -> tuple[int, ...]:
        """Original label ids -> this taxonomy's ids: the sorted union of their groups (multi-label)."""
        table = self._target_of
        try:
            return tuple(sorted({table[i] for i in original_ids}))
        except (IndexError, TypeError) as e:
            raise UserError(f"original label ids must be integers 0..{len(table) - 1}: {e}") from None


def _label_file(name: str, data_dir: str | Path | None) -> Path:
    """The data dir's copy when it has one (a user may ship their own), else the packaged one."""
    if data_dir is not None and (Path(data_dir) / name).is_file():
        return Path(data_dir) / name
    return PACKAGE_DIR / name


def read_emotions(path: str | Path) -> tuple[str, ...]:
    """The original label names, one a line; neutral must be last (the order every run folder relies on)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(path, None, f"invalid UTF-8 at byte {e.start}") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    names: list[str] = []
    for line_no, line in enumerate(text.split("\n"), 1):
        name = line.strip()
        if not name:
            continue
        if name in names:
            raise DataError(path, line_no, f"duplicate label name {name!r}")
        names.append(name)
    if not names or names[-1] != NEUTRAL:
        found = repr(names[-1]) if names else "no labels"
        raise DataError(path, None, f"the last label must be {NEUTRAL!r}, found {found}")
    return tuple(names)


def read_grouping(path: str | Path, groups: tuple[str, ...], emotions: tuple[str, ...]) -> dict[str, str]:
    """A `{group: [emotion, ...]}` file as `{emotion: group}` in emotions.txt order, neutral -> neutral.

    Every non-neutral emotion must be in exactly one group, and every name must be in emotions.txt.
    """
    try:
        raw = json.loads(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(path, None, f"invalid UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, f"invalid JSON: {e.msg} (column {e.colno})") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise DataError(path, None, "expected a JSON object mapping each group to a list of emotion names")
    expected = set(groups) - {NEUTRAL}
    if set(raw) != expected:
        raise DataError(path, None, f"groups must be {', '.join(sorted(expected))}; found {', '.join(raw)}")
    group_of: dict[str, str] = {}
    for group, members in raw.items():
        for name in members:
            if name not in emotions or name == NEUTRAL:
                raise DataError(path, None, f"{name!r} ({group}) is not an emotion of {EMOTIONS_FILE}")
            if name in group_of:
                raise DataError(path, None, f"{name!r} is in both {group_of[name]!r} and {group!r}")
            group_of[name] = group
    missing = [n for n in emotions if n != NEUTRAL and n not in group_of]
    if missing:
        raise DataError(path, None, f"emotions of {EMOTIONS_FILE} in no group: {', '.join(missing)}")
    return {n: group_of.get(n, NEUTRAL) for n in emotions}


def load_taxonomy(name: str, data_dir: str | Path | None = None) -> Taxonomy:
    """The label set `name` (original, ekman, sentiment) from `data_dir`'s files or the packaged ones."""
    if name not in TAXONOMIES:
        raise UserError(f"unknown taxonomy {name!r}; choose one of: {', '.join(TAXONOMIES)}")
    emotions = read_emotions(_label_file(EMOTIONS_FILE, data_dir))
    ekman_of = read_grouping(_label_file(EKMAN_FILE, data_dir), EKMAN_LABELS, emotions)
    sentiment_of = read_grouping(_label_file(SENTIMENT_FILE, data_dir), SENTIMENT_LABELS, emotions)
    labels = {"original": emotions, "ekman": EKMAN_LABELS, "sentiment": SENTIMENT_LABELS}[name]
    return Taxonomy(name, labels, sentiment_of, ekman_of)


ORIGINAL_LABELS: tuple[str, ...] = read_emotions(PACKAGE_DIR / EMOTIONS_FILE)
