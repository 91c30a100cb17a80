"""TF-IDF + one-vs-rest logistic regression: the floor every neural model has to beat.

It goes through the same threshold choice (`choose_thresholds`, on dev) and the same scoring
(`compute_metrics`, on test) as a trained model and writes a folder laid out like a run folder, so that
comparisons read both the same way. `run_baseline` takes plain lists, not `emoscope.data` objects, so it
depends only on the data, not on how it was loaded; `run_baseline_on` feeds it a loaded dataset's splits.

Settings were picked on dev: word 1-2 grams with C=4 (dev macro-F1 0.49 with per-emotion thresholds).
Adding character 3-5 grams (``char_ngrams=True``, best with C=2) raised it to 0.51 but made fitting four to
five times slower, so it is off by default.

The fitted model is saved without pickle (`save_model`: settings and vocabularies as JSON, numbers as
safetensors) and `load_model` rebuilds a scorer giving the same probabilities, so a baseline folder, and an
ensemble that blends one in, can score new texts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy.sparse import hstack
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from emoscope.core.errors import UserError
from emoscope.core.runfolder import (
    BASELINE_FEATURES,
    BASELINE_INFO,
    BASELINE_WEIGHTS,
    EVAL,
    LABELS,
    THRESHOLDS,
    read_labels,
    save_thresholds,
    write_labels,
)
from emoscope.core.vocab import TUNED_THRESHOLD_STRATEGY
from emoscope.evaluate.metrics import EvalResult, as_indicator_matrix, as_label_names
from emoscope.evaluate.split import score_labelled
from emoscope.evaluate.thresholds import choose_thresholds


def _canonical_csr(x):
    """CSR with sorted, summed indices: joblib hands worker processes a read-only memory map of X, and
    liblinear's input check would otherwise try to sort it in place and fail."""
    x = x.tocsr()
    x.sum_duplicates()
    return x


def build_model(char_ngrams: bool = False, seed: int = 0, n_jobs: int = 2) -> Pipeline:
    """The unfitted pipeline: TF-IDF features, then one liblinear logistic regression per label."""
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode")
    features = [("word", word)]
    if char_ngrams:
        features.append(
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(3, 5), min_df=3, sublinear_tf=True, max_features=50_000
                ),
            )
        )
    classifier = LogisticRegression(C=2.0 if char_ngrams else 4.0, solver="liblinear", max_iter=1000, random_state=seed)
    return Pipeline(
        [
            ("features", FeatureUnion(features)),
            ("canonical", FunctionTransformer(_canonical_csr, accept_sparse=True)),
            ("classifier", OneVsRestClassifier(classifier, n_jobs=n_jobs)),
        ]
    )


def save_model(model: Pipeline, out_dir: Path) -> None:
    """The fitted pipeline as `tfidf.json` (each vectorizer's settings and its terms in column order) and
    `tfidf_logreg.safetensors` (`idf.<name>` per vectorizer, `coef` [labels, features], `intercept`)."""
    blocks, tensors = [], {}
    for name, vectorizer in model.named_steps["features"].transformer_list:
        settings = vectorizer.get_params()  # strings, numbers and None: `build_model` sets no custom functions
        settings["dtype"] = np.dtype(settings["dtype"]).name
        del settings["vocabulary"]
        terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
        blocks.append({"name": name, "settings": settings, "terms": terms})
        tensors[f"idf.{name}"] = vectorizer.idf_
    n_features = sum(len(block["terms"]) for block in blocks)
    coef, intercept = [], []
    for estimator in model.named_steps["classifier"].estimators_:
        if hasattr(estimator, "coef_"):
            coef.append(estimator.coef_[0])
            intercept.append(estimator.intercept_[0])
        else:  # a label with one class in train: sklearn predicts that class with certainty
            coef.append(np.zeros(n_features))
            intercept.append(np.inf if estimator.y_[0] else -np.inf)
    tensors["coef"] = np.stack(coef).astype(np.float64)
    tensors["intercept"] = np.array(intercept, dtype=np.float64)
    (out_dir / BASELINE_FEATURES).write_text(
        json.dumps({"blocks": blocks}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    save_file(tensors, str(out_dir / BASELINE_WEIGHTS))


class BaselineModel:
    """A saved TF-IDF + logistic-regression baseline: the probabilities of the fitted pipeline, rebuilt from
    `save_model`'s files with no pickle."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        missing = [name for name in (BASELINE_FEATURES, BASELINE_WEIGHTS, LABELS) if not (folder / name).is_file()]
        if missing:
            raise UserError(
                f"{folder} is not a saved TF-IDF baseline ({missing[0]} is missing; older baseline "
                "folders did not save the model): refit with emoscope baseline"
            )
        self.labels = read_labels(folder)["labels"]
        tensors = load_file(str(folder / BASELINE_WEIGHTS))
        self.vectorizers = []
        for block in json.loads((folder / BASELINE_FEATURES).read_text(encoding="utf-8"))["blocks"]:
            settings = dict(
                block["settings"],
                ngram_range=tuple(block["settings"]["ngram_range"]),
                dtype=np.dtype(block["settings"]["dtype"]).type,
            )
            vectorizer = TfidfVectorizer(**settings, vocabulary=block["terms"])
            vectorizer.idf_ = tensors[f"idf.{block['name']}"]
            self.vectorizers.append(vectorizer)
        self.coef, self.intercept = tensors["coef"], tensors["intercept"]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """[N, labels] in `self.labels` order: sigmoid of each label's linear score, as liblinear's model."""
        features = hstack([v.transform(texts) for v in self.vectorizers], format="csr")
        return expit(features @ self.coef.T + self.intercept)


def _texts(texts: Sequence[str], name: str) -> list[str]:
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise UserError(f"{name} must be a non-empty list of strings")
    return texts


def run_baseline(
    train_texts: Sequence[str],
    train_y,
    dev_texts: Sequence[str],
    dev_y,
    test_texts: Sequence[str],
    test_y,
    label_names: Sequence[str],
    out_dir: str | Path,
    threshold_strategy: str = TUNED_THRESHOLD_STRATEGY,
    seed: int = 0,
    *,
    dev_ids: Sequence[str] | None = None,
    test_ids: Sequence[str] | None = None,
    fixed_value: float = 0.5,
    char_ngrams: bool = False,
    n_jobs: int = 2,
    taxonomy: str = "original",
    sentiment_of: Mapping[str, str] | None = None,
    ekman_of: Mapping[str, str] | None = None,
) -> EvalResult:
    """Fit on train, choose thresholds on dev, score test; returns the test `EvalResult`.

    Labels (``*_y``) are either {0,1} numpy matrices [N, L] or one tuple of label indices per example.
    Writes into ``out_dir``: ``labels.json``, ``thresholds.json``, ``baseline.json`` (settings and time),
    the fitted model (`save_model`),
    ``eval/dev_metrics.json`` + ``eval/dev_per_emotion.csv`` (optimistic: thresholds were tuned there),
    ``eval/test_metrics.json``, ``eval/test_per_emotion.csv`` and ``eval/{dev,test}_predictions.jsonl``
    (what `emoscope ensemble` blends with a model's).
    ``sentiment_of`` / ``ekman_of`` go into ``labels.json`` as the taxonomy gives them (empty if absent).
    """
    started = time.perf_counter()
    names = as_label_names(label_names, len(label_names))
    n_labels = len(names)
    splits = {}
    given = (("train", train_texts, train_y), ("dev", dev_texts, dev_y), ("test", test_texts, test_y))
    for split, texts, y in given:
        texts = _texts(texts, f"{split}_texts")
        y = as_indicator_matrix(y, f"{split}_y", n_labels)
        if len(y) != len(texts):
            raise UserError(f"{split}: {len(texts)} texts but {len(y)} label rows")
        splits[split] = (texts, y)
    for split, ids in (("dev", dev_ids), ("test", test_ids)):
        if ids is not None and len(ids) != len(splits[split][0]):
            raise UserError(f"got {len(ids)} {split}_ids for {len(splits[split][0])} {split} texts")

    model = build_model(char_ngrams=char_ngrams, seed=seed, n_jobs=n_jobs)
    model.fit(*splits["train"])
    p_dev = model.predict_proba(splits["dev"][0])
    p_test = model.predict_proba(splits["test"][0])

    choice = choose_thresholds(
        threshold_strategy, y_dev=splits["dev"][1], p_dev=p_dev, fixed_value=fixed_value, label_names=names
    )
    out_dir = Path(out_dir)
    eval_dir = out_dir / EVAL
    save_thresholds(out_dir / THRESHOLDS, choice, names)
    scored = {
        split: score_labelled(eval_dir, split, *splits[split], probs, choice.values, names, ids)
        for split, probs, ids in (("dev", p_dev, dev_ids), ("test", p_test, test_ids))
    }
    write_labels(out_dir, taxonomy, names, sentiment_of, ekman_of)
    info = {
        "model": "tfidf-logreg",
        "char_ngrams": char_ngrams,
        "seed": seed,
        "threshold_strategy": threshold_strategy,
        "threshold_notes": list(choice.notes),
        "n_train": len(splits["train"][0]),
        "n_features": sum(len(v.vocabulary_) for _, v in model.named_steps["features"].transformer_list),
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    (out_dir / BASELINE_INFO).write_text(json.dumps(info, indent=2) + "\n")
    save_model(model, out_dir)
    return scored["test"]


def run_baseline_on(
    data,
    out_dir: str | Path,
    threshold_strategy: str = TUNED_THRESHOLD_STRATEGY,
    seed: int = 0,
    fixed_value: float = 0.5,
) -> EvalResult:
    """`run_baseline` on a dataset with `train`, `dev`, `test` (lists of `Example`) and `taxonomy`: what
    `emoscope baseline` runs on GoEmotions and every training run on its own splits."""
    n = len(data.taxonomy.labels)
    splits = [
        ([e.text for e in split], as_indicator_matrix([e.labels for e in split], name, n))
        for name, split in (("train", data.train), ("dev", data.dev), ("test", data.test))
    ]
    tax = data.taxonomy
    return run_baseline(
        *splits[0],
        *splits[1],
        *splits[2],
        list(tax.labels),
        out_dir,
        threshold_strategy=threshold_strategy,
        seed=seed,
        dev_ids=[e.id for e in data.dev],
        test_ids=[e.id for e in data.test],
        fixed_value=fixed_value,
        taxonomy=tax.name,
        sentiment_of=tax.sentiment_of,
        ekman_of=tax.ekman_of,
    )
