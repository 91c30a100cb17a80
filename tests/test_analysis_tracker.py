"""The tracker records exactly what a manual forward pass gives, round-trips through safetensors, works
under AMP and DDP, and leaves training unchanged."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from emoscope.analysis import (
    RepresentationTracker,
    capture,
    capture_epoch,
    capture_texts,
    load_capture,
    save_capture,
)
from emoscope.core.errors import DataError, UserError
from emoscope.models import build_classifier

TEXTS = [
    "I love this so much, thank you!",
    "awful.",
    "Why would anyone do that to a dog?",
    "wow",
    "I'm so sorry for your loss, truly, it must be hard.",
    "lol",
    "nervous about tomorrow",
    "proud of you!",
]


def tiny(folder, head="mlp-attention", seed=0):
    torch.manual_seed(seed)
    return build_classifier(str(folder), head, 28, head_dropout=0.1)


def by_hand(model, batch, pooling):
    """Point -> pooled output, from output_hidden_states and the head's stages called directly."""
    mask = batch["attention_mask"]
    with torch.no_grad():
        out = model.backbone(input_ids=batch["input_ids"], attention_mask=mask, output_hidden_states=True)
        weights = mask.unsqueeze(-1).float()
        pool = (lambda h: (h * weights).sum(1) / weights.sum(1)) if pooling == "mean" else (lambda h: h[:, 0])
        result = {"embeddings": pool(out.hidden_states[0])}
        result |= {f"layer_{i}": pool(h) for i, h in enumerate(out.hidden_states[1:], start=1)}
        head = model.head
        if hasattr(head, "attention"):
            result["attention"] = head.attention(out.last_hidden_state, mask)
            result["mlp"] = head.mlp(result["attention"])
        if hasattr(head, "conv"):
            result["conv"] = head.conv(out.last_hidden_state, mask)
        result["classifier"] = model(batch["input_ids"], mask)
    return result


@pytest.mark.parametrize("family,head", [("bert", "mlp-attention"), ("distilbert", "cnn"), ("roberta", "linear")])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_hooks_give_what_a_manual_forward_pass_gives(tiny_models, family, head, pooling):
    model = tiny(tiny_models[family], head).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_models[family])
    batch = dict(tokenizer(TEXTS, return_tensors="pt", padding=True))
    assert (batch["attention_mask"] == 0).any()  # padding is present, so the mask matters
    got = capture(model, [batch], pooling=pooling)
    expected = by_hand(model, batch, pooling)
    assert list(got) == list(model.hook_points())
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, atol=1e-5, rtol=1e-4, msg=name)


def test_capture_texts_restores_text_order_whatever_the_batching(tiny_models):
    model = tiny(tiny_models["bert"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    one_batch = capture_texts(model, tokenizer, TEXTS, max_len=64, batch_size=64)
    small = capture_texts(model, tokenizer, TEXTS, max_len=64, batch_size=3, points=["layer_2", "embeddings"])
    assert list(small) == ["embeddings", "layer_2"]  # depth order, whatever order was asked
    for name in small:
        torch.testing.assert_close(small[name], one_batch[name], atol=1e-5, rtol=1e-4)
    with pytest.raises(UserError, match="layer_9"):
        RepresentationTracker(model, points=["layer_9"])
    with pytest.raises(UserError, match="pooling"):
        RepresentationTracker(model, pooling="max")


def test_capture_round_trips_through_safetensors_without_the_model(tiny_models, tmp_path):
    model = tiny(tiny_models["bert"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    reps = capture_texts(model, tokenizer, TEXTS, max_len=64, pooling="cls")
    path = save_capture(tmp_path / "captures" / "epoch_3.safetensors", reps, epoch=3, pooling="cls")
    arrays, meta = load_capture(path)
    assert meta == {"epoch": 3, "pooling": "cls", "points": list(model.hook_points())}
    assert list(arrays) == meta["points"]
    for name, array in arrays.items():
        assert array.dtype == np.float32 and array.shape == tuple(reps[name].shape)
        np.testing.assert_allclose(array, reps[name].numpy(), rtol=1e-3, atol=1e-3)  # float16 storage
    (tmp_path / "bad.safetensors").write_bytes(b"not a capture")
    with pytest.raises(DataError, match="bad.safetensors"):
        load_capture(tmp_path / "bad.safetensors")


def test_capture_under_amp_autocast_matches_float32(tiny_models):
    model = tiny(tiny_models["bert"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    reference = capture_texts(model, tokenizer, TEXTS, max_len=64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = capture_texts(model, tokenizer, TEXTS, max_len=64)
    for name in reference:
        assert amp[name].dtype == torch.float32
        scale = reference[name].abs().max().item()
        torch.testing.assert_close(amp[name], reference[name], atol=0.05 * scale, rtol=0.05, msg=name)


def test_training_is_unchanged_by_captures(tiny_models):
    """Same seeds, two steps of training, with and without a capture in between: identical weights."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    batch = dict(tokenizer(TEXTS, return_tensors="pt", padding=True))
    target = torch.zeros(len(TEXTS), 28)
    target[:, 3] = 1

    def train(with_capture: bool):
        model = tiny(tiny_models["bert"]).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        torch.manual_seed(1)  # dropout masks
        for step in range(2):
            logits = model(batch["input_ids"], batch["attention_mask"])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if with_capture and step == 0:
                capture(model, [batch])
                assert model.training
                assert all(not m._forward_hooks for m in model.modules())
        return model.state_dict()

    plain, tracked = train(False), train(True)
    assert all(torch.equal(plain[k], tracked[k]) for k in plain)


def test_ddp_wrapped_model_is_captured_on_rank_zero(tiny_models, tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    model = tiny(tiny_models["bert"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    batch = dict(tokenizer(TEXTS, return_tensors="pt", padding=True))
    plain = capture(copy.deepcopy(model), [batch])
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        wrapped = DistributedDataParallel(model)
        path = capture_epoch(wrapped, [batch], tmp_path / "run", epoch=0)
    finally:
        dist.destroy_process_group()
    arrays, meta = load_capture(path)
    assert path.name == "epoch_0.safetensors" and meta["epoch"] == 0
    for name in plain:
        np.testing.assert_allclose(arrays[name], plain[name].numpy(), rtol=1e-3, atol=1e-3)
