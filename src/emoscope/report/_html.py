"""HTML building blocks for the report pages: escaping, embedded data, tables, notes, images.

Rule of the whole package: text that comes from a run folder never reaches the page unescaped. Visible
text goes through `esc`, embedded data goes through `json_for_script` (a JSON block that cannot close
its <script> element), and strings that Plotly renders (it understands a little HTML) go through `ptext`.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# Images above this size are not embedded (the page would become unwieldy); a note says so.
MAX_IMAGE_BYTES = 12 * 1024 * 1024


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
            out.append(f'<th data-col="{i}" tabindex="0" aria-sort="none" title="click to sort">{esc(h)}</th>')
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
    return f'<div class="plot" id="{esc(div_id)}" data-figure="{esc(div_id)}" style="height:{height}px"></div>'


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
        f'<option value="{esc(v)}"' + (" selected" if v == selected else "") + f">{esc(t)}</option>" for v, t in options
    )
    return f'<label class="ctl">{esc(label)} <select id="{esc(select_id)}"{extra_attrs}>{opts}</select></label>'


def image(path: Path, alt: str) -> str:
    """A PNG inlined as a base64 data URI (or a note when it is too large to embed)."""
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        return note(f"{esc(path.name)} is {size / 1e6:.1f} MB, too large to embed; open it from the run folder.")
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
