"""`emoscope analyze --ablation`: which encoder layers the trained model's test predictions depend on.

Each encoder layer is knocked out in two ways, one test-split pass each: `reset` loads that layer's weights
from the backbone before fine-tuning (what training changed there is undone), `mean` replaces the layer's
output at every token by the mean activation over the probe texts (what the layer passes on is removed).
The test texts are scored with the run's thresholds and the drop of macro-F1 and of every emotion's F1 from
the intact model gets a paired bootstrap interval over test texts (the same resamples for every layer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from emoscope.analysis import figures as fig
from emoscope.analysis.predictions import decide
from emoscope.analysis.probe import read_probe
from emoscope.analysis.tracker import capture_texts
from emoscope.analysis.uncertainty import interval, resample_counts
from emoscope.errors import UserError
from emoscope.evaluate.metrics import read_predictions
from emoscope.models import encoder_layers, load_backbone
from emoscope.predict import Predictor
from emoscope.runfolder import ANALYSIS, eval_file, probe_path, split_predictions

ABLATION = "layer_ablation.csv"
KINDS = ("reset", "mean")


def per_label_f1(truth: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[R, labels] F1 of each label in each resample (draw counts [R, n]); 0 where a label has no positive
    and no prediction, as sklearn's zero_division=0."""
    t, p = truth.astype(np.float32), predicted.astype(np.float32)
    tp, fp, fn = weights @ (t * p), weights @ ((1 - t) * p), weights @ (t * (1 - p))
    return np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)


def layer_ablation(run_dir: str | Path, resamples: int = 1000, seed: int = 0, batch_size: int = 64) -> Path:
    """Write `analysis/layer_ablation.csv` (`kind,layer,label,f1,drop,drop_ci95_low,drop_ci95_high`; label
    `macro` is the macro-F1) and `layer_ablation.png` (the reset drops, layer x emotion); return the CSV."""
    run_dir = Path(run_dir)
    test = eval_file(run_dir, split_predictions("test"))
    if not test.is_file():
        raise UserError(f"{test} not found: score the run on test before --ablation")
    predictor = Predictor(run_dir, precision="fp32")
    labels, model = predictor.labels, predictor.model
    preds = read_predictions(test, labels)
    thresholds = dict(zip(labels, predictor.thresholds.tolist(), strict=True))
    layers = encoder_layers(model.backbone)
    original = encoder_layers(load_backbone(predictor.config.backbone))
    if len(original) != len(layers):
        raise UserError(f"backbone {predictor.config.backbone} has {len(original)} layers, the run {len(layers)}")
    means = _probe_means(run_dir, predictor, len(layers), batch_size)

    def scored() -> np.ndarray:
        return decide(predictor.predict_proba(preds.texts, batch_size), labels, thresholds)

    weights = np.vstack(
        [np.ones((1, len(preds.texts)), np.float32), resample_counts(len(preds.texts), resamples, seed)]
    )
    base = per_label_f1(preds.truth, scored(), weights)
    rows = []
    for k, layer in enumerate(layers, start=1):
        for kind in KINDS:
            if kind == "reset":
                kept = {name: value.clone() for name, value in layer.state_dict().items()}
                layer.load_state_dict(original[k - 1].state_dict())
                try:
                    f1 = per_label_f1(preds.truth, scored(), weights)
                finally:
                    layer.load_state_dict(kept)
            else:
                handle = layer.register_forward_hook(_constant_output(means[k - 1]))
                try:
                    f1 = per_label_f1(preds.truth, scored(), weights)
                finally:
                    handle.remove()
            for name, before, after in [("macro", base.mean(1), f1.mean(1))] + [
                (labels[j], base[:, j], f1[:, j]) for j in range(len(labels))
            ]:
                drop = before - after
                rows.append([kind, f"layer_{k}", name, after[0], drop[0], *interval(drop[1:])])
    out = run_dir / ANALYSIS
    out.mkdir(exist_ok=True)
    path = fig.write_csv(
        out / ABLATION, ["kind", "layer", "label", "f1", "drop", "drop_ci95_low", "drop_ci95_high"], rows
    )
    reset = np.array(
        [[r[4] for r in rows if r[0] == "reset" and r[1] == f"layer_{k}"][1:] for k in range(1, len(layers) + 1)]
    )
    bound = max(float(np.nanmax(np.abs(reset))), 1e-6) if reset.size else 1.0
    fig.plot_matrix(
        out / "layer_ablation.png",
        reset.T,
        list(labels),
        [f"layer_{k}" for k in range(1, len(layers) + 1)],
        "test F1 drop when a layer is reset to its pre-fine-tuning weights",
        cmap="RdBu_r",
        vmin=-bound,
        vmax=bound,
    )
    return path


def _probe_means(run_dir: Path, predictor: Predictor, n_layers: int, batch_size: int) -> list[torch.Tensor]:
    """Each encoder layer's mean activation over the probe texts (tokens mean-pooled per text), the constant
    the `mean` ablation puts in its place."""
    path = probe_path(run_dir)
    if not path.is_file():
        raise UserError(f"{path} not found: --ablation replaces a layer by its mean over the probe texts")
    _, texts, _ = read_probe(path)
    points = [f"layer_{k}" for k in range(1, n_layers + 1)]
    captured = capture_texts(
        predictor.model, predictor.tokenizer, texts, predictor.config.max_len, batch_size, points, "mean"
    )
    return [captured[p].mean(0) for p in points]


def _constant_output(mean: torch.Tensor):
    """A forward hook that puts `mean` at every token of the layer's hidden states."""

    def hook(module, inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        constant = mean.to(hidden.device, hidden.dtype).expand_as(hidden)
        return (constant, *output[1:]) if isinstance(output, tuple) else constant

    return hook
