"""A run's train/dev/test splits from its config: what training, evaluation, captures and benchmarks read."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emoscope.core.config import TrainConfig
from emoscope.core.errors import UserError
from emoscope.data.emoji import emoji_in
from emoscope.data.folds import assign_folds
from emoscope.data.formats import Example
from emoscope.data.labels import Taxonomy, load_taxonomy
from emoscope.data.source import load_examples, load_goemotions


@dataclass
class SplitData:
    taxonomy: Taxonomy
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    # with --emoji_names: the emoji of the whole train split, before any subset, so that the cross-fitted
    # teachers and their student read the same ones by name
    train_emoji: list[str] = field(default_factory=list)


def carve_dev(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(dev, train): a seeded `fraction` of the comment ids goes to dev, so rows that share an id (one comment
    labelled twice) never land on both sides."""
    ids = list(dict.fromkeys(e.id for e in examples))
    order = np.random.default_rng(seed).permutation(len(ids))
    cut = max(1, int(round(len(ids) * fraction)))
    dev_ids = {ids[i] for i in order[:cut]}
    return [e for e in examples if e.id in dev_ids], [e for e in examples if e.id not in dev_ids]


def load_data(config: TrainConfig) -> SplitData:
    """GoEmotions by default; the user's own files when --train_file is given (dev carved off if absent)."""
    if config.train_file is None:
        ge = load_goemotions(config.data_dir, taxonomy=config.taxonomy, skip_bad_rows=config.skip_bad_rows)
        data = SplitData(ge.taxonomy, ge.train, ge.dev, ge.test)
        if ge.skipped:
            print(f"data: skipped {len(ge.skipped)} bad rows (first: {ge.skipped[0]})", flush=True)
    else:
        taxonomy = load_taxonomy(config.taxonomy, config.data_dir)

        def read(path):
            examples = load_examples(
                path,
                taxonomy,
                skip_bad_rows=config.skip_bad_rows,
                min_raters=config.min_raters,
                text_column=config.text_column,
            )
            if examples.summary():
                print(f"data: {path}: {examples.summary()}", flush=True)
            return list(examples)

        train = read(config.train_file)
        if config.dev_file:
            dev = read(config.dev_file)
        else:
            dev, train = carve_dev(train, config.dev_fraction, config.split_seed)
        test = read(config.test_file) if config.test_file else []
        data = SplitData(taxonomy, train, dev, test)
    if config.emoji_names:
        data.train_emoji = emoji_in(e.text for e in data.train)
    rng = np.random.default_rng(config.split_seed)
    if config.max_train_examples and len(data.train) > config.max_train_examples:
        data.train = [data.train[i] for i in sorted(rng.choice(len(data.train), config.max_train_examples, False))]
    if config.crossfit_fold is not None:  # a cross-fitted teacher never sees the fold it will label
        fold_of = assign_folds([e.id for e in data.train], config.crossfit_folds, config.seed)
        data.train = [e for e, fold in zip(data.train, fold_of, strict=True) if fold != config.crossfit_fold]
    if config.max_eval_examples:
        data.dev, data.test = data.dev[: config.max_eval_examples], data.test[: config.max_eval_examples]
    if not data.train or not data.dev:
        raise UserError("training needs at least one train and one dev example")
    return data
