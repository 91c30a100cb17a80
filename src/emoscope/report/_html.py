"""HTML building blocks for the report pages: escaping, embedded data, tables, notes, images, markdown.

Rule of the whole package: text that comes from a run folder never reaches the page unescaped. Visible
text goes through `esc`, embedded data goes through `json_for_script` (a JSON block that cannot close
its <script> element), and strings that Plotly renders (it understands a little HTML) go through `ptext`.
"""

from __future__ import annotations

import base64
import html
import importlib.resources
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# A page is refused any network access by the browser itself: everything is inline or a data: URI.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'"
)

# Images above this size are not embedded (the page would become unwieldy); a note says so.
MAX_IMAGE_BYTES = 12 * 1024 * 1024

EMOTION_COLOURS = [
    "#3283FE",
    "#F6222E",
    "#1C8356",
    "#FEAF16",
    "#AA0DFE",
    "#85660D",
    "#2ED9FF",
    "#FC1CBF",
    "#325A9B",
    "#90AD1C",
    "#C4451C",
    "#782AB6",
    "#1CBE4F",
    "#B00068",
    "#DEA0FD",
    "#16FF32",
    "#FA0087",
    "#B10DA1",
    "#F8A19F",
    "#1CFFCE",
    "#C075A6",
    "#FBE426",
    "#0B7285",
    "#E67700",
    "#5C940D",
    "#862E9C",
    "#A61E4D",
]
NEUTRAL_COLOUR = "#9E9E9E"
SENTIMENT_COLOURS = {
    "positive": "#2B9348",
    "negative": "#D62828",
    "ambiguous": "#F77F00",
    "neutral": NEUTRAL_COLOUR,
    "mixed": "#7B2CBF",
    "other": "#444444",
}


def esc(value: Any) -> str:
    """Escape any value for HTML text or a double-quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def ptext(value: Any) -> str:
    """A string for Plotly text (titles, ticks, hover): Plotly reads a few HTML tags and entities."""
    return html.escape("" if value is None else str(value), quote=False)


def clean_json(value: Any) -> Any:
    """NaN and infinities become null (JSON has neither); tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


def json_for_script(value: Any) -> str:
    """JSON safe inside <script type="application/json">: no '<', '>' or '&' can end the element."""
    text = json.dumps(clean_json(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def inline_script(code: str) -> str:
    """Inline JavaScript; '</script' inside it (strings, regexes) is written '<\\/script', same meaning."""
    return "<script>" + re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE) + "</script>"


def plotly_js() -> str:
    """The plotly.js bundle shipped inside the plotly Python package (no network)."""
    bundled = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    if bundled.is_file():
        return bundled.read_text(encoding="utf-8")
    from plotly.offline import get_plotlyjs  # pragma: no cover - layout of older plotly releases

    return get_plotlyjs()  # pragma: no cover


def report_js() -> str:
    return (importlib.resources.files("emoscope.report") / "report.js").read_text(encoding="utf-8")


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers for tables: ints as ints, floats rounded, missing as an en dash."""
    if value is None or value == "":
        return "\u2013"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "\u2013"
        if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    return str(value)


def sort_key(value: Any) -> str:
    """The data-v attribute of a non-text table cell: numbers sort as numbers, blanks last."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (int, float)):
        return repr(float(value)) if math.isfinite(value) else ""
    return str(value)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    table_id: str | None = None,
    sortable: bool = False,
    row_attrs: Iterable[dict[str, str]] | None = None,
    digits: int = 4,
    cls: str = "",
    col_classes: Sequence[str] | None = None,
) -> str:
    """A table; every cell escaped. `col_classes` adds a CSS class to the cells of each column."""
    classes = " ".join(c for c in ("data", "sortable" if sortable else "", cls) if c)
    out = [f'<table class="{classes}"' + (f' id="{esc(table_id)}"' if table_id else "") + ">"]
    out.append("<thead><tr>")
    for i, h in enumerate(headers):
        if sortable:
            out.append(
                f'<th data-col="{i}" tabindex="0" aria-sort="none" title="click to sort">{esc(h)}</th>'
            )
        else:
            out.append(f"<th>{esc(h)}</th>")
    out.append("</tr></thead><tbody>")
    attrs_iter = iter(row_attrs) if row_attrs is not None else None
    for row in rows:
        attrs = next(attrs_iter) if attrs_iter is not None else {}
        attr_text = "".join(f' {esc(k)}="{esc(v)}"' for k, v in attrs.items())
        out.append(f"<tr{attr_text}>")
        for i, value in enumerate(row):
            num = isinstance(value, (int, float)) and not isinstance(value, bool)
            cell_cls = " ".join(c for c in ("num" if num else "", col_classes[i] if col_classes else "") if c)
            cls_attr = f' class="{esc(cell_cls)}"' if cell_cls else ""
            # text sorts by what is shown; numbers (and blanks) carry their exact sort value
            key = "" if isinstance(value, str) else f' data-v="{esc(sort_key(value))}"'
            out.append(f"<td{cls_attr}{key}>{esc(fmt(value, digits))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def kv_table(pairs: Iterable[tuple[str, Any]], *, table_id: str | None = None) -> str:
    rows = [(k, fmt(v)) for k, v in pairs]
    return table(["key", "value"], rows, table_id=table_id, cls="kv")


def note(message_html: str) -> str:
    """A 'not available' box; the caller escapes anything from data inside `message_html`."""
    return f'<p class="na">{message_html}</p>'


def figure_div(div_id: str, *, height: int = 420) -> str:
    """A placeholder div that report.js fills from DATA.figures[div_id]."""
    return (
        f'<div class="plot" id="{esc(div_id)}" data-figure="{esc(div_id)}" style="height:{height}px"></div>'
    )


def select(
    select_id: str,
    options: Sequence[tuple[str, str]],
    *,
    label: str,
    selected: str | None = None,
    extra_attrs: str = "",
) -> str:
    """A labelled <select>; options are (value, text) pairs."""
    opts = "".join(
        f'<option value="{esc(v)}"' + (" selected" if v == selected else "") + f">{esc(t)}</option>"
        for v, t in options
    )
    return (
        f'<label class="ctl">{esc(label)} <select id="{esc(select_id)}"{extra_attrs}>{opts}</select></label>'
    )


def image(path: Path, alt: str) -> str:
    """A PNG inlined as a base64 data URI (or a note when it is too large to embed)."""
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        return note(
            f"{esc(path.name)} is {size / 1e6:.1f} MB, too large to embed; open it from the run folder."
        )
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
    return f'<img class="fig" alt="{esc(alt)}" src="data:{mime};base64,{data}">'


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file or nothing: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# --- markdown (summary.md): a small, safe subset --------------------------------------------------------

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")


def _inline_md(text: str) -> str:
    parts = _CODE.split(text)  # odd indices are code spans
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{esc(part)}</code>")
        else:
            s = esc(part)
            s = _BOLD.sub(r"<strong>\1</strong>", s)
            s = _EM.sub(r"<em>\1</em>", s)
            out.append(s)
    return "".join(out)


def markdown(text: str) -> str:
    """Headings, paragraphs, lists, pipe tables, code spans and fences, bold/italic. Never raw HTML."""
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    para: list[str] = []
    list_kind: str | None = None
    i = 0

    def flush_para() -> None:
        if para:
            out.append("<p>" + _inline_md(" ".join(para)) + "</p>")
            para.clear()

    def close_list() -> None:
        nonlocal list_kind
        if list_kind:
            out.append(f"</{list_kind}>")
            list_kind = None

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush_para()
            close_list()
            code = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            out.append("<pre>" + esc("\n".join(code)) + "</pre>")
            i += 1
            continue
        heading = re.match(r"(#{1,6})\s+(.*)", stripped)
        bullet = re.match(r"[-*+]\s+(.*)", stripped)
        numbered = re.match(r"\d+[.)]\s+(.*)", stripped)
        if not stripped:
            flush_para()
            close_list()
        elif heading:
            flush_para()
            close_list()
            level = min(len(heading.group(1)) + 2, 6)  # the page already has h1/h2
            out.append(f"<h{level}>{_inline_md(heading.group(2))}</h{level}>")
        elif bullet or numbered:
            flush_para()
            kind = "ul" if bullet else "ol"
            if list_kind != kind:
                close_list()
                out.append(f"<{kind}>")
                list_kind = kind
            out.append("<li>" + _inline_md((bullet or numbered).group(1)) + "</li>")
        elif stripped.startswith("|"):
            flush_para()
            close_list()
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append(lines[i].strip())
                i += 1
            out.append(_md_table(block))
            continue
        else:
            close_list()
            para.append(stripped)
        i += 1
    flush_para()
    close_list()
    return "\n".join(out)


def _md_table(block: list[str]) -> str:
    def cells(row: str) -> list[str]:
        return [c.strip() for c in row.strip().strip("|").split("|")]

    rows = [cells(r) for r in block]
    rows = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c) for c in r if c)]
    if not rows:
        return ""
    head, body = rows[0], rows[1:]
    out = ['<table class="data md"><thead><tr>']
    out += [f"<th>{_inline_md(c)}</th>" for c in head]
    out.append("</tr></thead><tbody>")
    for r in body:
        out.append("<tr>" + "".join(f"<td>{_inline_md(c)}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# --- the page ---------------------------------------------------------------------------------------------

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


def page(
    *, title: str, subtitle_html: str, nav: Sequence[tuple[str, str]], body_html: str, data: dict
) -> str:
    """The whole document: CSP, CSS, plotly.js once, the data block, the report script."""
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
            f'<script type="application/json" id="emoscope-data">{json_for_script(data)}</script>\n',
            inline_script(plotly_js()),
            "\n",
            inline_script(report_js()),
            "\n</body>\n</html>\n",
        ]
    )


def section(section_id: str, title: str, body_html: str) -> str:
    return f'<section id="{esc(section_id)}">\n<h2>{esc(title)}</h2>\n{body_html}\n</section>\n'
