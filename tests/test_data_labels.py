"""Taxonomies: the three label sets, the original -> group mapping, and mapping files that disagree."""

from __future__ import annotations

import json
import shutil

import pytest

from emoscope.core.errors import DataError, UserError
from emoscope.data import EKMAN_LABELS, ORIGINAL_LABELS, SENTIMENT_LABELS, load_taxonomy
from emoscope.data.labels import PACKAGE_DIR, SENTIMENT_COLOURS, sentiment_colour, text_sentiment

LABEL_FILES = ("emotions.txt", "ekman_mapping.json", "sentiment_dict.json")


def test_the_three_taxonomies():
    original, ekman, sentiment = (load_taxonomy(n) for n in ("original", "ekman", "sentiment"))
    assert len(original.labels) == 28 and original.labels == ORIGINAL_LABELS
    assert original.labels[:3] == ("admiration", "amusement", "anger") and original.labels[-1] == "neutral"
    assert ekman.labels == EKMAN_LABELS
    assert EKMAN_LABELS == ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
    assert sentiment.labels == SENTIMENT_LABELS == ("positive", "negative", "ambiguous", "neutral")
    for tax in (original, ekman, sentiment):
        assert tax.original_labels == ORIGINAL_LABELS
        assert set(tax.ekman_of) == set(tax.sentiment_of) == set(ORIGINAL_LABELS)


@pytest.mark.parametrize(
    ("emotion", "ekman", "sentiment"),
    [
        ("grief", "sadness", "negative"),
        ("surprise", "surprise", "ambiguous"),
        ("neutral", "neutral", "neutral"),
        ("gratitude", "joy", "positive"),
        ("nervousness", "fear", "negative"),
        ("annoyance", "anger", "negative"),
        ("realization", "surprise", "ambiguous"),
        ("disgust", "disgust", "negative"),
    ],
)
def test_hand_picked_groups(emotion, ekman, sentiment):
    i = ORIGINAL_LABELS.index(emotion)
    for name, group in (("ekman", ekman), ("sentiment", sentiment)):
        tax = load_taxonomy(name)
        assert tax.map_labels([i]) == (tax.labels.index(group),)
    assert load_taxonomy("original").map_labels([i]) == (i,)


def test_multi_label_maps_to_the_sorted_union():
    ids = [ORIGINAL_LABELS.index(n) for n in ("surprise", "grief", "joy", "sadness")]
    assert load_taxonomy("ekman").map_labels(ids) == (3, 4, 5)  # joy, sadness, surprise: grief+sadness merge
    assert load_taxonomy("sentiment").map_labels(ids) == (0, 1, 2)
    assert load_taxonomy("original").map_labels(ids) == tuple(sorted(ids))


def test_map_labels_refuses_ids_out_of_range():
    with pytest.raises(UserError, match=r"original label ids must be integers 0\.\.27"):
        load_taxonomy("ekman").map_labels([28])


def test_unknown_taxonomy_lists_the_valid_names():
    with pytest.raises(UserError) as e:
        load_taxonomy("plutchik")
    assert str(e.value) == "unknown taxonomy 'plutchik'; choose one of: original, ekman, sentiment"


def test_agrees_with_the_official_files(goemotions_dir):
    for name in LABEL_FILES:  # the packaged copies are the official ones
        assert (PACKAGE_DIR / name).read_bytes() == (goemotions_dir / name).read_bytes()
    official_ekman = json.loads((goemotions_dir / "ekman_mapping.json").read_text())
    official_sentiment = json.loads((goemotions_dir / "sentiment_dict.json").read_text())
    tax = load_taxonomy("sentiment", goemotions_dir)
    for group, members in official_ekman.items():
        assert all(tax.ekman_of[m] == group for m in members)
    for group, members in official_sentiment.items():
        assert all(tax.sentiment_of[m] == group for m in members)
    assert tax.ekman_of["neutral"] == tax.sentiment_of["neutral"] == "neutral"


@pytest.fixture()
def label_dir(tmp_path):
    for name in LABEL_FILES:
        shutil.copy(PACKAGE_DIR / name, tmp_path / name)
    return tmp_path


def _edit_mapping(path, edit):
    mapping = json.loads(path.read_text())
    edit(mapping)
    path.write_text(json.dumps(mapping))


def test_mapping_missing_an_emotion_names_the_file(label_dir):
    path = label_dir / "ekman_mapping.json"
    _edit_mapping(path, lambda m: m["sadness"].remove("grief"))
    with pytest.raises(DataError) as e:
        load_taxonomy("ekman", label_dir)
    assert str(e.value) == f"{path}: emotions of emotions.txt in no group: grief"


def test_mapping_with_an_unknown_name_names_the_file(label_dir):
    path = label_dir / "sentiment_dict.json"
    _edit_mapping(path, lambda m: m["negative"].append("griefs"))
    with pytest.raises(DataError) as e:
        load_taxonomy("original", label_dir)  # every taxonomy carries both groupings, so both are checked
    assert str(e.value) == f"{path}: 'griefs' (negative) is not an emotion of emotions.txt"


def test_mapping_with_an_emotion_in_two_groups(label_dir):
    path = label_dir / "ekman_mapping.json"
    _edit_mapping(path, lambda m: m["fear"].append("grief"))
    with pytest.raises(DataError, match=r"'grief' is in both 'fear' and 'sadness'"):
        load_taxonomy("ekman", label_dir)


def test_mapping_with_other_groups(label_dir):
    path = label_dir / "sentiment_dict.json"
    _edit_mapping(path, lambda m: m.update(mixed=m.pop("ambiguous")))
    with pytest.raises(DataError) as e:
        load_taxonomy("sentiment", label_dir)
    assert str(e.value) == (f"{path}: groups must be ambiguous, negative, positive; found positive, negative, mixed")


def test_emotions_file_that_lost_an_emotion(label_dir):
    path = label_dir / "emotions.txt"
    path.write_text(path.read_text().replace("grief\n", ""))
    with pytest.raises(DataError) as e:
        load_taxonomy("ekman", label_dir)
    mapping = label_dir / "ekman_mapping.json"
    assert str(e.value) == f"{mapping}: 'grief' (sadness) is not an emotion of emotions.txt"


def test_emotions_file_must_end_with_neutral(label_dir):
    path = label_dir / "emotions.txt"
    path.write_text("neutral\njoy\n")
    with pytest.raises(DataError) as e:
        load_taxonomy("original", label_dir)
    assert str(e.value) == f"{path}: the last label must be 'neutral', found 'joy'"


def test_broken_json_gives_its_line(label_dir):
    path = label_dir / "ekman_mapping.json"
    path.write_text('{\n"anger": ["anger"],\n"disgust": [disgust]\n}')
    with pytest.raises(DataError) as e:
        load_taxonomy("ekman", label_dir)
    assert str(e.value) == f"{path}:3: invalid JSON: Expecting value (column 13)"


def test_missing_files_fall_back_to_the_packaged_copies(tmp_path):
    assert load_taxonomy("ekman", tmp_path) == load_taxonomy("ekman")


def test_the_sentiment_of_a_text_and_its_colour():
    assert text_sentiment(["positive", "neutral"]) == "positive"
    assert text_sentiment(["positive", "negative", "neutral"]) == "mixed"
    assert text_sentiment(["neutral"]) == "neutral" and text_sentiment([]) is None
    assert sentiment_colour("mixed") == SENTIMENT_COLOURS["mixed"]
    assert sentiment_colour(None) == sentiment_colour("joy") == SENTIMENT_COLOURS["other"]
