"""scripts/run_probs.py: a run's dev and test probabilities in one small file, and the numbers recomputed from it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from conftest import REPO


def test_the_probabilities_file_holds_every_text_and_recomputes_the_run(tiny_run, tmp_path):
    out = tmp_path / "probs.npz"
    script = str(REPO / "scripts" / "run_probs.py")
    subprocess.run([sys.executable, script, str(tiny_run), str(out)], check=True, capture_output=True)
    data = np.load(out)
    for split in ("dev", "test"):
        rows = [json.loads(x) for x in (tiny_run / "eval" / f"{split}_predictions.jsonl").read_text().splitlines()]
        assert data[f"{split}_ids"].tolist() == [r["id"] for r in rows]
        assert data[f"{split}_probs"].dtype == np.float16
        np.testing.assert_allclose(data[f"{split}_probs"], [r["probs"] for r in rows], rtol=2**-11, atol=1e-7)
        labels = data["labels"].tolist()
        gold = [[name in r["labels"] for name in labels] for r in rows]
        assert data[f"{split}_gold"].tolist() == gold
    checked = subprocess.run([sys.executable, script, "--check", str(out)], check=True, capture_output=True, text=True)
    dev = json.loads((tiny_run / "eval" / "dev_metrics.json").read_text())["macro_f1"]
    assert checked.stdout.splitlines()[0].startswith("dev macro-F1 ")
    assert abs(float(checked.stdout.split()[2]) - dev) < 0.02
