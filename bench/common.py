"""Shared by the benchmark scripts: the matmul peak, model FLOPs, peak memory, and the printed table.

Benchmarks compare emoscope with a peer in the same session, on the same data, model, batch size, maximum
length and thread count, and report ratios: absolute numbers move with the machine, ratios much less.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def data_dir() -> str | None:
    """GoEmotions as the tests find it: EMOSCOPE_DATA_DIR, else the shared copy beside the repository."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "goemotions"
    return os.environ.get("EMOSCOPE_DATA_DIR") or (str(shared) if shared.is_dir() else None)


# (m, k, n) of the peak's matmuls: squares, and MiniLM's feed-forward over a batch of tokens, whose operands
# fit the caches better than a large square's and so can run faster.
PEAK_SHAPES = ((512, 512, 512), (1024, 1024, 1024), (1536, 1536, 1536), (2048, 384, 1536), (2048, 1536, 384))


def _best_gflops(a: torch.Tensor, b: torch.Tensor, repeats: int) -> float:
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / best / 1e9


def _one_thread_gflops(a: torch.Tensor, b: torch.Tensor, repeats: int) -> float:
    torch.set_num_threads(1)  # this thread's own pools, as an inference worker sets them
    return _best_gflops(a, b, repeats)


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, repeats: int = 5) -> float:
    """The denominator of MFU: the best matmul rate this process reaches in `dtype` with its own thread count,
    over `PEAK_SHAPES`, whether one matmul spans all the threads or each thread runs its own (as emoscope's
    inference workers do; their rates are summed). Every best is taken generously, so a system cannot
    honestly exceed it; `checked_mfu` fails a bench that does."""
    threads = torch.get_num_threads()
    best = 0.0
    for m, k, n in PEAK_SHAPES:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        best = max(best, _best_gflops(a, b, repeats))
        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                rates = pool.map(_one_thread_gflops, [a] * threads, [b] * threads, [repeats] * threads)
                best = max(best, sum(rates))
    torch.set_num_threads(threads)
    return best


def checked_mfu(flops_per_s: float, peak_gflops: float, what: str) -> float:
    """`flops_per_s` over the matmul peak; above 1 the peak was measured too low, and the bench fails rather
    than print an impossible row."""
    mfu = flops_per_s / (peak_gflops * 1e9)
    if mfu > 1:
        raise SystemExit(
            f"{what}: MFU {100 * mfu:.1f}% is above 100%: the matmul peak ({peak_gflops:.0f} GFLOP/s) was measured "
            "too low, so no MFU of this bench can be trusted; rerun it on a quieter machine"
        )
    return mfu


def forward_flops(lengths, config) -> float:
    """Encoder forward FLOPs for texts of these token counts (padding excluded: only useful work counts).

    Per token and layer: 8d^2 for Q, K, V and the output projection, 4 d f for the feed-forward block, and
    4 T d for the attention scores and their weighted sum over T tokens.
    """
    d, f, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    lengths = np.asarray(lengths, dtype=np.float64)
    return float(n * (lengths.sum() * (8 * d * d + 4 * d * f) + 4 * d * (lengths**2).sum()))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def run_child(script: str, *args: str) -> dict:
    """One system per child process, so each one's peak memory and warm caches are its own."""
    out = subprocess.run([sys.executable, script, *args], check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(name: str, rows: list[tuple[str, ...]], header: tuple[str, ...], result: dict) -> None:
    """Print the side-by-side table and write the JSON next to the other results."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    result = {
        "benchmark": name,
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        **result,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"written: {path}")
