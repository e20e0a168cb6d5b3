"""The web demo, driven in a real headless Chromium (Debian's `chromium` + playwright's Python API, no browser
download): each scenario answers, bad input gets a friendly line, and a screenshot of each tab is saved."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from siliconlab.demo.session import DemoSession

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]  # fmt: skip
TIMEOUT_MS = 60_000  # one request on a busy 2-core machine; typically well under a second


def _chromium() -> str:
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if path:
        return path
    reason = f"no Chromium at {CHROMIUM}: install the system package `chromium` (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def page_url(demo_session: DemoSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from siliconlab.demo.web import build_app, launch

    results = tmp_path_factory.mktemp("results")  # empty: the benchmark tab says how to make a result
    app = build_app(demo_session, ["sentiment", "spam", "chat", "search"], {}, results)
    port = _free_port()
    launch(app, "127.0.0.1", port, share=False, results=results, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@pytest.fixture(scope="module")
def page(page_url: str) -> Iterator[object]:
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the demo extra) is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(page_url)
        yield page
        browser.close()


def _submit(page, key: str, title: str, text: str) -> str:
    """Type into a scenario's tab, submit, and return the answer once every unit has answered."""
    page.get_by_role("tab", name=title).click()
    box = page.locator(f"#{key}-input textarea")
    box.fill(text)
    before = page.locator(f"#{key}-status").inner_text()
    page.locator(f"#{key}-submit").click()
    done = (
        "([id, old]) => { const t = document.querySelector(id).innerText; return t.startsWith('done') && t !== old; }"
    )
    page.wait_for_function(done, arg=[f"#{key}-status", before])
    return page.locator(f"#{key}-answer").inner_text()


def test_each_scenario_answers_in_the_browser(page, positive_review: str, spam_message: str, tmp_path: Path):
    answer = _submit(page, "sentiment", "Sentiment", positive_review)
    assert answer.startswith("positive"), answer
    page.screenshot(path=str(tmp_path / "sentiment.png"), full_page=True)
    table = page.locator("#sentiment-table").inner_text()
    assert "onnxruntime-cpu-fp32" in table and "torch-cpu-fp32" in table and "yes" in table

    answer = _submit(page, "spam", "E-mail / spam", spam_message)
    assert answer.startswith("spam"), answer
    page.screenshot(path=str(tmp_path / "spam.png"), full_page=True)

    answer = _submit(page, "chat", "Chat", "Hello, how are you?")
    assert answer.startswith("Reply") and "matched" in answer, answer
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)

    answer = _submit(page, "search", "Semantic search", "a wonderful film with great acting")
    assert answer.startswith("Nearest example sentences")
    assert page.locator("#search-answer li").count() == 3
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
    assert all((tmp_path / f"{k}.png").stat().st_size > 10_000 for k in ("sentiment", "spam", "chat", "search"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the text is empty"),
        ("  \n\t ", "the text is empty"),
        ("z" * 100_000, "characters long"),
        ("\x00\x07\x1b[31m\ufffd\ufffe junk", "sentiment"),  # control bytes and replacement chars: still answered
        ("😀🎉🍿", "sentiment"),
    ],
    ids=["empty", "whitespace", "100kB", "binary-junk", "emoji"],
)
def test_bad_input_gets_a_friendly_line(page, text: str, expected: str):
    answer = _submit(page, "sentiment", "Sentiment", text)
    assert "Traceback" not in page.content() and "Something went wrong" not in answer
    if expected == "sentiment":
        assert answer.split()[0] in ("positive", "negative"), answer
    else:
        assert answer.startswith("⚠️") and expected in answer, answer


def test_machine_and_benchmark_tabs(page):
    page.get_by_role("tab", name="Machine").click()
    units = page.locator("#machine-units").inner_text()
    assert "torch-cpu-fp32" in units and "onnxruntime-cpu-fp32" in units
    page.get_by_role("tab", name="Benchmark").click()
    assert "No bench result of this machine" in page.locator("#bench-info").inner_text()
    assert page.locator("#bench-run").is_visible()
