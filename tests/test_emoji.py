"""Emoji read by name: the run's tokenizer names the train split's emoji its vocabulary lacks, and every reader
of the run (Predictor, the Hugging Face export, the ONNX reader's tokenizer.json) reads them the same way."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from emoscope.cli import main
from emoscope.core.runfolder import TOKENIZER
from emoscope.data.emoji import emoji_in, emoji_name
from emoscope.inference.predictor import Predictor
from emoscope.models.backbone import load_tokenizer, with_emoji_names

MINILM = "all-MiniLM-L6-v2"


def test_emoji_are_found_and_named():
    assert emoji_in(["so funny 😂😂", "❤ you", "no emoji here, café"]) == ["❤", "😂"]
    assert emoji_name("😂") == "face with tears of joy"
    assert emoji_name("❤") == "red heart"
    with pytest.raises(ValueError, match="ch must be one emoji character, got 'a'"):
        emoji_name("a")


def test_only_the_emoji_the_vocabulary_lacks_are_named_and_other_text_is_untouched():
    plain = load_tokenizer(MINILM)
    named = with_emoji_names(load_tokenizer(MINILM), ["😂", "♥"])
    assert plain.tokenize("lol 😂 ♥") == ["lo", "##l", "[UNK]", "♥"]
    assert named.tokenize("lol 😂 ♥ 😭") == ["lo", "##l", "face", "with", "tears", "of", "joy", "♥", "[UNK]"]
    text = "I'm SO happy for [NAME], congrats!!"
    assert named(text)["input_ids"] == plain(text)["input_ids"]


def test_a_run_trained_with_emoji_names_is_read_with_them_everywhere(goemotions_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = (goemotions_dir / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    emoji_rows = ["That's hilarious 😂\t1\tz1\n", "I'm so sorry 😭\t25\tz2\n"]
    (data / "train.tsv").write_text("".join(rows[:30] + emoji_rows), encoding="utf-8")
    for name in ("dev.tsv", "test.tsv"):
        lines = (goemotions_dir / name).read_text(encoding="utf-8").splitlines(keepends=True)[:16]
        (data / name).write_text("".join(lines), encoding="utf-8")
    run = tmp_path / "run"
    args = ["--data_dir", str(data), "--run_dir", str(run), "--epochs", "1", "--precision", "fp32"]
    assert main(["train", "--backbone", MINILM, "--emoji_names", "--progress", "false", *args]) == 0
    expected = ["face", "with", "tears", "of", "joy", "loudly", "crying", "face", "[UNK]"]  # 🦀 is not in train
    for tokenizer in (
        Predictor(run).tokenizer,
        AutoTokenizer.from_pretrained(run / TOKENIZER),
        AutoTokenizer.from_pretrained(run / "hf"),
    ):
        assert tokenizer.tokenize("😂 😭 🦀") == expected
    reader = Tokenizer.from_str(Predictor(run).tokenizer.backend_tokenizer.to_str())  # what the ONNX export writes
    assert reader.encode("😂 😭 🦀", add_special_tokens=False).tokens == expected
