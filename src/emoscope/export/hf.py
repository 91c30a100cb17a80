"""A run as a `transformers` folder: `pipeline(..., trust_remote_code=True)` loads it, any head included, with
the modeling code of `hf_modeling.py` copied beside the weights."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

from safetensors.torch import load_file

from emoscope.core.checks import check_destination
from emoscope.core.errors import UserError
from emoscope.core.runfolder import (
    BACKBONE_CONFIG,
    ENSEMBLE_INFO,
    HF_EXPORT,
    TOKENIZER,
    WEIGHTS,
    check_run_dir,
    read_config,
    read_labels,
)
from emoscope.inference.predictor import weights_file
from emoscope.models.weights import save_weights


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
