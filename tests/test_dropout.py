"""The CPU dropout that training uses: the right drop rate and scale, the same attention, every dropout swapped."""

from __future__ import annotations

import pytest
import torch
from conftest import FAMILIES
from torch import nn
from transformers import AutoTokenizer

from emoscope.models import build_classifier
from emoscope.models.dropout import (
    ATTENTION,
    CPUDropout,
    cpu_dropout,
    keep_mask,
    stream_generator,
    use_cpu_dropout,
)


def padded_batch(folder) -> tuple[torch.Tensor, torch.Tensor]:
    """Two texts, the short one padded: input ids and attention mask."""
    batch = AutoTokenizer.from_pretrained(folder)(
        ["so happy", "this is a much longer comment that pads the short one"], return_tensors="pt", padding=True
    )
    return batch["input_ids"], batch["attention_mask"]


@pytest.mark.parametrize("p", [0.05, 0.1, 0.42])
def test_masks_keep_each_element_with_probability_one_minus_p(p):
    torch.manual_seed(0)
    n = 2_000_000
    kept = keep_mask((n,), p).double()
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(kept.mean().item() - (1 - p)) < 5 * sd
    # Neighbours come from lanes of one draw: they must be independent (P(both kept) = (1-p)^2).
    both = (kept[0::2] * kept[1::2]).mean().item()
    assert abs(both - (1 - p) ** 2) < 5 * (((1 - p) ** 2 * (1 - (1 - p) ** 2)) / (n / 2)) ** 0.5
    for lane in range(4):  # every one of the four lanes of a 64-bit draw, the one holding the sign bit too
        assert abs(kept[lane::4].mean().item() - (1 - p)) < 5 * sd * 2


def test_dropout_scales_kept_values_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.full((1000, 1000), 3.0)
    y = cpu_dropout(x, 0.2)
    assert set(torch.unique(y).tolist()) == {0.0, 3.0 / 0.8}
    assert abs(y.mean().item() - 3.0) < 0.01
    assert cpu_dropout(x, 0.2, training=False) is x and cpu_dropout(x, 0.0) is x
    assert torch.equal(cpu_dropout(x, 1.0), torch.zeros_like(x))
    assert cpu_dropout(x.bfloat16(), 0.2).dtype == torch.bfloat16


def test_masks_follow_the_global_seed():
    torch.manual_seed(7)
    a = keep_mask((3, 5, 7), 0.3)
    torch.manual_seed(7)
    assert torch.equal(a, keep_mask((3, 5, 7), 0.3))
    assert not torch.equal(a, keep_mask((3, 5, 7), 0.3))


def test_a_stream_draws_from_its_own_generator_and_leaves_the_global_one_alone():
    torch.manual_seed(7)
    expected_next = keep_mask((3, 5, 7), 0.3)
    torch.manual_seed(7)
    with stream_generator(torch.Generator().manual_seed(11)):
        inside = keep_mask((3, 5, 7), 0.3)
    with stream_generator(torch.Generator().manual_seed(11)):
        assert torch.equal(inside, keep_mask((3, 5, 7), 0.3))
    assert torch.equal(keep_mask((3, 5, 7), 0.3), expected_next)  # the global generator did not move


def test_a_probability_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="p must be in"):
        keep_mask((4,), 1.5)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_dropout_is_swapped_and_evaluation_is_unchanged(tiny_models, family):
    folder = tiny_models[family]
    batch = padded_batch(folder)
    torch.manual_seed(0)
    model = build_classifier(str(folder), "mlp-attention", 28, head_dropout=0.1).eval()
    with torch.no_grad():
        before = model(*batch)
    use_cpu_dropout(model)
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert sum(isinstance(m, CPUDropout) for m in model.modules()) >= 3
    with torch.no_grad():
        torch.testing.assert_close(model(*batch), before)
        model.train()
        torch.manual_seed(1)
        one = model(*batch)
        torch.manual_seed(1)
        assert torch.equal(one, model(*batch))  # the seed decides the masks
        assert not torch.equal(one, model(*batch))


# MPNet computes attention in its own module, whose dropout is an nn.Dropout (swapped in the test above).
@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "mpnet"])
def test_attention_with_dropout_is_sdpa_attention_with_padding_masked(tiny_models, family):
    """With a drop probability that rounds to zero, the training branch (its own softmax and masking) must give
    what SDPA gives; only then are the dropped weights the only difference in training."""
    folder = tiny_models[family]
    batch = padded_batch(folder)
    torch.manual_seed(0)
    model = build_classifier(str(folder), "linear", 28, head_dropout=0.0, backbone_dropout=1e-9)
    model.train()
    with torch.no_grad():
        sdpa = model(*batch)
        use_cpu_dropout(model)
        assert model.backbone.config._attn_implementation == ATTENTION
        ours = model(*batch)
    torch.testing.assert_close(ours, sdpa, atol=1e-5, rtol=1e-4)
