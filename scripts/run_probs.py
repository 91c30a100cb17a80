"""A run's dev and test probabilities as one small file, so its numbers can be recomputed without training.

    python scripts/run_probs.py RUN_DIR OUT.npz      # write: float16 probabilities with the comment ids
    python scripts/run_probs.py --check OUT.npz      # read: thresholds chosen on dev, then test macro-F1

The file holds `labels`, and per split `<split>_ids`, `<split>_probs` (float16 [texts, labels]) and
`<split>_gold` (bool [texts, labels]). `--check` chooses per-emotion thresholds on dev (bagged, as cpu-default
does) and prints dev and test macro-F1 with them: test is read after the choice, never for it. float16 rounds a
probability by at most 2^-11 of its value, so a recomputed macro-F1 can differ from the run's in the third decimal
where a probability sits on a threshold.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from emoscope.core.runfolder import eval_file, read_labels, split_predictions
from emoscope.evaluate import choose_thresholds, compute_metrics
from emoscope.evaluate.metrics import read_predictions

SPLITS = ("dev", "test")


def write(run_dir: Path, out: Path) -> None:
    labels = read_labels(run_dir)["labels"]
    arrays = {"labels": np.array(labels)}
    for split in SPLITS:
        predictions = read_predictions(eval_file(run_dir, split_predictions(split)), labels)
        arrays[f"{split}_ids"] = np.array(predictions.ids)
        arrays[f"{split}_probs"] = predictions.probs.astype(np.float16)
        arrays[f"{split}_gold"] = predictions.truth
    np.savez_compressed(out, **arrays)
    print(f"written: {out} ({out.stat().st_size / 1e3:.0f} KB)")


def check(path: Path) -> None:
    data = np.load(path)
    labels = tuple(str(x) for x in data["labels"])
    dev_y, dev_p = data["dev_gold"], data["dev_probs"].astype(np.float64)
    choice = choose_thresholds("per_emotion_bagged", dev_y, dev_p, 0.5, labels)
    for split in SPLITS:
        y, p = data[f"{split}_gold"], data[f"{split}_probs"].astype(np.float64)
        print(f"{split} macro-F1 {compute_metrics(y, p, choice.values, labels).summary['macro_f1']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="RUN_DIR OUT.npz, or OUT.npz with --check")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.check:
        check(*args.paths)
    else:
        write(*args.paths)


if __name__ == "__main__":
    main()
