"""Models: backbones, heads and the classifier that joins them; running a model for probabilities (`inference`),
weights on disk (`weights`)."""

from emoscope.models.backbone import DEFAULT_BACKBONE, encoder_layers, load_backbone, resolve_backbone
from emoscope.models.classifier import EmotionClassifier, build_classifier
from emoscope.models.heads import HEADS, build_head, masked_mean

__all__ = [
    "DEFAULT_BACKBONE",
    "HEADS",
    "EmotionClassifier",
    "build_classifier",
    "build_head",
    "encoder_layers",
    "load_backbone",
    "masked_mean",
    "resolve_backbone",
]
