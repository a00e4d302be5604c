"""Browser tests: Playwright for Python driving Debian's Chromium, headless.

Playwright's own browser download cannot work offline, so these tests only use the system
Chromium (`apt-get install chromium`, done by .ci/run); without one they are skipped with a
reason that `make test` also prints. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import REPO

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from playwright.async_api import Browser, Page

ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Generous per-action deadline: a busy 2-core machine may be slow, never stuck.
UI_TIMEOUT_MS = 30_000


def chromium_path() -> str | None:
    """MMCLAUDE_CHROMIUM, else Debian's /usr/bin/chromium, else chromium on PATH."""
    for candidate in (os.environ.get("MMCLAUDE_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


@pytest.fixture
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip(
            "BROWSER TESTS SKIPPED: no Chromium (apt-get install chromium, or set "
            "MMCLAUDE_CHROMIUM)"
        )
    return path


@contextlib.asynccontextmanager
async def open_browser(executable: str) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=UI_TIMEOUT_MS)  # its default, 5 s, is short on a busy machine

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def open_page(browser: Browser, url: str) -> AsyncIterator[Page]:
    """The demo page at `url`, connected live; page errors fail the test."""
    page = await browser.new_page(viewport={"width": 1100, "height": 760})
    page.set_default_timeout(UI_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url + "/")
    await page.wait_for_selector("#status[data-state=live]")
    try:
        yield page
    finally:
        await page.close()
    assert not errors, errors


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path
