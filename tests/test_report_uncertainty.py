"""The report reads the analysis' intervals and ablation: interval columns are not metrics, the layer
plots get bands, the ablation becomes an emotion x layer matrix."""

from __future__ import annotations

from emoscope.report import charts as F
from emoscope.report.page import Page
from emoscope.report.reader import RunData
from emoscope.report.run_page import _layers


def test_interval_columns_are_bands_not_metrics_and_the_ablation_is_a_matrix(tmp_path):
    analysis = tmp_path / "analysis"
    analysis.mkdir()
    (analysis / "layer_metrics.csv").write_text(
        "epoch,point,depth,rsa_sentiment,rsa_sentiment_ci95_low,rsa_sentiment_ci95_high,rsa_sentiment_p\n"
        "1,layer_1,0,0.1,0.0,0.2,0.3\n1,layer_2,1,0.5,0.4,0.6,0.001\n"
    )
    (analysis / "layer_ablation.csv").write_text(
        "kind,layer,label,f1,drop,drop_ci95_low,drop_ci95_high\n"
        "reset,layer_1,macro,0.5,0.1,0.0,0.2\nreset,layer_1,joy,0.4,0.2,0.1,0.3\n"
        "mean_update,layer_1,joy,0.3,0.3,0.2,0.4\nreset,layer_2,joy,0.6,0.0,-0.1,0.1\n"
    )
    rd = RunData.open(tmp_path)
    assert rd.layer_metric_names() == ["rsa_sentiment"]
    traces = F.layer_metric_figures(rd.layer_metrics, ["rsa_sentiment"])["rsa_sentiment"]["data"]
    band = next(t for t in traces if t.get("fill") == "toself")
    assert band["y"] == [0.2, 0.6, 0.4, 0.0]
    ablation = rd.layer_ablation()
    assert (ablation.rows, ablation.cols, ablation.z) == (["joy"], ["layer_1", "layer_2"], [[0.2, 0.0]])
    update = rd.layer_ablation("mean_update")
    assert (update.rows, update.cols, update.z) == (["joy"], ["layer_1"], [[0.3]])
    page = Page()
    _layers(rd, page)
    heatmaps = {k: v["data"][0]["z"] for k, v in page.figures.items() if k.startswith("fig-layer-ablation")}
    assert heatmaps == {"fig-layer-ablation-reset": [[0.2, 0.0]], "fig-layer-ablation-mean-update": [[0.3]]}


def test_the_summary_states_what_the_intervals_support():
    from emoscope.report.run_page import _summary_html

    diff = {"difference": 0.2, "ci95": [0.1, 0.3], "excludes_zero": True, "point": "layer_1"}
    html = _summary_html(
        {
            "posneg_threshold": 0.1,
            "separation": [
                {
                    "stage": "last",
                    "epoch": 2,
                    "first_point": "layer_2",
                    "first_value": 0.3,
                    "first_ci95": [0.2, 0.4],
                    "vs_previous": diff,
                    "best_point": "layer_2",
                    "best_value": 0.3,
                    "best_ci95": [0.2, 0.4],
                    "vs_runner_up": {**diff, "excludes_zero": False},
                }
            ],
            "points": [{"point": "layer_2", "posneg_first": 0.0, "posneg_change": {**diff, "excludes_zero": False}}],
        }
    )
    assert "ahead of layer_1 by 0.200 [0.100, 0.300]; the interval excludes zero" in html
    assert "the interval includes zero: not distinguishable" in html and "(includes 0)" in html
