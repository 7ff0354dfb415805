"""What every visualizer shares: its page, HTML tables, TSV downloads and figures.

A visualizer's page is assets/<name>/index.html; it extends assets/base/page.html (title, heading, introduction,
sections, downloads; each section through the macro of assets/base/sections.html), which extends q2templates'
base.html. q2templates.render looks templates up in its own folder only, so it cannot find base/page.html:
render_page does what it does (render, write index.html, copy q2templates' style assets beside it) with one jinja2
environment over both folders.

QIIME 2 imports the visualizers with the plugin, so pyplot (its backend machinery) is imported with the first
figure, by `subplots`, and no visualizer imports it."""
import functools
import importlib.resources
import os

import jinja2
import pandas as pd
from q2templates.util import copy_assets

TABLE_CLASSES = "table table-striped table-hover"
ASSETS = importlib.resources.files(__package__) / "assets"
Q2TEMPLATES = importlib.resources.files("q2templates") / "templates"


def render_page(output_dir: str, page: str, context: dict) -> None:
    """Writes output_dir/index.html from assets/<page>/index.html and `context`, and q2templates' assets."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader([str(ASSETS), str(Q2TEMPLATES)]))
    html = environment.get_template(f"{page}/index.html").render(**context)
    with open(os.path.join(output_dir, "index.html"), "w") as handle:
        handle.write(html)
    copy_assets(str(Q2TEMPLATES / "assets"), os.path.join(output_dir, "q2templateassets"))


def html_table(frame: pd.DataFrame, float_format: str = None, **options) -> str:
    """The frame as a styled HTML table; `float_format` is a format string such as "{:.3f}"."""
    if float_format is not None:
        options["float_format"] = float_format.format
    return frame.to_html(classes=TABLE_CLASSES, **options)


def overview_table(rows: dict) -> str:
    """A two-column table of {what: value}, without a header: the overview at the top of a page."""
    return html_table(pd.Series(rows, dtype=object).to_frame(), header=False)


def write_tsv(output_dir: str, name: str, frame: pd.DataFrame, **options) -> str:
    """Writes output_dir/NAME.tsv and returns its file name; `options` go to DataFrame.to_csv (index_label,
    index)."""
    frame.to_csv(f"{output_dir}/{name}.tsv", sep="\t", **options)
    return f"{name}.tsv"


def write_tsvs(output_dir: str, **frames: pd.DataFrame) -> list:
    """Each frame as NAME.tsv, its index written unless it only numbers the rows (a RangeIndex: tidy tables);
    returns the file names, to offer as downloads."""
    return [write_tsv(output_dir, name, frame, index=not isinstance(frame.index, pd.RangeIndex))
            for name, frame in frames.items()]


@functools.lru_cache(maxsize=1)
def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot
    return matplotlib.pyplot


def subplots(*args, **kwargs):
    """matplotlib.pyplot.subplots (on the Agg backend): (figure, axes)."""
    return _pyplot().subplots(*args, **kwargs)


def save_figure(figure, output_dir: str, stem: str) -> str:
    """Saves the figure as STEM.png (shown on the page) and STEM.pdf (to download), closes it, returns the PNG."""
    figure.tight_layout()
    for extension in ("png", "pdf"):
        figure.savefig(f"{output_dir}/{stem}.{extension}", dpi=110)
    _pyplot().close(figure)
    return f"{stem}.png"
