"""Copied as `modeling_emoscope.py` into a Hugging Face export: self-contained (torch + transformers only).

Mean pooling is not among transformers' built-in classification heads, so the export carries this small
class; `AutoModelForSequenceClassification` and `pipeline` load it with `trust_remote_code=True`.
"""

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class EmoscopeConfig(PretrainedConfig):
    model_type = "emoscope"

    def __init__(self, backbone=None, pooling="mean", **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone or {}
        self.pooling = pooling


class EmoscopeForSequenceClassification(PreTrainedModel):
    config_class = EmoscopeConfig
    base_model_prefix = "backbone"

    def __init__(self, config):
        super().__init__(config)
        backbone_config = AutoConfig.for_model(**config.backbone)
        self.backbone = AutoModel.from_config(backbone_config)
        if getattr(self.backbone, "pooler", None) is not None:
            self.backbone.pooler = None
        self.classifier = nn.Linear(backbone_config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.config.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        logits = self.classifier(pooled)
        loss = None
        if labels is not None:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return SequenceClassifierOutput(loss=loss, logits=logits)
