"""`emoscope analyze --ablation`: which encoder layers the trained model's test predictions depend on.

Each encoder layer is knocked out in two ways: `reset` runs that layer with its weights from the backbone
before fine-tuning (what training changed there is undone); `mean_update` replaces what the layer adds to
its input by the mean of that update over the probe texts (what the layer computes from this text is
removed, what earlier layers wrote is kept). Replacing the layer's whole output by a mean vector, as a first
version did, makes every token identical, so every later layer sees one repeated token and every text gets
the same prediction: it scored F1 near 0 for every layer and said nothing about any of them.

The test texts are scored with the run's thresholds in the run's precision, and the drop of macro-F1 and of
every emotion's F1 from the intact model gets a paired bootstrap interval over test texts (the same resamples
for every layer). One intact pass records the embeddings' and every layer's output; knocking out layer k
replays the embeddings and the layers below k from that record and computes only layers k and up, so the
2 x L ablations cost about L + 1 test passes instead of 2 L + 1.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emoscope.analysis import figures as fig
from emoscope.analysis.predictions import decide
from emoscope.analysis.probe import read_probe
from emoscope.analysis.tracker import capture_texts, hidden_states
from emoscope.analysis.uncertainty import interval
from emoscope.core.errors import UserError
from emoscope.core.runfolder import ANALYSIS, eval_file, probe_path, split_predictions
from emoscope.core.vocab import ABLATION_KINDS
from emoscope.data.batching import encode_texts, sorted_batches
from emoscope.evaluate.bootstrap import resample_counts
from emoscope.evaluate.metrics import read_predictions
from emoscope.inference.predictor import Predictor
from emoscope.models import encoder_layers, load_backbone
from emoscope.models.inference import each_batch, prepare_for_inference, worker_count

ABLATION = "layer_ablation.csv"


def per_label_f1(truth: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[R, labels] F1 of each label in each resample (draw counts [R, n]); 0 where a label has no positive
    and no prediction, as sklearn's zero_division=0."""
    t, p = truth.astype(np.float32), predicted.astype(np.float32)
    tp, fp, fn = weights @ (t * p), weights @ ((1 - t) * p), weights @ (t * (1 - p))
    return np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)


def layer_ablation(run_dir: str | Path, resamples: int = 1000, seed: int = 0, batch_size: int = 128) -> Path:
    """Write `analysis/layer_ablation.csv` (`kind,layer,label,f1,drop,drop_ci95_low,drop_ci95_high`; label
    `macro` is the macro-F1) and `layer_ablation.png` (the reset drops, layer x emotion); return the CSV."""
    run_dir = Path(run_dir)
    test = eval_file(run_dir, split_predictions("test"))
    if not test.is_file():
        raise UserError(f"{test} not found: score the run on test before --ablation")
    predictor = Predictor(run_dir)
    labels = predictor.labels
    preds = read_predictions(test, labels)
    thresholds = dict(zip(labels, predictor.thresholds.tolist(), strict=True))
    n_layers = len(encoder_layers(predictor.model.backbone))
    original = load_backbone(predictor.config.backbone)
    if len(encoder_layers(original)) != n_layers:
        raise UserError(
            f"backbone {predictor.config.backbone} has {len(encoder_layers(original))} layers, the run {n_layers}"
        )
    prepare_for_inference(original, predictor.precision, predictor.device)
    probs = _ablated_probs(
        predictor, preds.texts, encoder_layers(original), _probe_updates(run_dir, predictor, batch_size), batch_size
    )

    weights = np.vstack(
        [np.ones((1, len(preds.texts)), np.float32), resample_counts(len(preds.texts), resamples, seed)]
    )
    f1 = {key: per_label_f1(preds.truth, decide(p, labels, thresholds), weights) for key, p in probs.items()}
    base = f1.pop("intact")
    rows = []
    for (kind, k), after in sorted(f1.items(), key=lambda item: (ABLATION_KINDS.index(item[0][0]), item[0][1])):
        for name, b, a in [("macro", base.mean(1), after.mean(1))] + [
            (labels[j], base[:, j], after[:, j]) for j in range(len(labels))
        ]:
            drop = b - a
            rows.append([kind, f"layer_{k}", name, a[0], drop[0], *interval(drop[1:], drop[0])])
    out = run_dir / ANALYSIS
    out.mkdir(exist_ok=True)
    path = fig.write_csv(
        out / ABLATION, ["kind", "layer", "label", "f1", "drop", "drop_ci95_low", "drop_ci95_high"], rows
    )
    reset = np.array(
        [[r[4] for r in rows if r[0] == "reset" and r[1] == f"layer_{k}"][1:] for k in range(1, n_layers + 1)]
    )
    bound = max(float(np.nanmax(np.abs(reset))), 1e-6) if reset.size else 1.0
    fig.plot_matrix(
        out / "layer_ablation.png",
        reset.T,
        list(labels),
        [f"layer_{k}" for k in range(1, n_layers + 1)],
        "test F1 drop when a layer is reset to its pre-fine-tuning weights",
        cmap="RdBu_r",
        vmin=-bound,
        vmax=bound,
    )
    return path


def _ablated_probs(
    predictor: Predictor,
    texts: Sequence[str],
    original: nn.ModuleList,
    updates: Sequence[torch.Tensor],
    batch_size: int,
) -> dict:
    """Probabilities [texts, labels] of the intact model (key "intact") and of every ablation (key
    (kind, layer number)), in text order. Batches run side by side as in `predict_probs`, each worker on a model of
    its own (the first on the predictor's, the others on copies), since an ablation swaps the model's layers."""
    ids = encode_texts(predictor.tokenizer, texts, predictor.config.max_len, cache=False)
    workers = worker_count(predictor.device, len(ids), batch_size)
    models = [predictor.model] + [copy.deepcopy(predictor.model) for _ in range(workers - 1)]
    out: dict = {}
    lock = threading.Lock()

    def ablate(worker: int, rows: np.ndarray, batch: dict) -> None:
        model = models[worker]
        layers = encoder_layers(model.backbone)
        points = list(model.hook_points().values())[: len(layers) + 1]  # the embeddings, then the encoder layers
        inputs = (batch["input_ids"].to(predictor.device), batch["attention_mask"].to(predictor.device))
        record: list = []  # the embeddings' output, then each layer's
        handles = [m.register_forward_hook(lambda _m, _i, output, to=record: to.append(output)) for m in points]
        try:
            scored = {"intact": _probs(model, inputs, {})}
        finally:
            for handle in handles:
                handle.remove()
        embeddings = {(model.backbone, "embeddings"): _Fixed(record[0])}
        for k in range(1, len(layers) + 1):
            below = embeddings | {(layers, str(j)): _Fixed(record[j + 1]) for j in range(k - 1)}
            scored["reset", k] = _probs(model, inputs, below | {(layers, str(k - 1)): original[k - 1]})
            hidden = hidden_states(record[k - 1])
            update = _with_hidden(record[k], hidden + updates[k - 1].to(hidden.device, hidden.dtype))
            scored["mean_update", k] = _probs(model, inputs, below | {(layers, str(k - 1)): _Fixed(update)})
        for key, probs in scored.items():
            with lock:
                rows_of = out.setdefault(key, np.empty((len(ids), probs.shape[1]), np.float32))
            rows_of[rows] = probs

    each_batch(ablate, sorted_batches(ids, batch_size, predictor.pad_id), workers)
    return out


def _probs(model: nn.Module, inputs: tuple, replaced: dict[tuple[nn.Module, str], nn.Module]) -> np.ndarray:
    """Sigmoid probabilities of one batch with some submodules (keyed by parent and name) swapped for others."""
    with _swapped(replaced):
        return torch.sigmoid(model(*inputs).float()).cpu().numpy()


def _probe_updates(run_dir: Path, predictor: Predictor, batch_size: int) -> list[torch.Tensor]:
    """Each encoder layer's mean update over the probe texts: its output minus its input, tokens mean-pooled
    per text, averaged over texts (the vector `mean_update` adds in place of the layer's own update)."""
    path = probe_path(run_dir)
    if not path.is_file():
        raise UserError(f"{path} not found: --ablation replaces a layer's update by its mean over the probe texts")
    _, texts, _ = read_probe(path)
    points = list(predictor.model.hook_points())[: len(encoder_layers(predictor.model.backbone)) + 1]
    captured = capture_texts(
        predictor.model, predictor.tokenizer, texts, predictor.config.max_len, batch_size, points, "mean"
    )
    means = [captured[p].mean(0) for p in points]
    return [after - before for before, after in zip(means, means[1:], strict=False)]


class _Fixed(nn.Module):
    """Stands in for an encoder layer and returns a given output whatever its input."""

    def __init__(self, output):
        super().__init__()
        self.output = output

    def forward(self, *args, **kwargs):
        return self.output


@contextmanager
def _swapped(replaced: dict[tuple[nn.Module, str], nn.Module]):
    """Submodule `name` of `parent` is `replaced[parent, name]` inside the block, the model's own after it
    (a ModuleList's items are named "0", "1", ...)."""
    kept = {key: getattr(*key) for key in replaced}
    try:
        for (parent, name), module in replaced.items():
            setattr(parent, name, module)
        yield
    finally:
        for (parent, name), module in kept.items():
            setattr(parent, name, module)


def _with_hidden(output, hidden: torch.Tensor):
    """`output` in its own form (tensor or tuple) with its hidden states replaced by `hidden`."""
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden
