"""Shared fixtures: the real GoEmotions files (when present) and tiny random encoders saved to disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # `make test` runs one worker per core: each worker, and the processes it starts, gets its share of the
    # cores instead of every worker's torch spinning a thread per core.
    _THREADS = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))
    import torch

    torch.set_num_threads(_THREADS)

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("bert", "roberta", "distilbert", "mpnet")  # the encoder families `tiny_models` builds
_DEFAULT_DATA = REPO.parent / "shared" / "data" / "goemotions"
# Under CI (or `make test STRICT=1`) a test whose requirement is missing fails: CI cannot go green by skipping.
STRICT = os.environ.get("CI") == "true" or os.environ.get("EMOSCOPE_STRICT") == "1"


def missing(requirement: str) -> None:
    """Skip a test for a missing requirement (data, a browser), or fail it under CI / STRICT=1."""
    if STRICT:
        pytest.fail(
            f"{requirement} (CI=true or STRICT=1: a missing requirement fails instead of skipping)", pytrace=False
        )
    pytest.skip(requirement)


@pytest.fixture(scope="session")
def goemotions_dir() -> Path:
    """The official files, the one place tests look for them: $EMOSCOPE_DATA_DIR, else ../shared/data/goemotions
    beside the repo."""
    path = Path(os.environ.get("EMOSCOPE_DATA_DIR") or _DEFAULT_DATA)
    if not (path / "train.tsv").is_file():
        missing(f"GoEmotions files not found in {path}; set EMOSCOPE_DATA_DIR")
    return path


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Token caches and downloads go to a temporary folder, never the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("EMOSCOPE_CACHE_DIR")
    os.environ["EMOSCOPE_CACHE_DIR"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("EMOSCOPE_CACHE_DIR", None)
    else:
        os.environ["EMOSCOPE_CACHE_DIR"] = old


def _wordpiece_tokenizer():
    from transformers import AutoTokenizer

    from emoscope.models.backbone import resolve_backbone

    return AutoTokenizer.from_pretrained(resolve_backbone("default"))


def bpe_tokenizer(texts: list[str], vocab_size: int = 600, min_frequency: int = 1):
    """A byte-level BPE trained here, wrapped as a RoBERTa tokenizer (no download needed); also what
    bench/gpu_seed_a.py gives its random roberta-large."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts,
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    bpe._tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", bpe.token_to_id("</s>")), ("<s>", bpe.token_to_id("<s>"))
    )
    return RobertaTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
    )


SAMPLE_TEXTS = [
    "I love this so much, thank you!",
    "This is awful and I am angry.",
    "Why would anyone do that?",
    "Oh wow, I did not expect that at all.",
    "I'm so sorry for your loss.",
    "lol that's hilarious",
    "I'm nervous about tomorrow.",
    "Great job, proud of you!",
] * 20


def make_tiny_model(root: Path, family: str) -> Path:
    """Save a random-initialised 2-layer encoder of `family` and its tokenizer, as a hub folder would hold."""
    from transformers import AutoModel, BertConfig, DistilBertConfig, MPNetConfig, RobertaConfig

    folder = root / f"tiny-{family}"
    if (folder / "config.json").is_file():
        return folder
    tokenizer = bpe_tokenizer(SAMPLE_TEXTS) if family == "roberta" else _wordpiece_tokenizer()
    vocab = len(tokenizer)
    size = {"vocab_size": vocab, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    if family == "bert":
        config = BertConfig(**size, intermediate_size=64, max_position_embeddings=128)
    elif family == "roberta":
        config = RobertaConfig(
            **size, intermediate_size=64, max_position_embeddings=130, pad_token_id=1, bos_token_id=0, eos_token_id=2
        )
    elif family == "distilbert":
        config = DistilBertConfig(
            vocab_size=vocab, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128
        )
    elif family == "mpnet":
        config = MPNetConfig(**size, intermediate_size=64, max_position_embeddings=130)
    else:
        raise ValueError(family)
    import torch

    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {family: make_tiny_model(root, family) for family in FAMILIES}


def slice_goemotions(source: Path, out: Path, train: int, dev: int, test: int) -> Path:
    """The first rows of each official split, in the official layout (label files come with the package)."""
    for name, rows in (("train.tsv", train), ("dev.tsv", dev), ("test.tsv", test)):
        lines = (source / name).read_text(encoding="utf-8").splitlines(keepends=True)[:rows]
        (out / name).write_text("".join(lines), encoding="utf-8")
    return out


def timed_run(folder: Path, finished: str, seconds: float | None) -> Path:
    """A run folder whose run.json holds only its training time: `seconds` up to `finished` (ISO time)."""
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"finished": finished, "wall_seconds": seconds}))
    return folder


def train_args(backbone: Path, data: Path, run: Path, *extra: str) -> list[str]:
    """`emoscope train` on a tiny model: one fp32 epoch, batch 16, no progress bar."""
    return [
        "train",
        "--backbone",
        str(backbone),
        "--data_dir",
        str(data),
        "--run_dir",
        str(run),
        "--epochs",
        "1",
        "--batch_size",
        "16",
        "--precision",
        "fp32",
        "--progress",
        "false",
        *extra,
    ]


@pytest.fixture(scope="session")
def tiny_run(tiny_models, goemotions_dir, tmp_path_factory) -> Path:
    """A finished run folder (tiny BERT, one epoch on a few official rows) for tests that only read runs."""
    from emoscope.cli import main

    data = slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("tiny-run-data"), 96, 32, 32)
    run = tmp_path_factory.mktemp("tiny-run") / "run"
    assert main(train_args(tiny_models["bert"], data, run)) == 0
    return run
