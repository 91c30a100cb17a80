"""Classification heads over the backbone's last hidden states.

Every head exposes its stages as named sub-modules (`attention`, `pooler`, `mlp`, `conv`, `classifier`) so the
representation tracker can hook them by name; each stage returns one vector per text.
"""

from __future__ import annotations

import torch
from torch import nn

from emoscope.core.errors import UserError
from emoscope.core.vocab import HEADS, POOLINGS, check_head_pooling


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens only: padding must not change a text's vector."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "mean":
        return masked_mean(hidden, mask)
    if pooling == "cls":
        return hidden[:, 0]
    raise UserError(f"unknown pooling '{pooling}'; choose one of {', '.join(POOLINGS)}")


class LinearHead(nn.Module):
    """Pooled representation -> dropout -> linear: the strong, simple default."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float, pooling: str = "mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise UserError(f"unknown pooling '{pooling}'; choose one of {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pool(hidden, mask, self.pooling)))


class AttentionPooling(nn.Module):
    """A learned score per token, softmax over real tokens, weighted sum (seed A's attention layer)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.score = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(hidden).squeeze(-1).float()
        scores = scores.masked_fill(mask == 0, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1).to(hidden.dtype)
        return torch.einsum("bt,bth->bh", weights, hidden)


class MLPAttentionHead(nn.Module):
    """Seed A: attention pooling over tokens, then an MLP, then the classifier."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float, mlp_size: int | None = None):
        super().__init__()
        mlp_size = mlp_size or hidden_size
        self.attention = AttentionPooling(hidden_size)
        self.mlp = nn.Sequential(nn.Linear(hidden_size, mlp_size), nn.GELU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(mlp_size, num_labels)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.mlp(self.attention(hidden, mask)))


class ConvMaxPool(nn.Module):
    """Conv1d over tokens, ReLU, global max over real tokens only (seed B)."""

    def __init__(self, hidden_size: int, filters: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv1d(hidden_size, filters, kernel_size, padding=kernel_size // 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Zero the padding first: the kernel must see the same zeros a text alone would be padded with.
        hidden = hidden * mask.unsqueeze(-1).to(hidden.dtype)
        features = torch.relu(self.conv(hidden.transpose(1, 2)))  # [B, filters, T]
        features = features.masked_fill(mask.unsqueeze(1) == 0, float("-inf"))
        return features.max(dim=-1).values


class CNNHead(nn.Module):
    """Seed B: 128 filters of width 5, ReLU, global max pool, dropout 0.42, linear."""

    def __init__(
        self, hidden_size: int, num_labels: int, dropout: float = 0.42, filters: int = 128, kernel_size: int = 5
    ):
        super().__init__()
        self.conv = ConvMaxPool(hidden_size, filters, kernel_size)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(filters, num_labels)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.conv(hidden, mask)))


# The model types whose *ForSequenceClassification the native head reproduces: BERT's pools [CLS] in the base
# model (dense + tanh) then applies dropout and a linear layer; the others' `classifier` reads [CLS] itself.
NATIVE_POOLED = ("bert",)
NATIVE_OWN_POOLING = ("roberta", "xlm-roberta", "mpnet")


class NativeHead(nn.Module):
    """The backbone family's own classification head, taken from transformers' `*ForSequenceClassification`
    with its weights (BERT's pretrained pooler included): a run then exports to that standard class, which
    `pipeline` loads without remote code (emoscope.export.hf)."""

    def __init__(self, classifier: nn.Module, dropout: float, pooler: nn.Module | None = None):
        super().__init__()
        if pooler is not None:
            self.pooler = pooler
            self.dropout = nn.Dropout(dropout)
        self.classifier = classifier
        for module in self.modules():  # MPNet's head takes its dropout from the backbone's config: use the head's
            if isinstance(module, nn.Dropout):
                module.p = dropout

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "pooler"):
            return self.classifier(self.dropout(self.pooler(hidden)))
        return self.classifier(hidden)


def native_parts(model: nn.Module, dropout: float) -> tuple[nn.Module, NativeHead]:
    """(encoder, head) of a `*ForSequenceClassification`, the pooler moved from the encoder to the head so the
    encoder outputs hidden states alone, as for every other head."""
    kind = model.config.model_type
    if kind not in NATIVE_POOLED + NATIVE_OWN_POOLING:
        raise UserError(
            f"--head native knows the {', '.join(NATIVE_POOLED + NATIVE_OWN_POOLING)} classification heads, "
            f"not {kind}'s: use another head (--head linear)"
        )
    encoder = model.base_model
    if kind in NATIVE_OWN_POOLING:
        return encoder, NativeHead(model.classifier, dropout)
    pooler, encoder.pooler = encoder.pooler, None
    return encoder, NativeHead(model.classifier, dropout, pooler)


def build_head(kind: str, hidden_size: int, num_labels: int, dropout: float, pooling: str = "mean") -> nn.Module:
    check_head_pooling(kind, pooling)
    if kind == "linear":
        return LinearHead(hidden_size, num_labels, dropout, pooling)
    if kind == "mlp-attention":
        return MLPAttentionHead(hidden_size, num_labels, dropout)
    if kind == "cnn":
        return CNNHead(hidden_size, num_labels, dropout)
    if kind == "native":
        raise UserError("the native head comes with its backbone: build it with build_classifier")
    raise UserError(f"unknown head '{kind}'; choose one of {', '.join(HEADS)}")
