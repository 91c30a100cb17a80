"""The page builder of both reports (a run, a comparison): sections, figures and one self-contained document.

A section's renderer returns its HTML and hands its figures to `Page`; `Page.html` wraps the sections in the
document: CSP, CSS, plotly.js once, the figures as one JSON block, and report.js that draws them.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Sequence

from emoscope.report._html import esc, figure_div, json_for_script, select

# A page is refused any network access by the browser itself: everything is inline or a data: URI.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'"
)

CSS = """
:root { --fg:#1d2430; --muted:#5f6b7a; --line:#d9dee5; --bg:#ffffff; --panel:#f6f8fa; --accent:#2f6fde; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color:var(--fg); background:var(--bg); }
header.top { padding:18px 28px 10px; border-bottom:1px solid var(--line); background:var(--panel); }
header.top h1 { margin:0 0 4px; font-size:22px; }
header.top .sub { color:var(--muted); }
nav.toc { position:sticky; top:0; z-index:10; background:#fff; border-bottom:1px solid var(--line);
          padding:6px 28px; font-size:13px; }
nav.toc a { margin-right:14px; color:var(--accent); text-decoration:none; white-space:nowrap; }
main { padding:8px 28px 40px; max-width:1500px; }
section { border-bottom:1px solid var(--line); padding:10px 0 22px; }
section h2 { font-size:19px; margin:14px 0 8px; }
h3 { font-size:15px; margin:16px 0 6px; }
.cards { display:flex; flex-wrap:wrap; gap:10px; margin:10px 0; }
.card { background:var(--panel); border:1px solid var(--line); border-radius:6px;
        padding:8px 14px; min-width:130px; }
.card .v { font-size:20px; font-weight:600; }
.card .k { color:var(--muted); font-size:12px; }
.grid2 { display:grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap:12px; }
.grid3 { display:grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap:12px; }
.plot { width:100%; min-height:200px; }
table.data { border-collapse:collapse; font-size:13px; margin:6px 0; }
table.data th, table.data td { border:1px solid var(--line); padding:3px 8px; text-align:left;
                               vertical-align:top; }
table.data th { background:var(--panel); position:sticky; top:0; }
table.data td.num { text-align:right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor:pointer; user-select:none; }
table.sortable th[aria-sort="ascending"]::after { content:" \\25B2"; font-size:10px; }
table.sortable th[aria-sort="descending"]::after { content:" \\25BC"; font-size:10px; }
table.kv td:first-child { color:var(--muted); white-space:nowrap; }
td.text { max-width:620px; white-space:pre-wrap; word-break:break-word; }
td.best { font-weight:700; }
.scroll { max-height:560px; overflow:auto; border:1px solid var(--line); display:inline-block;
          max-width:100%; }
.scroll table.data { margin:0; }
.cols { display:flex; flex-wrap:wrap; gap:24px; align-items:flex-start; }
p.na { background:#fff6e5; border:1px solid #f0c36d; border-radius:4px; padding:8px 12px;
       display:inline-block; }
label.ctl { margin-right:16px; }
.controls { margin:6px 0; }
img.fig { max-width:100%; height:auto; border:1px solid var(--line); margin:6px 0; }
details { margin:8px 0; }
details summary { cursor:pointer; color:var(--accent); }
.md { max-width:900px; }
.muted { color:var(--muted); }
code { background:var(--panel); padding:0 3px; border-radius:3px; }
pre { background:var(--panel); padding:8px; overflow:auto; }
"""


class Page:
    """The data a page embeds, collected while its sections are rendered."""

    def __init__(self) -> None:
        self.figures: dict[str, dict] = {}
        self.figure_sets: dict[str, dict[str, dict]] = {}
        self.tsne: dict | None = None

    def figure(self, div_id: str, fig: dict, *, height: int = 420) -> str:
        self.figures[div_id] = fig
        return figure_div(div_id, height=height)

    def figure_set(
        self,
        div_id: str,
        figs: dict[str, dict],
        *,
        label: str,
        selected: str | None = None,
        height: int = 460,
    ) -> str:
        """A figure with a <select> that swaps between prepared figures."""
        self.figure_sets[div_id] = figs
        selected = selected if selected in figs else next(iter(figs))
        ctl = select(
            f"{div_id}-select",
            [(k, k) for k in figs],
            label=label,
            selected=selected,
            extra_attrs=f' data-switch="{esc(div_id)}"',
        )
        return f'<div class="controls">{ctl}</div>' + figure_div(div_id, height=height)

    def data(self) -> dict:
        return {"figures": self.figures, "figureSets": self.figure_sets, "tsne": self.tsne}

    def html(self, *, title: str, subtitle_html: str, nav: Sequence[tuple[str, str]], body_html: str) -> str:
        """The whole document around the rendered sections."""
        links = "".join(f'<a href="#{esc(sid)}">{esc(name)}</a>' for sid, name in nav)
        return "".join(
            [
                '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
                f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">\n',
                '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
                '<meta name="generator" content="emoscope">\n',
                f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
                f'<header class="top"><h1>{esc(title)}</h1><div class="sub">{subtitle_html}</div></header>\n',
                f'<nav class="toc">{links}</nav>\n<main>\n{body_html}\n</main>\n',
                f'<script type="application/json" id="emoscope-data">{json_for_script(self.data())}</script>\n',
                _inline_script(_plotly_js()),
                "\n",
                _inline_script(_report_js()),
                "\n</body>\n</html>\n",
            ]
        )


def section(section_id: str, title: str, body_html: str) -> str:
    return f'<section id="{esc(section_id)}">\n<h2>{esc(title)}</h2>\n{body_html}\n</section>\n'


def _inline_script(code: str) -> str:
    """Inline JavaScript; '</script' inside it (strings, regexes) is written '<\\/script', same meaning."""
    return "<script>" + re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE) + "</script>"


def _plotly_js() -> str:
    """The plotly.js bundle shipped inside the plotly Python package (no network)."""
    bundled = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    if bundled.is_file():
        return bundled.read_text(encoding="utf-8")
    from plotly.offline import get_plotlyjs  # pragma: no cover - layout of older plotly releases

    return get_plotlyjs()  # pragma: no cover


def _report_js() -> str:
    return (importlib.resources.files("emoscope.report") / "report.js").read_text(encoding="utf-8")
