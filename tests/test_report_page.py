"""The HTML report and the comparison page, checked as files (browser tests: test_report_browser.py)."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_report_support import (
    FIGURES,
    LABELS,
    NASTY_MISTAKE,
    NASTY_SUMMARY,
    NASTY_TEXT,
    make_run,
    write_baseline,
)

from emoscope.core.errors import DataError, UserError
from emoscope.report import COMPARISON_SECTION_IDS, SECTION_IDS, write_comparison, write_report
from emoscope.report._html import json_for_script

ANALYSIS_SECTIONS = (
    "confusion",
    "misclassification",
    "correlation",
    "dendrograms",
    "layers",
    "tsne",
    "mistakes",
)
URL_ATTRS = {"src", "href", "srcset", "poster", "action", "formaction", "data", "background", "xlink:href"}


class _Scan(HTMLParser):
    """Tags, ids, URL-valued attributes and script blocks of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.scripts: list[dict] = []
        self.meta: list[dict] = []
        self._in_script: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        for k, v in attrs:
            if k in URL_ATTRS and v is not None:
                self.urls.append((tag, k, v))
        if tag == "meta":
            self.meta.append(a)
        if tag == "script":
            self._in_script = {"attrs": a, "text": ""}
            self.scripts.append(self._in_script)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self._in_script["text"] += data


def scan(html: str) -> _Scan:
    s = _Scan()
    s.feed(html)
    s.close()
    return s


def section_html(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{re.escape(sid)}">(.*?)</section>', html, re.S)
    assert m, f"section {sid} missing"
    return m.group(1)


def page_data(html: str) -> dict:
    s = scan(html)
    block = next(x for x in s.scripts if x["attrs"].get("id") == "emoscope-data")
    return json.loads(block["text"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    full = make_run(root / "full")
    bare = root / "no-analysis"
    shutil.copytree(full, bare, ignore=shutil.ignore_patterns("analysis"))
    base = write_baseline(root / "tfidf-baseline")
    return {"full": full, "bare": bare, "base": base}


@pytest.fixture(scope="module")
def report(runs) -> str:
    out = write_report(runs["full"])
    assert out == runs["full"] / "report.html"
    return out.read_text(encoding="utf-8")


def test_every_section_is_present_and_linked(report):
    s = scan(report)
    for sid in SECTION_IDS:
        assert s.ids.count(sid) == 1, sid
        assert f'href="#{sid}"' in report
        assert "Not available" not in section_html(report, sid), sid
    for sub in (
        "per-emotion-table",
        "per-emotion-f1",
        "cka",
        "summary",
        "tsne-plot",
        "tsne-point",
        "tsne-epoch",
        "tsne-colour",
        "mistakes-table",
        "mistakes-label",
        "config-table",
        "environment-table",
        "metrics-table",
        "thresholds-info",
    ):
        assert sub in s.ids, sub


def test_nothing_is_loaded_from_a_network(report):
    s = scan(report)
    assert "link" not in s.tags and "iframe" not in s.tags
    for tag, attr, value in s.urls:
        assert value.startswith(("#", "data:")), (tag, attr, value[:80])
    for script in s.scripts:
        assert "src" not in script["attrs"]
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", report)
    assert not re.search(r"@import", report)
    csp = next(m["content"] for m in s.meta if m.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp


def test_plotly_is_embedded_once_and_pngs_inline(report):
    assert report.count("plotly.js v") == 1
    s = scan(report)
    assert len(s.scripts) == 3  # data, plotly.js, report.js: a comment cannot have closed a script early
    imgs = [v for tag, attr, v in s.urls if tag == "img"]
    assert len(imgs) == len(FIGURES)
    assert all(v.startswith("data:image/png;base64,") for v in imgs)
    assert len(report) < 4_900_000 + 1_500_000


def test_text_from_data_is_escaped(report):
    # no markup from the data became an element or an event-handler attribute
    s = scan(report)
    assert not [(t, k) for t, k, _ in s.urls if k.startswith("on")]
    assert not re.search(r"<[a-z]+[^>]*\son[a-z]+=", report)
    assert s.tags.count("img") == len(FIGURES) and "<b>bold?" not in report
    # visible text: only the escaped forms appear
    assert NASTY_MISTAKE not in report
    assert "&lt;b&gt;bold?&lt;/b&gt; &amp; &quot;quoted&quot;, &#x27;single&#x27; &lt;/script&gt;" in report
    assert NASTY_SUMMARY not in report and "&lt;img src=x onerror=" in report
    assert "a &lt;b&gt;note&lt;/b&gt; &amp; &#x27;quotes&#x27;" in report
    assert re.search(r"<script>window", report) is None
    assert report.lower().count("</script>") == 3
    # embedded data: no '<' at all, and the exact text comes back
    block = next(x for x in scan(report).scripts if x["attrs"].get("id") == "emoscope-data")["text"]
    assert "<" not in block and ">" not in block
    data = json.loads(block)
    assert data["tsne"]["text"][0] == NASTY_TEXT


def test_tables_are_sortable_and_mistakes_filterable(report):
    per = section_html(report, "per-emotion")
    assert 'class="data sortable"' in per and 'data-col="0"' in per
    for lab in LABELS:
        assert f">{lab}</td>" in per
    mis = section_html(report, "mistakes")
    assert mis.count('data-label="anger"') == 6
    assert 'data-filter-table="mistakes-table"' in mis
    assert 'value="anger"' in mis


def test_thresholds_and_where_they_were_chosen(report):
    met = section_html(report, "metrics")
    assert "per_emotion" in met and "chosen on the <b>dev</b> split" in met
    assert "macro_f1" in met and "hamming_loss" in met


def test_tsne_data_joins_probe_and_predictions(report):
    t = page_data(report)["tsne"]
    assert t["points"][0] == "embeddings" and t["points"][-1] == "classifier"
    assert t["epochs"] == [0, 1, 2]
    assert len(t["coords"]) == 3 * 8
    assert len(t["text"]) == 300 and len(t["coords"]["2|classifier"]["i"]) == 300
    assert t["pred"][-1] is None and all(p is not None for p in t["pred"][:290])
    assert t["human"][5] and t["group"][5] in range(6)


def test_layer_metrics_by_depth_per_epoch(report):
    d = page_data(report)
    figs = d["figureSets"]["fig-layer-metrics"]
    assert "probe_macro_f1" in figs and "cka_vs_epoch0" in figs
    fig = figs["probe_macro_f1"]
    assert [t["name"] for t in fig["data"]] == ["epoch 0", "epoch 1", "epoch 2"]
    assert fig["layout"]["xaxis"]["ticktext"][0] == "embeddings"
    assert "fig-cka-0" in d["figures"]
    assert "<strong>layer_3</strong>" in section_html(report, "layers")


def test_missing_analysis_gives_the_note(runs):
    html = write_report(runs["bare"]).read_text(encoding="utf-8")
    s = scan(html)
    for sid in SECTION_IDS:
        assert s.ids.count(sid) == 1
    for sid in ANALYSIS_SECTIONS:
        sec = section_html(html, sid)
        assert "Not available" in sec and "emoscope analyze" in sec, sid
    for sid in ("overview", "training", "metrics", "per-emotion"):
        assert "emoscope analyze" not in section_html(html, sid)
    assert page_data(html)["tsne"] is None
    assert "img" not in s.tags


def test_baseline_folder_report(runs):
    html = write_report(runs["base"]).read_text(encoding="utf-8")
    assert "metrics.jsonl</code> not found" in section_html(html, "training")
    assert "config.yaml</code> not found" in section_html(html, "overview")
    assert "fig-per-emotion-f1" in page_data(html)["figures"]
    assert "global" in section_html(html, "metrics")


def test_comparison_page(runs, tmp_path):
    out = write_comparison([runs["full"], runs["bare"], runs["base"]], tmp_path / "cmp" / "compare.html")
    html = out.read_text(encoding="utf-8")
    s = scan(html)
    for sid in COMPARISON_SECTION_IDS:
        assert s.ids.count(sid) == 1, sid
    d = page_data(html)
    bars = d["figures"]["fig-compare-f1"]["data"]
    assert [b["name"] for b in bars] == ["full", "no-analysis", "tfidf-baseline"]
    assert len(bars[0]["y"]) == 28
    layers = d["figureSets"]["fig-compare-layers"]["probe_macro_f1"]["data"]
    assert [t["name"] for t in layers] == ["full"]
    lay = section_html(html, "layers")
    assert "Not available for no-analysis, tfidf-baseline" in lay
    summ = section_html(html, "summary")
    assert "macro_f1" in summ and "hamming_loss" in summ and 'class="num best"' in summ
    for tag, attr, value in s.urls:
        assert value.startswith(("#", "data:")), (tag, attr, value[:80])
    assert html.count("plotly.js v") == 1


def test_comparison_of_same_named_runs_and_errors(runs, tmp_path):
    other = tmp_path / "elsewhere" / "full"
    shutil.copytree(runs["base"], other)
    html = write_comparison([runs["full"], other], tmp_path).read_text(encoding="utf-8")
    names = [b["name"] for b in page_data(html)["figures"]["fig-compare-f1"]["data"]]
    assert len(set(names)) == 2
    with pytest.raises(UserError):
        write_comparison([], tmp_path / "x.html")


def test_not_a_run_folder(tmp_path):
    with pytest.raises(UserError, match="not found"):
        write_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not an emoscope run folder"):
        write_report(tmp_path / "empty")


def test_malformed_inputs_name_file_and_line(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["base"], run)
    (run / "metrics.jsonl").write_text('{"kind": "step", "step": 1, "loss": 1.0}\n{oops\n{"kind": "step"}\n')
    with pytest.raises(DataError, match=r"metrics\.jsonl:2: not valid JSON"):
        write_report(run)
    # a last line still being written by a live run is skipped, not fatal
    (run / "metrics.jsonl").write_text('{"kind": "step", "step": 1, "loss": 1.0}\n{"kind": "st')
    assert write_report(run).is_file()
    (run / "analysis").mkdir()
    (run / "analysis" / "tsne_coords.csv").write_text("epoch,point,probe_index,x,y\n0,layer_1,7,0.1,0.2\n")
    (run / "captures").mkdir()
    (run / "captures" / "probe.jsonl").write_text('{"id": "a", "text": "t", "labels": [1]}\n')
    with pytest.raises(DataError, match=r"tsne_coords\.csv:2: probe_index"):
        write_report(run)


def test_resumed_run_repeats_steps_last_wins(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["base"], run)
    lines = [{"kind": "step", "step": s, "epoch": 1, "loss": 9.0, "lr": 1e-5, "examples_per_s": 1} for s in (1, 2, 3)]
    lines += [{"kind": "step", "step": s, "epoch": 1, "loss": 1.0, "lr": 1e-5, "examples_per_s": 1} for s in (2, 3)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    fig = page_data(write_report(run).read_text())["figures"]["fig-step-loss"]
    assert fig["data"][0]["x"] == [1, 2, 3] and fig["data"][0]["y"] == [9.0, 1.0, 1.0]


def test_json_for_script_is_safe():
    nasty = {"t": "</script><script>alert('x')</script> & \u2028", "n": float("nan")}
    text = json_for_script(nasty)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"t": nasty["t"], "n": None}


def test_the_summary_renders_from_summary_json(report):
    """The layers section tells analysis/summary.json's findings: verdicts, the per-point table, pairs, notes."""
    summ = section_html(report, "layers")
    assert "After training (epoch 2): <strong>layer_3</strong> is the first point" in summ
    assert "At the first capture (epoch 0): no point reaches 0.10 (highest: layer_6, \u2013)" in summ
    assert 'id="summary-points"' in summ and summ.count("<td>layer_") >= 6
    assert "annoyance / anger: 0.930" in summ and "annoyance \u2192 anger: 0.200" in summ
    assert "No <code>thresholds.json</code>: test predictions" in summ


def test_a_narrow_wide_matrix_is_not_taken_for_long_form(tmp_path):
    from emoscope.report.reader import read_matrix

    path = tmp_path / "cka_epoch0.csv"
    rows = ["point,epoch 0,epoch 1,epoch 2"] + [f"layer_{i},1,0.9,0.{i}" for i in range(1, 9)]
    path.write_text("\n".join(rows) + "\n")
    [(source, matrix)] = read_matrix(path).items()
    assert source == "" and len(matrix.z) == 8 and len(matrix.z[0]) == 3


def test_the_lexical_floor_beside_the_model(runs, tmp_path):
    """A run with its own TF-IDF baseline shows how far above that floor it is, on the same split."""
    run = tmp_path / "run"
    shutil.copytree(runs["bare"], run)
    assert "TF-IDF floor" not in write_report(run).read_text(encoding="utf-8")
    shutil.copytree(runs["base"], run / "baseline")
    html = section_html(write_report(run).read_text(encoding="utf-8"), "overview")
    model = json.loads((run / "eval" / "test_metrics.json").read_text())["macro_f1"]
    floor = json.loads((run / "baseline" / "eval" / "test_metrics.json").read_text())["macro_f1"]
    assert f"above the TF-IDF floor ({floor:.4f}), test macro F1" in html
    assert f"{model - floor:+.4f}" in html


def test_dev_scores_per_epoch_share_an_axis_only_with_scores(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["base"], run)
    lines = [
        {
            "kind": "epoch",
            "epoch": e,
            "step": 10 * e,
            "train_loss": 0.1,
            "dev_macro_f1": f,
            "dev_micro_f1": f,
            "best_epoch": e,
            "seconds": 100.0 * e,
        }
        for e, f in ((1, 0.4), (2, 0.5))
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    fig = page_data(write_report(run).read_text())["figures"]["fig-epoch-dev"]
    assert sorted(trace["name"] for trace in fig["data"]) == ["dev_macro_f1", "dev_micro_f1"]


def test_the_overview_shows_what_differs_from_the_preset_and_folds_the_rest(runs, tmp_path):
    from emoscope.core.config import config_yaml, resolve_config

    run = tmp_path / "run"
    shutil.copytree(runs["bare"], run)
    nested = section_html(write_report(run).read_text(encoding="utf-8"), "overview")
    assert "config-differences" not in nested and "<details><summary>full configuration" not in nested
    assert 'id="config-table"' in nested  # a config.yaml this version cannot read is shown whole
    (run / "config.yaml").write_text(config_yaml(resolve_config("cpu-default", {"seed": 7, "max_len": 96})))
    html = section_html(write_report(run).read_text(encoding="utf-8"), "overview")
    differences = html.split('id="config-differences"')[1].split("</table>")[0]
    assert re.findall(r"<td>([^<]*)</td>", differences) == ["max_len", "96", "seed", "7"]
    folded = html.split("<details><summary>full configuration (")[1]
    assert 'id="config-table"' in folded.split("</details>")[0]
