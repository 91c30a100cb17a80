"""Every backbone family x every head, built through the real from_pretrained(local folder) path."""

from __future__ import annotations

import pytest
import torch
from conftest import FAMILIES
from transformers import AutoTokenizer

from emoscope.core.errors import UserError
from emoscope.models import HEADS, build_classifier
from emoscope.models.backbone import resolve_backbone

NATIVE_FAMILIES = ("bert", "roberta")  # of FAMILIES, those whose own classification head `--head native` knows


@pytest.mark.parametrize(
    "family,head", [(f, h) for f in FAMILIES for h in HEADS if h != "native" or f in NATIVE_FAMILIES]
)
def test_padding_never_changes_a_texts_logits(tiny_models, family, head):
    folder = tiny_models[family]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    model = build_classifier(str(folder), head, 28, head_dropout=0.1).eval()
    short, long = "so happy", "this is a much longer comment that forces padding of the short one"
    alone = tokenizer([short], return_tensors="pt")
    both = tokenizer([short, long], return_tensors="pt", padding=True)
    assert both["attention_mask"][0].sum() < both["attention_mask"].shape[1]  # the short one is padded
    with torch.no_grad():
        a = model(alone["input_ids"], alone["attention_mask"])
        b = model(both["input_ids"], both["attention_mask"])
    assert a.shape == (1, 28) and b.shape == (2, 28)
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "head,expected",
    [
        ("linear", ["classifier"]),
        ("mlp-attention", ["attention", "mlp", "classifier"]),
        ("cnn", ["conv", "classifier"]),
        ("native", ["pooler", "classifier"]),  # BERT's own: dense + tanh over [CLS], then the linear layer
    ],
)
def test_hook_points_are_named_in_depth_order(tiny_models, head, expected):
    model = build_classifier(str(tiny_models["bert"]), head, 28, head_dropout=0.1)
    assert list(model.hook_points()) == ["embeddings", "layer_1", "layer_2", *expected]


@pytest.mark.parametrize("family", FAMILIES)
def test_partial_fine_tuning_trains_only_the_last_layers_and_head(tiny_models, family):
    model = build_classifier(str(tiny_models[family]), "cnn", 28, head_dropout=0.42)
    model.freeze(train_last_layers=1, freeze_embeddings=False)
    trainable = {n.split(".")[0] + "." + n.split(".")[1] for n, p in model.named_parameters() if p.requires_grad}
    assert all(p.requires_grad for p in model.head.parameters())
    assert not any(p.requires_grad for p in model.backbone.embeddings.parameters())
    points = model.hook_points()
    assert all(p.requires_grad for p in points["layer_2"].parameters())
    assert not any(p.requires_grad for p in points["layer_1"].parameters())
    assert "head.conv" in trainable


@pytest.mark.parametrize("family", NATIVE_FAMILIES)
def test_the_native_head_is_the_families_own_and_learns_like_any_head(tiny_models, family):
    """The weights of transformers' *ForSequenceClassification (BERT's pretrained pooler too), the head's
    dropout (swapped for the fast CPU masks like every dropout), its own learning rate's `head.` names, and
    freezing that leaves it trainable."""
    from transformers import AutoModelForSequenceClassification

    from emoscope.models.dropout import CPUDropout, use_cpu_dropout

    folder = tiny_models[family]
    model = use_cpu_dropout(build_classifier(str(folder), "native", 28, head_dropout=0.3))
    reference = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=28)
    if family == "bert":
        torch.testing.assert_close(model.head.pooler.dense.weight, reference.bert.pooler.dense.weight)
        assert model.backbone.pooler is None  # pooled once, in the head
    dropouts = [m for m in model.head.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(type(m) is CPUDropout and m.p == 0.3 for m in dropouts)
    assert {n.split(".")[0] for n, _ in model.named_parameters()} == {"backbone", "head"}
    model.freeze(train_last_layers=0, freeze_embeddings=True)
    assert all(p.requires_grad for p in model.head.parameters())
    assert not any(p.requires_grad for p in model.backbone.parameters())
    ids = AutoTokenizer.from_pretrained(folder)(["so happy", "what a day"], return_tensors="pt", padding=True)
    samples = model.train()(ids["input_ids"], ids["attention_mask"], dropout_samples=2)
    assert len(samples) == 2 and not torch.equal(samples[0], samples[1])  # a mask of its own each


def test_the_native_head_names_the_families_it_knows(tiny_models):
    with pytest.raises(UserError, match="--head native knows the bert, roberta, xlm-roberta, mpnet .* not distilbert"):
        build_classifier(str(tiny_models["distilbert"]), "native", 28, head_dropout=0.1)


def test_cnn_head_is_seed_b(tiny_models):
    model = build_classifier(str(tiny_models["distilbert"]), "cnn", 28, head_dropout=0.42)
    conv = model.head.conv.conv
    assert (conv.out_channels, conv.kernel_size) == (128, (5,))
    assert model.head.dropout.p == 0.42


def test_packaged_default_backbone_loads_offline():
    path = resolve_backbone("all-MiniLM-L6-v2")
    model = build_classifier(path, "linear", 28, head_dropout=0.1)
    assert model.backbone.config.hidden_size == 384 and model.backbone.config.num_hidden_layers == 6


def test_uncached_hub_id_offline_says_how_to_pass_a_local_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"not in the local Hugging Face cache .* --backbone /path/to/"):
        resolve_backbone("someone/not-a-cached-model-xyz")


def test_missing_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        resolve_backbone(str(tmp_path / "nope"))


@pytest.mark.parametrize("head", [h for h in HEADS if h != "linear"])
def test_a_pooling_the_head_would_ignore_is_refused(tiny_models, head):
    with pytest.raises(UserError, match=f"--pooling cls applies to the linear head only; the {head} head"):
        build_classifier(str(tiny_models["bert"]), head, 3, head_dropout=0.0, pooling="cls")
