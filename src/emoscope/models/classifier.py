"""The emotion classifier: a Hugging Face encoder and one head, with named hook points in depth order."""

from __future__ import annotations

import torch
from torch import nn

from emoscope.core.vocab import check_head_pooling
from emoscope.models.backbone import encoder_layers, load_backbone
from emoscope.models.heads import build_head, native_parts

_HEAD_POINTS = ("attention", "pooler", "mlp", "conv", "classifier")


class EmotionClassifier(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, dropout_samples: int | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Logits [texts, labels]; with `dropout_samples` K, a tuple of K logits from one pass of the encoder
        and K passes of the head, each with its own dropout mask (multi-sample dropout, for training)."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.heads(hidden, attention_mask, dropout_samples)

    def heads(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, dropout_samples: int | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The head over the encoder's last hidden states, once or `dropout_samples` times."""
        if dropout_samples is None:
            return self.head(hidden, attention_mask)
        return tuple(self.head(hidden, attention_mask) for _ in range(dropout_samples))

    def hook_points(self) -> dict[str, nn.Module]:
        """Named modules whose outputs the tracker records, shallow to deep.

        `embeddings` and `layer_i` output one vector per token; the head's stages one per text.
        """
        points: dict[str, nn.Module] = {"embeddings": self.backbone.embeddings}
        for i, layer in enumerate(encoder_layers(self.backbone), start=1):
            points[f"layer_{i}"] = layer
        for name in _HEAD_POINTS:
            if hasattr(self.head, name):
                points[name] = getattr(self.head, name)
        return points

    def freeze(self, train_last_layers: int | None, freeze_embeddings: bool) -> None:
        """Partial fine-tuning: only the last N encoder layers (and the head) learn."""
        if freeze_embeddings:
            self.backbone.embeddings.requires_grad_(False)
        if train_last_layers is None:
            return
        layers = encoder_layers(self.backbone)
        self.backbone.embeddings.requires_grad_(False)
        for layer in layers[: max(len(layers) - train_last_layers, 0)]:
            layer.requires_grad_(False)


def build_classifier(
    backbone: str | object,
    head: str,
    num_labels: int,
    *,
    head_dropout: float,
    pooling: str = "mean",
    backbone_dropout: float | None = None,
    trust_pickle: bool = False,
) -> EmotionClassifier:
    """`backbone` is a name/folder (pretrained weights) or a transformers config (weights loaded later)."""
    if head == "native":
        check_head_pooling(head, pooling)
        full = load_backbone(backbone, dropout=backbone_dropout, trust_pickle=trust_pickle, num_labels=num_labels)
        return EmotionClassifier(*native_parts(full, head_dropout))
    encoder = load_backbone(backbone, dropout=backbone_dropout, trust_pickle=trust_pickle)
    return EmotionClassifier(encoder, build_head(head, encoder.config.hidden_size, num_labels, head_dropout, pooling))
