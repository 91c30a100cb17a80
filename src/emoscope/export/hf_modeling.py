"""Copied as `modeling_emoscope.py` into a Hugging Face export: self-contained (torch + transformers only).

emoscope's heads are not among transformers' built-in classification heads, so the export carries them, with
the module names of emoscope.models.heads so a run's weights load unchanged. `AutoModelForSequenceClassification`
and `pipeline` load them with `trust_remote_code=True`; the pipeline truncates texts to the run's max_len (the
tokenizer's `model_max_length`), as emoscope's Predictor does.
"""

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel, TextClassificationPipeline
from transformers.modeling_outputs import SequenceClassifierOutput


def masked_mean(hidden, mask):
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class LinearHead(nn.Module):
    """Mean or [CLS] pooling, dropout, linear."""

    def __init__(self, hidden_size, num_labels, dropout=0.0, pooling="mean"):
        super().__init__()
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden, mask):
        pooled = hidden[:, 0] if self.pooling == "cls" else masked_mean(hidden, mask)
        return self.classifier(self.dropout(pooled))


class AttentionPooling(nn.Module):
    """A learned score per token, softmax over real tokens, weighted sum."""

    def __init__(self, hidden_size):
        super().__init__()
        self.score = nn.Linear(hidden_size, 1)

    def forward(self, hidden, mask):
        scores = self.score(hidden).squeeze(-1).float()
        scores = scores.masked_fill(mask == 0, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1).to(hidden.dtype)
        return torch.einsum("bt,bth->bh", weights, hidden)


class MLPAttentionHead(nn.Module):
    """Attention pooling over tokens, an MLP, the classifier."""

    def __init__(self, hidden_size, num_labels, dropout=0.0, mlp_size=None):
        super().__init__()
        mlp_size = mlp_size or hidden_size
        self.attention = AttentionPooling(hidden_size)
        self.mlp = nn.Sequential(nn.Linear(hidden_size, mlp_size), nn.GELU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(mlp_size, num_labels)

    def forward(self, hidden, mask):
        return self.classifier(self.mlp(self.attention(hidden, mask)))


class ConvMaxPool(nn.Module):
    """Conv1d over tokens, ReLU, max over real tokens only (padding zeroed first)."""

    def __init__(self, hidden_size, filters, kernel_size):
        super().__init__()
        self.conv = nn.Conv1d(hidden_size, filters, kernel_size, padding=kernel_size // 2)

    def forward(self, hidden, mask):
        hidden = hidden * mask.unsqueeze(-1).to(hidden.dtype)
        features = torch.relu(self.conv(hidden.transpose(1, 2)))
        features = features.masked_fill(mask.unsqueeze(1) == 0, float("-inf"))
        return features.max(dim=-1).values


class CNNHead(nn.Module):
    """Convolution + global max pool, dropout, linear."""

    def __init__(self, hidden_size, num_labels, dropout=0.0, filters=128, kernel_size=5):
        super().__init__()
        self.conv = ConvMaxPool(hidden_size, filters, kernel_size)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(filters, num_labels)

    def forward(self, hidden, mask):
        return self.classifier(self.dropout(self.conv(hidden, mask)))


HEADS = {"linear": LinearHead, "mlp-attention": MLPAttentionHead, "cnn": CNNHead}


class EmoscopeConfig(PretrainedConfig):
    model_type = "emoscope"

    def __init__(self, backbone=None, head="linear", head_options=None, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone or {}
        self.head = head
        self.head_options = head_options or {}


class EmoscopeForSequenceClassification(PreTrainedModel):
    config_class = EmoscopeConfig
    base_model_prefix = "backbone"

    def __init__(self, config):
        super().__init__(config)
        backbone_config = AutoConfig.for_model(**config.backbone)
        self.backbone = AutoModel.from_config(backbone_config)
        if getattr(self.backbone, "pooler", None) is not None:
            self.backbone.pooler = None
        self.head = HEADS[config.head](backbone_config.hidden_size, config.num_labels, **config.head_options)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.head(hidden, attention_mask)
        loss = None
        if labels is not None:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return SequenceClassifierOutput(loss=loss, logits=logits)


class EmoscopeTextClassificationPipeline(TextClassificationPipeline):
    """transformers' text-classification pipeline, truncating every text to the tokenizer's model_max_length."""

    def _sanitize_parameters(self, **kwargs):
        preprocess, forward, postprocess = super()._sanitize_parameters(**kwargs)
        return {"truncation": True, **preprocess}, forward, postprocess
