"""The web catalog at ``/`` in a real browser: Debian's headless Chromium driven by Playwright
(``executable_path=/usr/bin/chromium``, no browser download), against a live ``casreg serve``.
It lists the models, opens a model (its paged versions and the chart of logical vs stored
bytes) and a version; screenshots are kept under pytest's tmp dir (their paths are printed)."""

from __future__ import annotations

import os
import shutil

import pytest

from casreg.registry import Registry
from casreg.repo import Repository
from tests.helpers import random_bytes, write_file
from tests.test_serve import Server

pytestmark = pytest.mark.slow  # a server and a browser

MODEL = "guest#9999#guest-9999#host-10000#model"
VERSIONS = 60  # more than a page (50)


def chromium() -> str:
    """The system's Chromium; a clear failure (not a skip) when it is missing."""
    for name in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or ""):
        if name and os.access(name, os.X_OK):
            return name
    pytest.fail("the catalog test needs Debian's chromium: apt-get install -y chromium chromium-driver "
                "(.ci/run does it); Playwright's own browser download is not used")


@pytest.fixture
def served(tmp_path):
    path = str(tmp_path / "store")
    Repository.init(path).close()
    with Registry(path) as repo:
        src = tmp_path / "src"
        base = bytearray(random_bytes(1 << 20, "w"))
        for i in range(VERSIONS):
            base[i * 1000:i * 1000 + 1000] = random_bytes(1000, f"step {i}")
            write_file(src / "model.bin", bytes(base))
            repo.commit(str(src), f"models/{MODEL}/v{i:03d}", message=f"step {i}", meta={"acc": round(0.5 + i / 200, 3)})
        repo.commit(str(src), "models/mlp/v1")
        repo.set_alias(MODEL, "production", "v005")
    server = Server(path)
    yield server
    assert "Traceback" not in server.stop()


def test_catalog_lists_models_opens_a_version_and_draws_the_chart(served, tmp_path):
    from playwright.sync_api import sync_playwright
    shots = tmp_path / "screenshots"
    shots.mkdir()
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{served.url}/")
            page.wait_for_selector("#models .model-row")
            names = page.locator("#models .model-row td:first-child").all_inner_texts()
            assert names == [MODEL, "mlp"]
            page.screenshot(path=str(shots / "models.png"), full_page=True)

            page.get_by_role("link", name=MODEL).click()
            page.wait_for_selector("#versions .version-row")
            rows = page.locator("#versions .version-row")
            assert rows.count() == 50  # the first page, newest first
            assert rows.first.locator("td").first.inner_text() == f"v{VERSIONS - 1:03d}"
            assert "1–50 of 60" in page.inner_text(".pager")
            chart = page.locator("svg#chart")
            assert chart.locator("path.logical").count() == 1 and chart.locator("path.stored").count() == 1
            assert len(chart.locator("path.logical").get_attribute("d").split("L")) == 50
            page.screenshot(path=str(shots / "model.png"), full_page=True)

            page.get_by_role("button", name="older →").first.click()
            page.wait_for_selector("text=51–60 of 60")
            assert page.locator("#versions .version-row").count() == 10

            page.get_by_role("link", name="v005").click()
            page.wait_for_selector("#sizes")
            assert "production" in page.inner_text("main")
            assert page.locator("#sizes [data-bytes]").first.get_attribute("data-bytes") == str(1 << 20)
            assert "acc" in page.inner_text("table.meta") and "model.bin" in page.inner_text("#files")
            assert "commit: step 5" in page.inner_text("#history")
            page.screenshot(path=str(shots / "version.png"), full_page=True)
        finally:
            browser.close()
    print(f"catalog screenshots: {shots}")
    assert not errors, errors
