"""A run as a Hugging Face folder, with its model card.

A run of `--head native` becomes its backbone family's standard `*ForSequenceClassification` (config.json,
model.safetensors, the tokenizer): `pipeline("text-classification", model=OUT, top_k=None)` loads it without
remote code, as platforms that refuse remote code require. The other heads are emoscope's own modules, so
their folder carries them as code (`export_hf`, with `hf_modeling.py` copied in) and loading it needs
`trust_remote_code=True`.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from emoscope.core.checks import check_destination
from emoscope.core.errors import UserError
from emoscope.core.runfolder import (
    BACKBONE_CONFIG,
    ENSEMBLE_INFO,
    HF_EXPORT,
    THRESHOLDS,
    TOKENIZER,
    WEIGHTS,
    check_run_dir,
    read_config,
    read_labels,
    read_thresholds,
)
from emoscope.export.card import model_card
from emoscope.inference.predictor import weights_file
from emoscope.models.weights import save_weights

README = "README.md"


def remote_code_reason(run_dir: Path) -> str | None:
    """Why a run's transformers export needs `trust_remote_code=True`; None when it loads without."""
    head = read_config(run_dir).head
    if head == "native":
        return None
    return (
        f"its {head} head is emoscope's own module, not a transformers class, so loading it needs "
        "trust_remote_code=True; a run trained with --head native exports to a folder that loads without"
    )


def export_transformers(run_dir: str | Path, out_dir: str | Path | None = None) -> tuple[Path, str | None]:
    """(the folder, why it needs remote code or None): the standard class for a native run, else emoscope's
    remote-code folder; both with the model card (README.md)."""
    run_dir = Path(run_dir)
    if (run_dir / ENSEMBLE_INFO).is_file():
        raise UserError(f"{run_dir} is an ensemble: ensembles do not export to transformers, only single runs do")
    check_run_dir(run_dir)
    reason = remote_code_reason(run_dir)
    out = Path(out_dir) if out_dir else run_dir / HF_EXPORT
    if reason:
        export_hf(run_dir, out)
    else:
        export_native(run_dir, out)
    if (run_dir / THRESHOLDS).is_file():
        shutil.copy(run_dir / THRESHOLDS, out / THRESHOLDS)
    (out / README).write_text(model_card(run_dir, remote_code=reason), encoding="utf-8")
    return out, reason


def export_native(run_dir: Path, out: Path) -> None:
    """The run's weights under the names of its family's `*ForSequenceClassification`, whose config.json says
    multi-label (sigmoid scores) and carries the labels and the thresholds chosen on dev."""
    config = read_config(run_dir)
    labels = read_labels(run_dir)["labels"]
    thresholds = read_thresholds(run_dir, labels)
    hf_config = AutoConfig.from_pretrained(run_dir / BACKBONE_CONFIG)
    hf_config.update(
        {
            "problem_type": "multi_label_classification",
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
            "thresholds": {label: float(t) for label, t in zip(labels, thresholds, strict=True)},
        }
    )
    model = AutoModelForSequenceClassification.from_config(hf_config, dtype=torch.float32)
    model.load_state_dict(hf_names(load_file(str(weights_file(run_dir))), model.base_model_prefix))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    # The pipeline cuts a text at model_max_length when called with truncation=True, as Predictor does.
    AutoTokenizer.from_pretrained(run_dir / TOKENIZER, model_max_length=config.max_len).save_pretrained(out)


def hf_names(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """emoscope's weight names to transformers': the encoder under the base-model prefix, BERT's pooler back in
    it, the head's own modules at the top (see `emoscope.models.heads.native_parts`)."""
    renamed = {}
    for name, tensor in state.items():
        owner, _, rest = name.partition(".")
        renamed[f"{prefix}.{rest}" if owner == "backbone" or rest.startswith("pooler.") else rest] = tensor
    return renamed


def export_hf(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """A `transformers` folder for a run of any head: `pipeline("text-classification", model=out, top_k=None,
    trust_remote_code=True)` gives the same probabilities as `Predictor`, long texts truncated to the run's
    max_len alike (the exported tokenizer's `model_max_length`)."""
    run_dir = Path(run_dir)
    if (run_dir / ENSEMBLE_INFO).is_file():
        raise UserError(f"{run_dir} is an ensemble: ensembles do not export to transformers, only single runs do")
    check_run_dir(run_dir)
    weights = weights_file(run_dir)
    config = read_config(run_dir)
    state = load_file(str(weights))
    # The head's sizes come from its weights, so they cannot disagree with them.
    if config.head == "linear":
        head_options = {"pooling": config.pooling}
    elif config.head == "mlp-attention":
        head_options = {"mlp_size": state["head.mlp.0.weight"].shape[0]}
    else:
        filters, _, kernel_size = state["head.conv.conv.weight"].shape
        head_options = {"filters": filters, "kernel_size": kernel_size}
    out = Path(out_dir) if out_dir else run_dir / HF_EXPORT
    check_destination(out, 2 * weights.stat().st_size)
    out.mkdir(parents=True, exist_ok=True)
    labels = read_labels(run_dir)["labels"]
    backbone = json.loads((run_dir / BACKBONE_CONFIG).read_text())
    hf_config = {
        "architectures": ["EmoscopeForSequenceClassification"],
        "model_type": "emoscope",
        "auto_map": {
            "AutoConfig": "modeling_emoscope.EmoscopeConfig",
            "AutoModelForSequenceClassification": "modeling_emoscope.EmoscopeForSequenceClassification",
        },
        "custom_pipelines": {
            "text-classification": {
                "impl": "modeling_emoscope.EmoscopeTextClassificationPipeline",
                "pt": ["AutoModelForSequenceClassification"],
            }
        },
        "backbone": backbone,
        "head": config.head,
        "head_options": {"dropout": config.head_dropout, **head_options},
        "problem_type": "multi_label_classification",
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }
    (out / "config.json").write_text(json.dumps(hf_config, indent=1))
    (out / "modeling_emoscope.py").write_text(resources.files("emoscope.export").joinpath("hf_modeling.py").read_text())
    save_weights(state, out / WEIGHTS, {"format": "pt"})
    for item in (run_dir / TOKENIZER).iterdir():
        shutil.copy(item, out / item.name)
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    (out / "tokenizer_config.json").write_text(
        json.dumps({**tokenizer_config, "model_max_length": config.max_len}, indent=2)
    )
    return out
