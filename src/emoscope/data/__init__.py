"""Data, the first stage: GoEmotions in every layout, as `Example`s with labels in a chosen `Taxonomy`;
verified downloads.

`batching` (tokenised cache, length-grouped batches) needs torch and is imported on its own.
"""

from emoscope.data.formats import (
    FORMATS,
    MAX_TEXT_CHARS,
    Example,
    ReadResult,
    apply_taxonomy,
    detect_format,
    read_examples,
)
from emoscope.data.labels import (
    EKMAN_LABELS,
    ORIGINAL_LABELS,
    SENTIMENT_LABELS,
    TAXONOMIES,
    Taxonomy,
    load_taxonomy,
)
from emoscope.data.source import (
    BASE_URL,
    OFFICIAL_FILES,
    GoEmotions,
    cache_dir,
    check_url,
    download_goemotions,
    load_examples,
    load_goemotions,
    resolve_data_dir,
    verify_data_dir,
)

__all__ = [
    "BASE_URL",
    "EKMAN_LABELS",
    "FORMATS",
    "MAX_TEXT_CHARS",
    "OFFICIAL_FILES",
    "ORIGINAL_LABELS",
    "SENTIMENT_LABELS",
    "TAXONOMIES",
    "Example",
    "GoEmotions",
    "ReadResult",
    "Taxonomy",
    "apply_taxonomy",
    "cache_dir",
    "check_url",
    "detect_format",
    "download_goemotions",
    "load_examples",
    "load_goemotions",
    "load_taxonomy",
    "read_examples",
    "resolve_data_dir",
    "verify_data_dir",
]
