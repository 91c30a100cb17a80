"""The closed vocabularies of options, defined once and torch-free: the config, the CLI and the modules that
implement each option (heads, data labels, thresholds, inference) all import them from here."""

from __future__ import annotations

from emoscope.core.errors import UserError

HEADS = ("linear", "mlp-attention", "cnn", "native")  # native: the backbone's own *ForSequenceClassification head
POOLINGS = ("mean", "cls")
TAXONOMIES = ("original", "ekman", "sentiment")
THRESHOLD_STRATEGIES = ("fixed", "global", "per_emotion", "per_emotion_bagged")
# The tuned strategy where no run says otherwise (`emoscope baseline`'s default; an ensemble of runs tuned differently),
# as in cpu-default: ahead of per emotion on dev 2-fold in 8 of 8 runs and ensembles, and for the floor (docs/tried.md)
TUNED_THRESHOLD_STRATEGY = "per_emotion_bagged"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BACKENDS = ("torch", "onnx", "onnx-int8")  # what runs a Predictor's network: torch, the ONNX export, its int8 model
EXPORT_FORMATS = ("transformers", "onnx")
QUANTIZATIONS = ("int8",)  # of an ONNX export
LONG_TEXT_MODES = ("truncate", "chunk")  # a text past max_len: cut, or scored in overlapping windows
WINDOW_COMBINES = ("max", "mean")  # how the windows of one text become its probabilities
ABLATION_KINDS = ("reset", "mean_update")  # how `analyze --ablation` knocks out an encoder layer


def check_head_pooling(head: str, pooling: str) -> None:
    """Only the linear head pools with `pooling`; the others pool their own way (learned attention, max over a
    convolution), so asking them for another pooling would be silently ignored."""
    if head != "linear" and pooling != POOLINGS[0]:
        raise UserError(
            f"--pooling {pooling} applies to the linear head only; the {head} head pools its own way "
            f"(leave --pooling at {POOLINGS[0]})"
        )
