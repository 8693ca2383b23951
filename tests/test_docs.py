"""The documentation site: built in strict mode from the repository (``scripts/docs.py``), then read
in a real browser (headless Chromium), where a reader must see the home page's figure, the API
page of ``sculpting.compose`` with its signature, and a notebook rendered with its outputs.

These tests run last (``conftest.py``): the notebooks are rendered from the copies the notebook
tests executed at their smoke settings.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "build" / "site"

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")


@pytest.fixture(scope="module")
def site():
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "docs.py")], capture_output=True, text=True, timeout=1800
    )
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    return SITE


def test_the_site_builds_strict_and_documents_every_public_name(site):
    import sculpting as sc

    assert (site / "index.html").is_file()
    for name in sc.__all__:
        page = (site / "api" / f"{name}.html").read_text()
        assert f"sculpting.{name}" in page and "doc-heading" in page and "Examples" in page, name
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert (site / "notebooks" / f"{nb.stem}.html").is_file()


def test_a_broken_link_fails_the_strict_build(tmp_path):
    """Control: strict mode is on: a page linking to a missing page fails the build."""
    cfg = (ROOT / "build" / "mkdocs.yml").read_text()
    src = tmp_path / "src"
    src.mkdir()
    (src / "index.md").write_text("# x\n\n[missing](nope.md)\n")
    import json

    c = json.loads(cfg)
    c.update(docs_dir=str(src), site_dir=str(tmp_path / "site"), nav=[{"Home": "index.md"}], plugins=["search"])
    (tmp_path / "mkdocs.yml").write_text(json.dumps(c))
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(tmp_path / "mkdocs.yml")],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "nope.md" in r.stderr


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        r = subprocess.run(["bash", str(ROOT / "scripts" / "install_browser.sh")], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"Chromium could not be installed: {r.stderr.strip()[-300:]}")
    webdriver = pytest.importorskip("selenium.webdriver")
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(a)
    opts.binary_location = shutil.which("chromium")
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=opts, service=service)
    yield driver
    driver.quit()


def _visible_images(driver) -> int:
    return driver.execute_script(
        "return [...document.images].filter(i => i.complete && i.naturalWidth > 50 && i.offsetWidth > 0).length"
    )


def test_a_reader_sees_the_home_page_the_api_and_a_rendered_notebook(site, browser):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    assert "sculpting" in browser.title
    assert "Quick start" in browser.find_element(By.TAG_NAME, "body").text
    assert _visible_images(browser) >= 1  # the front page's figure

    browser.get((site / "api" / "compose.html").as_uri())
    text = browser.find_element(By.TAG_NAME, "body").text
    assert re.search(r"compose\(\s*bases", text), text[:2000]  # the signature, as rendered
    assert "classifier" in text and "alpha" in text

    browser.get((site / "notebooks" / "03_grid_sculpting.html").as_uri())
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "sc.compose" in body or "compose(" in body  # the notebook's code
    assert _visible_images(browser) >= 1  # a figure the notebook drew, with its outputs
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    browser.save_screenshot(str(ROOT / "test-artifacts" / "docs_notebook_03.png"))
