"""The training losses, per example: the gold labels (BCE with label smoothing, focal or asymmetric), the
teachers' probabilities (distillation), the label hierarchy, and R-Drop's agreement of two dropout passes.
`Loss` combines them as the configuration asks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from emoscope.core.config import TrainConfig


def positive_weights(y: np.ndarray, mode: str) -> torch.Tensor | None:
    """BCE pos_weight from train label counts: rare emotions weigh more (capped to keep training stable)."""
    if mode == "none":
        return None
    pos = y.sum(0).clip(min=1)
    ratio = (len(y) - pos) / pos
    ratio = np.sqrt(ratio) if mode == "sqrt" else ratio
    return torch.tensor(ratio.clip(max=50.0), dtype=torch.float32)


def multilabel_loss(
    logits: torch.Tensor, targets: torch.Tensor, config: TrainConfig, pos_weight: torch.Tensor | None
) -> torch.Tensor:
    """Per-example BCE (mean over labels), with label smoothing towards 0.5 and optional focal weighting, or the
    asymmetric loss: positives as in BCE, negatives' probabilities shifted down by the margin and focused."""
    if config.label_smoothing:
        targets = targets * (1 - config.label_smoothing) + 0.5 * config.label_smoothing
    logits = logits.float()
    if config.asl_gamma_neg:
        positive = -F.logsigmoid(logits) * targets * (1.0 if pos_weight is None else pos_weight)
        shifted = (torch.sigmoid(logits) - config.asl_clip).clamp(min=0)
        negative = -torch.log1p(-shifted.clamp(max=1 - 1e-6)) * shifted**config.asl_gamma_neg * (1 - targets)
        return (positive + negative).mean(dim=1)
    loss = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    if config.focal_gamma:
        p = torch.sigmoid(logits)
        p_true = p * targets + (1 - p) * (1 - targets)
        loss = loss * (1 - p_true) ** config.focal_gamma
    return loss.mean(dim=1)


def hierarchy_loss(logits: torch.Tensor, targets: torch.Tensor, membership: torch.Tensor) -> torch.Tensor:
    """Per-example BCE of the coarse groups (`membership` [labels, groups] 0/1): a group's logit is the
    log-sum-exp of its members' logits (a smooth maximum: the group is there when one of its emotions is),
    its target whether any member is a gold label. Trains the label hierarchy through the emotions' own
    logits, so the auxiliary heads add no parameters."""
    group_logits = torch.logsumexp(logits.float().unsqueeze(2) + torch.log(membership), dim=1)
    group_targets = (targets.unsqueeze(2) * membership).amax(dim=1)
    return F.binary_cross_entropy_with_logits(group_logits, group_targets, reduction="none").mean(dim=1)


def distillation_loss(logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-example BCE against the teachers' probabilities, both sides' logits divided by the temperature;
    times T^2 so that the gradient keeps its size as T grows (Hinton et al., 2015)."""
    target = torch.sigmoid(torch.logit(teacher_probs.float().clamp(1e-6, 1 - 1e-6)) / temperature)
    loss = F.binary_cross_entropy_with_logits(logits.float() / temperature, target, reduction="none")
    return loss.mean(dim=1) * temperature**2


def rdrop_loss(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Per-example symmetric KL divergence between two passes' per-emotion Bernoulli distributions, averaged
    over emotions and the two directions: for Bernoullis, KL(p||q) + KL(q||p) = (p - q)(logit p - logit q)."""
    first, second = first.float(), second.float()
    return 0.5 * ((torch.sigmoid(first) - torch.sigmoid(second)) * (first - second)).mean(dim=1)


@dataclass
class Loss:
    """The per-example loss of one dropout sample, as the configuration asks: gold labels, the teachers' `share`
    (per example), the auxiliary groups (`membership`); with R-Drop the batch ran twice, one copy above the
    other."""

    config: TrainConfig
    pos_weight: torch.Tensor | None
    membership: torch.Tensor | None

    def __call__(
        self, logits: torch.Tensor, gold: torch.Tensor, teacher: torch.Tensor | None, share: torch.Tensor | None
    ) -> torch.Tensor:
        if not self.config.rdrop_weight:
            return self.of_one_pass(logits, gold, teacher, share)
        first, second = logits.chunk(2)
        both = (self.of_one_pass(first, gold, teacher, share) + self.of_one_pass(second, gold, teacher, share)) / 2
        return both + self.config.rdrop_weight * rdrop_loss(first, second)

    def of_one_pass(
        self, logits: torch.Tensor, gold: torch.Tensor, teacher: torch.Tensor | None, share: torch.Tensor | None
    ) -> torch.Tensor:
        config = self.config
        loss = multilabel_loss(logits, gold, config, self.pos_weight)
        if teacher is not None:
            soft = distillation_loss(logits, teacher, config.distill_temperature)
            loss = (1 - share) * loss + share * soft
        if self.membership is not None:
            loss = loss + config.aux_weight * hierarchy_loss(logits, gold, self.membership)
        return loss
