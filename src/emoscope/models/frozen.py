"""Training over a frozen bottom computed once: `--train_last_layers K --cache_frozen_layers`.

With only the last K encoder layers learning and no dropout below them, the frozen layers give each text the
same output every epoch. `FrozenBottom` runs them once over the train texts, keeps their outputs, and trains
on the top K layers and the head alone, so an epoch skips the bottom's forward pass (and no gradient ever flows
there). The top is a second view of the same backbone: it shares every parameter with the classifier, which
evaluation and the saved weights use as usual.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from emoscope.data.batching import sorted_batches
from emoscope.models.backbone import encoder_layers
from emoscope.models.classifier import EmotionClassifier
from emoscope.models.inference import autocast


class _Given(nn.Module):
    """Stands in for the embeddings: returns the hidden states this thread set for the current batch."""

    def __init__(self):
        super().__init__()
        self._local = threading.local()

    def set(self, hidden: torch.Tensor) -> None:
        self._local.hidden = hidden

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self._local.hidden


def layer_view(backbone: nn.Module, layers: slice, embeddings: nn.Module) -> nn.Module:
    """A shallow copy of `backbone` that runs only `layers` of its encoder, after `embeddings`: the
    architecture's own forward still builds the attention mask (and MPNet's relative position bias)."""
    blocks = encoder_layers(backbone)
    path = next(name for name, module in backbone.named_modules() if module is blocks).split(".")
    view = copy.copy(backbone)
    view._modules = {**backbone._modules, "embeddings": embeddings}
    parent = view
    for part in path[:-1]:
        child = copy.copy(parent._modules[part])
        child._modules = dict(child._modules)
        parent._modules[part] = child
        parent = child
    parent._modules[path[-1]] = nn.ModuleList(blocks[layers])
    return view


class FrozenBottom(nn.Module):
    """The classifier for training steps, its bottom read from a cache of the train texts' frozen outputs."""

    def __init__(
        self,
        model: EmotionClassifier,
        trained_layers: int,
        ids: Sequence[np.ndarray],
        pad_id: int,
        device: torch.device,
        precision: str,
        batch_size: int = 128,
    ):
        super().__init__()
        layers = encoder_layers(model.backbone)
        self.first = len(layers) - trained_layers
        self.model = model
        self._given = _Given()
        self.top = layer_view(model.backbone, slice(self.first, None), self._given)
        self.lengths = np.array([len(x) for x in ids])
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.states = self._bottom_outputs(ids, pad_id, device, precision, batch_size)

    @torch.no_grad()
    def _bottom_outputs(self, ids, pad_id, device, precision, batch_size) -> torch.Tensor:
        """Every text's output of the last frozen layer (embeddings when none is frozen), tokens end to end;
        in eval mode, so without dropout, as training will never see them otherwise."""
        backbone = self.model.backbone
        states: torch.Tensor | None = None
        was_training = backbone.training
        backbone.eval()
        bottom = layer_view(backbone, slice(0, self.first), backbone.embeddings)
        try:
            for rows, batch in sorted_batches(ids, batch_size, pad_id):
                with autocast(device, precision):
                    hidden = bottom(
                        input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
                    ).last_hidden_state
                if states is None:
                    states = torch.empty((int(self.offsets[-1]), hidden.shape[-1]), dtype=hidden.dtype, device=device)
                for row, text in zip(hidden, rows, strict=True):
                    states[self.offsets[text] : self.offsets[text + 1]] = row[: self.lengths[text]]
        finally:
            backbone.train(was_training)
        return states

    def gather(self, rows: np.ndarray, width: int) -> torch.Tensor:
        """The cached states of `rows`, padded with zeros to `width` tokens (padding is masked out above)."""
        out = self.states.new_zeros((len(rows), width, self.states.shape[-1]))
        for i, text in enumerate(rows):
            out[i, : self.lengths[text]] = self.states[self.offsets[text] : self.offsets[text + 1]]
        return out

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        dropout_samples: int | None = None,
        *,
        rows: np.ndarray,
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """`EmotionClassifier.forward` for the train texts `rows` (indices into the cached `ids`)."""
        self._given.set(self.gather(rows, input_ids.shape[1]))
        hidden = self.top(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.model.heads(hidden, attention_mask, dropout_samples)
