"""The chat page in headless Chromium (Debian's package, driven by Playwright): a conversation streams in,
the stop button stops it, a refused turn shows why, and nothing is loaded from another host. With
LLAMA_ORT_SCREENSHOT=1 it retakes docs/images/chat-page.png."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest
from llama_ort_testing.servers import MAX_SEQ_LEN

playwright = pytest.importorskip("playwright.sync_api", reason="needs Playwright: pip install playwright")

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"needs Chromium at {CHROMIUM}: apt-get install -y chromium", allow_module_level=True)

# The README's screenshot: retaken only when asked (LLAMA_ORT_SCREENSHOT=1), so tests leave the checkout clean.
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "chat-page.png"
# Offline and quiet: no sandbox (CI runs as root), no GPU, no calls home.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
# Records the text of the answer each time it changes, so the test can tell a stream from one late update.
WATCH_ANSWER = """() => {
  window.answerVersions = [];
  new MutationObserver(() => {
    const answers = document.querySelectorAll('.message.assistant');
    if (answers.length) window.answerVersions.push(answers[answers.length - 1].textContent);
  }).observe(document.getElementById('messages'), {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 900, "height": 640})
    page.hosts = set()
    page.on("request", lambda request: page.hosts.add(request.url.split("/")[2]))
    page.goto(server.url + "/")
    # expect() polls from Python: the page's policy forbids the eval that wait_for_function would need.
    playwright.expect(page.locator("#model")).to_have_text(server.model)
    yield page
    page.close()


def send(page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def test_a_conversation_streams_in_and_goes_on(page, server):
    page.fill("#temperature", "0")
    page.evaluate(WATCH_ANSWER)
    send(page, "What is the capital of France?")
    page.wait_for_selector('.message.assistant[data-state="done"]', timeout=60_000)
    first = page.inner_text(".message.assistant")
    assert "Paris" in first
    partial = [v for v in page.evaluate("window.answerVersions") if v and v != first]
    assert partial, "the answer appeared at once, not token by token"
    assert all(first.startswith(v) for v in partial)

    send(page, "And what is the capital of Germany?")
    page.wait_for_selector('.message.assistant[data-state="done"] >> nth=1', timeout=60_000)
    assert "Berlin" in page.locator(".message.assistant").nth(1).inner_text()
    assert page.locator(".message.user").all_inner_texts() == ["What is the capital of France?",
                                                                "And what is the capital of Germany?"]
    assert "tokens/s" in page.inner_text("#speed")
    if os.environ.get("LLAMA_ORT_SCREENSHOT") == "1":
        page.screenshot(path=str(SCREENSHOT))
    assert page.hosts == {server.url.removeprefix("http://")}, "the page loaded something from another host"


def test_stop_ends_the_answer_and_its_generation(page, server):
    page.fill("#temperature", "0")
    page.fill("#max-tokens", "400")
    send(page, "Write a long story about a dragon.")  # greedy, it runs to the 400 tokens
    playwright.expect(page.locator(".message.assistant")).to_have_text(re.compile(r"\w+ \w+"), timeout=60_000)
    page.click("#stop")
    page.wait_for_selector('.message.assistant[data-state="stopped"]', timeout=10_000)
    assert server.wait_until_idle(timeout_s=10) < 10
    assert page.is_enabled("#send") and not page.is_enabled("#stop")


def test_a_refused_request_shows_the_servers_message_and_the_chat_goes_on(page):
    send(page, "hello " * MAX_SEQ_LEN)
    playwright.expect(page.locator(".message.error")).to_contain_text("the prompt is")
    page.fill("#max-tokens", "4")
    send(page, "Hello")
    page.wait_for_selector('.message.assistant[data-state="done"]', timeout=60_000)


def test_the_page_is_served_with_a_same_origin_policy(server):
    response = httpx.get(server.url + "/")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assert "default-src 'self'" in response.headers["content-security-policy"]
    for asset in ("/static/chat.js", "/static/chat.css"):
        assert httpx.get(server.url + asset).status_code == 200


def test_chromium_is_the_debian_package():
    assert shutil.which("chromium") == str(CHROMIUM)
