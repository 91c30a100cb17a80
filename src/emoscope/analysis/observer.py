"""The tracker as a training observer: the probe set is fixed once, then captured at epoch 0 and after
every epoch, on rank 0 only. Captures run in eval mode without gradients, so training is unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from emoscope.analysis.probe import select_probe, write_probe
from emoscope.analysis.run import write_cooccurrence
from emoscope.analysis.tracker import capture_probe


class TrackerObserver:
    def __init__(self, probe_size: int = 2000, pooling: str = "mean", seed: int = 0, max_len: int = 128,
                 points: Sequence[str] | None = None):
        self.probe_size, self.pooling, self.seed, self.max_len, self.points = probe_size, pooling, seed, max_len, points
        self.run_dir: Path | None = None
        self.tokenizer = None

    def setup(self, run_dir: Path, model: nn.Module, tokenizer, data) -> None:
        """Choose the probe set from dev (kept as it is on resume) and note the training labels."""
        self.run_dir, self.tokenizer = Path(run_dir), tokenizer
        n_labels = len(data.taxonomy.labels)
        write_cooccurrence(self.run_dir, [e.labels for e in data.train], n_labels)
        probe = self.run_dir / "captures" / "probe.jsonl"
        if not probe.is_file():
            rows = select_probe([e.labels for e in data.dev], self.probe_size, self.seed, n_labels)
            write_probe(probe, [data.dev[i].id for i in rows], [data.dev[i].text for i in rows],
                        [data.dev[i].labels for i in rows])

    def on_epoch(self, model: nn.Module, epoch: int) -> None:
        capture_probe(model, self.tokenizer, self.run_dir, epoch, max_len=self.max_len, points=self.points,
                      pooling=self.pooling)
