"""HTML reports: one self-contained page per run folder, and a page comparing runs.

The report only reads a run folder (see DEVELOPERS.md); it never imports training or analysis code.
`emoscope.report.browser` opens a page in headless Chromium (tests, screenshots).
"""

from emoscope.report.compare import COMPARISON_SECTION_IDS, write_comparison
from emoscope.report.run_page import SECTION_IDS, write_report

__all__ = ["COMPARISON_SECTION_IDS", "SECTION_IDS", "write_comparison", "write_report"]
