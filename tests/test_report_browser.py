"""The report in a real browser: headless Debian Chromium driven by Playwright, fully offline.

Skipped (with the reason) only when playwright or the Chromium executable is missing, and failed for it under
CI=true or STRICT=1; any other problem launching or using the browser fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import STRICT, missing
from test_report_support import NASTY_TEXT, make_run, write_baseline

from emoscope.core.config import config_yaml, resolve_config
from emoscope.report import COMPARISON_SECTION_IDS, SECTION_IDS, browser, write_comparison, write_report

REASON = browser.unavailable_reason()
if REASON is not None and not STRICT:
    pytest.skip(f"the report's browser tests: {REASON}", allow_module_level=True)  # one line, not one per test


@pytest.fixture(autouse=True, scope="module")
def _real_browser():
    """Under STRICT=1 / CI a missing browser fails every test here; module-scoped, so it runs before the
    module-scoped fixtures that launch the browser."""
    if REASON is not None:
        missing(f"no real browser here: {REASON}")


# Pixel position (viewport coordinates) of every plotted t-SNE point, and for each the distance to its
# nearest neighbour, so a test can hover a point no other point competes with.
POINTS_JS = """
() => {
  const gd = document.getElementById('tsne-plot');
  const fl = gd._fullLayout, box = gd.getBoundingClientRect();
  const pts = [];
  gd.data.forEach((t, ti) => t.x.forEach((x, k) => pts.push({
    trace: ti, idx: t.customdata[k],
    px: box.left + fl._size.l + fl.xaxis.l2p(x), py: box.top + fl._size.t + fl.yaxis.l2p(t.y[k])})));
  pts.forEach(p => {
    p.nn = Math.min(...pts.filter(q => q !== p).map(q => Math.hypot(p.px - q.px, p.py - q.py)));
  });
  return pts;
}
"""
PLOTTED_JS = """
() => { const gd = document.getElementById('tsne-plot');
        return {names: gd.data.map(t => t.name),
                xy: gd.data.flatMap(t => t.customdata.map((c, k) => [c, t.x[k], t.y[k]]))
                           .sort((a, b) => a[0] - b[0])}; }
"""


def squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser")
    run = make_run(root / "run")
    # A configuration as emoscope writes it, so the overview shows what differs from the preset.
    (run / "config.yaml").write_text(config_yaml(resolve_config("cpu-default", {"head": "native", "epochs": 2})))
    metrics = json.loads((run / "eval" / "test_metrics.json").read_text())  # with the CIs training writes
    metrics.update(
        macro_f1_ci95_low=0.3512, macro_f1_ci95_high=0.3904, micro_f1_ci95_low=0.4523, micro_f1_ci95_high=0.4897
    )
    (run / "eval" / "test_metrics.json").write_text(json.dumps(metrics))
    base = write_baseline(root / "baseline")
    return {
        "run": run,
        "report": write_report(run),
        "comparison": write_comparison([run, base], root / "comparison.html"),
    }


def test_standalone_screenshot_is_not_blank(pages, tmp_path):
    """The helper the closing note uses: starts its own browser (in its own thread)."""
    from PIL import Image

    png = browser.screenshot(pages["report"], tmp_path / "report.png", full_page=False)
    with Image.open(png) as im:
        assert im.size == (1400, 900)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 200


def test_the_first_screen_is_results_and_the_toolbars_leave_the_titles_alone(pages, tmp_path):
    """What a researcher came for opens the page: the headline numbers with their CIs, the per-emotion F1
    chart and the layer findings, above a configuration that shows only what differs from the preset."""
    from PIL import Image

    with browser.launch() as b, browser.open_page(pages["report"], browser=b) as (pg, log):
        pg.set_viewport_size({"width": 1400, "height": 900})
        top = {
            name: pg.locator(selector).first.bounding_box()["y"]
            for name, selector in (
                ("headline", "#overview .cards"),
                ("chart", "#fig-per-emotion-f1"),
                ("findings", "#layer-findings"),
                ("differences", "#config-differences"),
            )
        }
        assert top["headline"] < top["chart"] < top["findings"] < top["differences"]
        assert top["chart"] < 900  # the chart starts on the first screen
        cards = pg.locator("#overview .cards").inner_text()
        assert "[0.351, 0.390]\ntest macro f1 (95% CI)" in cards and "[0.452, 0.490]\ntest micro f1 (95% CI)" in cards
        assert pg.locator("#config-differences").inner_text().split() == [
            "key",
            "value",
            "head",
            "native",
            "epochs",
            "2",
        ]
        assert not pg.locator("#config-table").is_visible()  # folded away, one click from view
        pg.locator("#overview details summary", has_text="full configuration").click()
        assert pg.locator("#config-table").is_visible()
        for fid in ("fig-per-emotion-f1", "fig-step-loss"):
            pg.locator(f"#{fid}").scroll_into_view_if_needed()
            pg.locator(f"#{fid}").hover()
            bar, title = (pg.locator(f"#{fid} {part}").bounding_box() for part in (".modebar", ".gtitle"))
            assert bar is not None and title is not None
            assert bar["y"] + bar["height"] <= title["y"] or title["x"] + title["width"] <= bar["x"], fid
        pg.evaluate("window.scrollTo(0, 0)")
        shot = pg.screenshot(path=str(tmp_path / "first-screen.png"))
        assert log.problems == [], log.problems
    with Image.open(tmp_path / "first-screen.png") as im:
        assert im.size == (1400, 900) and len(shot) > 0


@pytest.fixture(scope="module")
def chromium():
    with browser.launch() as b:
        yield b


@pytest.fixture(scope="module")
def loaded(pages, chromium):
    """The report, opened once for the interaction tests (each test puts back what it changes)."""
    with browser.open_page(pages["report"], browser=chromium) as (pg, log):
        yield pg, log
    assert log.problems == [], log.problems


@pytest.fixture()
def page(loaded):
    pg, log = loaded
    yield pg
    assert log.problems == [], log.problems


def test_loads_without_errors_and_every_section_renders(loaded):
    pg, log = loaded
    assert log.problems == []
    for sid in SECTION_IDS:
        assert pg.locator(f"section#{sid}").count() == 1, sid
        assert pg.locator(f"section#{sid} h2").is_visible(), sid
    figure_divs = pg.eval_on_selector_all("[data-figure]", "els => els.map(e => e.id)")
    assert len(figure_divs) >= 10
    for fid in figure_divs:
        assert pg.locator(f"#{fid} .main-svg").count() >= 1, f"{fid} was not drawn"
    assert pg.locator("#tsne-plot .scatterlayer .point").count() == 300
    assert pg.evaluate("typeof window.__pwned") == "undefined"
    assert pg.evaluate("window.emoscopeError === undefined")
    assert pg.locator("img.fig").count() == 9
    assert pg.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    # the data's markup is shown as text, not run or rendered
    first = pg.locator("#mistakes-table tbody tr").first.locator("td.text").inner_text()
    assert first.startswith("<b>bold?</b>")


def test_hovering_a_tsne_point_shows_its_comment(page, pages):
    probe = [json.loads(x) for x in (pages["run"] / "captures" / "probe.jsonl").read_text().splitlines()]
    assert probe[0]["text"] == NASTY_TEXT  # must show literally: quotes, <script>, &, <!--
    page.locator("#tsne-plot").scroll_into_view_if_needed()
    pts = page.evaluate(POINTS_JS)
    assert len(pts) == 300
    nasty = next(p for p in pts if p["idx"] == 0)
    ordinary = max((p for p in pts if p["idx"] != 0), key=lambda p: p["nn"])
    assert nasty["nn"] > 12 and ordinary["nn"] > 3
    for p in (nasty, ordinary):
        page.mouse.move(0, 0)
        page.mouse.move(p["px"], p["py"])
        label = page.locator("#tsne-plot .hoverlayer .hovertext")
        label.wait_for(state="visible", timeout=5000)
        shown = label.text_content()
        assert squash(probe[p["idx"]]["text"]) in squash(shown), shown
        assert probe[p["idx"]]["id"] in shown and "human:" in shown and "predicted:" in shown
    page.mouse.move(0, 0)
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_layer_epoch_and_colour_dropdowns_change_the_plot(page):
    before = page.evaluate(PLOTTED_JS)
    page.select_option("#tsne-point", "embeddings")
    after_point = page.evaluate(PLOTTED_JS)
    assert [r[0] for r in before["xy"]] == [r[0] for r in after_point["xy"]]
    assert before["xy"] != after_point["xy"]
    assert "embeddings" in page.locator("#tsne-plot .gtitle").text_content()
    page.select_option("#tsne-epoch", "0")
    after_epoch = page.evaluate(PLOTTED_JS)
    assert after_epoch["xy"] != after_point["xy"]
    assert "epoch 0" in page.locator("#tsne-plot .gtitle").text_content()
    assert len(before["names"]) > 6
    page.select_option("#tsne-colour", "sentiment")
    by_group = page.evaluate(PLOTTED_JS)
    assert set(by_group["names"]) <= {"positive", "negative", "ambiguous", "neutral", "mixed", "other"}
    assert sorted(by_group["xy"]) == sorted(after_epoch["xy"])
    page.select_option("#tsne-colour", "emotion")
    page.select_option("#tsne-epoch", "2")
    page.select_option("#tsne-point", "classifier")
    assert page.evaluate(PLOTTED_JS) == before


def test_mistakes_filter_changes_visible_rows(page):
    rows = page.locator("#mistakes-table tbody tr")
    visible = "els => els.filter(e => e.offsetParent !== null).map(e => e.getAttribute('data-label'))"
    assert len(page.eval_on_selector_all("#mistakes-table tbody tr", visible)) == 60
    page.select_option("#mistakes-label", "anger")
    shown = page.eval_on_selector_all("#mistakes-table tbody tr", visible)
    assert shown == ["anger"] * 6
    page.select_option("#mistakes-kind", "false_negative")
    assert len(page.eval_on_selector_all("#mistakes-table tbody tr", visible)) == 3
    assert page.locator("[data-count-for=mistakes-table]").inner_text() == "3 of 60 rows"
    page.select_option("#mistakes-label", "")
    page.select_option("#mistakes-kind", "")
    assert len(page.eval_on_selector_all("#mistakes-table tbody tr", visible)) == rows.count() == 60


def test_clicking_a_header_sorts_the_per_emotion_table(page):
    headers = page.locator("#per-emotion-table thead th")
    names = [headers.nth(i).inner_text() for i in range(headers.count())]
    f1_col = names.index("f1")

    def column(i: int) -> list[str]:
        js = f"rows => rows.map(r => r.cells[{i}].dataset.v ?? r.cells[{i}].textContent)"
        return page.eval_on_selector_all("#per-emotion-table tbody tr", js)

    original = column(f1_col)
    headers.nth(f1_col).click()
    desc = [float(v) for v in column(f1_col)]
    assert desc == sorted(desc, reverse=True) and desc != [float(v) for v in original]
    assert headers.nth(f1_col).get_attribute("aria-sort") == "descending"
    headers.nth(f1_col).click()
    asc = [float(v) for v in column(f1_col)]
    assert asc == sorted(asc)
    headers.nth(0).click()
    labels = column(0)
    assert labels == sorted(labels) and len(labels) == 28
    assert headers.nth(f1_col).get_attribute("aria-sort") == "none"


def test_layer_metric_selector_switches_the_figure(page):
    title = "#fig-layer-metrics .gtitle"
    assert "probe_macro_f1" in page.locator(title).text_content()
    page.select_option("#fig-layer-metrics-select", "rsa_sentiment")
    assert "rsa_sentiment" in page.locator(title).text_content()
    assert page.evaluate("document.getElementById('fig-layer-metrics').data.length") == 3
    page.select_option("#fig-layer-metrics-select", "probe_macro_f1")


def test_screenshot_of_the_tsne_view_is_not_blank(page, tmp_path):
    from PIL import Image

    page.locator("#tsne").screenshot(path=str(tmp_path / "tsne.png"))
    with Image.open(tmp_path / "tsne.png") as im:
        assert im.height > 500
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20)) > 100


def test_comparison_page_loads_cleanly(pages, chromium):
    with browser.open_page(pages["comparison"], browser=chromium) as (pg, log):
        for sid in COMPARISON_SECTION_IDS:
            assert pg.locator(f"section#{sid}").count() == 1, sid
        assert pg.evaluate("document.getElementById('fig-compare-f1').data.length") == 2
        assert pg.locator("#fig-compare-layers .main-svg").count() >= 1
    assert log.problems == []
