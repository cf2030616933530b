"""report.html (dropcli/html_report.py): one self-contained page, opened in a real browser (headless chromium)."""

from __future__ import annotations

import io
import re
import time
from html.parser import HTMLParser

import browser
import pytest
import yaml
from PIL import Image, ImageStat
from typer.testing import CliRunner

from dropcli.cli import app


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, data_root):
    """A one-at-a-time sweep (baseline, one dropout rate, one L2 coefficient, early stopping; 2 seeds) and its
    report, made once for the module."""
    folder = tmp_path_factory.mktemp("html")
    raw = {"name": "tiny", "epochs": 3, "device": "cpu", "threads": 1,
           "dataset": {"root": str(data_root), "train_size": 256, "val_fraction": 0.1},
           "model": {"hidden_sizes": [32]}, "optimizer": {"batch_size": 32, "lr": 0.003}}
    (folder / "config.yaml").write_text(yaml.safe_dump(raw))
    runner = CliRunner()
    result = runner.invoke(app, ["sweep", str(folder / "config.yaml"), "--p", "0.5", "--l2", "1e-3",
                                 "--early-stopping", "1", "--one-at-a-time", "--seeds", "2", "--quiet",
                                 "--out", str(folder / "sweep")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["report", str(folder / "sweep")])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output
    return folder / "sweep" / "report"


class Links(HTMLParser):
    """The src and href of the page's elements (script bodies are not parsed as elements)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [value or "" for name, value in attrs if name in ("src", "href")]


def test_the_page_is_self_contained(report_dir):
    text = (report_dir / "report.html").read_text()
    assert text.count("plotly.js v") == 1  # the library, embedded once
    links = Links()
    links.feed(text)
    assert not [link for link in links.links if re.match(r"(https?:)?//", link)]
    assert "Head to head" in text and "patience" in text


@pytest.fixture(scope="module")
def page(report_dir):
    reason = browser.missing()
    if reason:
        pytest.skip(reason)
    driver = browser.start()
    try:
        driver.get((report_dir / "report.html").as_uri())
        for _ in range(100):  # plotly draws after the page loads
            if driver.execute_script("return document.querySelectorAll('.js-plotly-plot .main-svg').length > 0"):
                break
            time.sleep(0.1)
        yield driver
    finally:
        browser.stop(driver)


def test_the_page_loads_in_chromium_without_console_errors(page):
    assert page.execute_script("return document.readyState") == "complete"
    errors = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    sources = page.execute_script("return Array.from(document.querySelectorAll('[src]')).map(e => e.src)")
    assert not [s for s in sources if s.startswith("http")]
    fetched = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert not [url for url in fetched if not url.startswith(("data:", "blob:"))]  # nothing fetched


def test_every_figure_has_its_traces(page):
    counts = page.execute_script("return Object.fromEntries(Array.from(document.querySelectorAll('.js-plotly-plot'))"
                                 ".map(e => [e.id, e.data.length]))")
    assert set(counts) >= {"curves", "verdicts", "strength", "runs", "parallel"}
    settings, seeds = 4, 2  # baseline, p=0.5, l2=0.001, patience 1
    # 4 panels: per setting a mean line and (2 seeds) a band, and one dotted line per run
    assert counts["curves"] == 4 * (settings * 2 + settings * seeds)
    assert counts["runs"] == settings
    # the groups' and the seeds' curves are drawn; the seeds' are hidden until asked for
    assert page.execute_script("return document.querySelectorAll('#curves .scatterlayer .trace').length") > 0


def test_the_seeds_button_shows_each_run_and_a_legend_click_hides_a_setting(page):
    visible = "return document.getElementById('curves').data.filter(t => t.visible === true).length"
    hidden_seeds = "return document.getElementById('curves').data.filter(t => t.visible === false).length"
    assert page.execute_script(hidden_seeds) == 4 * 4 * 2
    before = page.execute_script(visible)
    buttons = page.find_elements("css selector", "#curves .updatemenu-button")
    assert [b.text for b in buttons] == ["means and bands", "show seeds"]
    buttons[1].click()
    time.sleep(0.3)
    assert page.execute_script(hidden_seeds) == 0 and page.execute_script(visible) > before
    page.find_elements("css selector", "#curves .legend .traces .legendtoggle")[0].click()  # the first setting
    time.sleep(1)  # plotly waits to tell a click from a double click
    assert page.execute_script("return document.getElementById('curves').data"
                               ".filter(t => t.visible === 'legendonly').length") > 0


def test_a_screenshot_is_not_blank(page, tmp_path):
    image = Image.open(io.BytesIO(page.get_screenshot_as_png())).convert("L")
    assert image.size[0] > 800
    assert ImageStat.Stat(image).stddev[0] > 10  # text, tables and lines, not one colour
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20
