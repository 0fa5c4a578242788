"""Helpers of the browser tests: waiting for a condition with a timeout (never a fixed sleep), screenshots."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar('T')
REPO = Path(__file__).resolve().parents[2]
# Screenshots for the README are written to docs/img/ only on request (a test run leaves the tree clean).
UPDATE_SCREENSHOTS = os.environ.get('SMARTCELL_UPDATE_SCREENSHOTS') == '1'


def wait_until(condition: Callable[[], T], timeout_s: float, what: str,
               explain: Callable[[], str] = lambda: '', poll_s: float = 0.05) -> T:
    """The first truthy value of condition(); AssertionError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - a page still loading raises; keep waiting, report at the end
            last_error = exc
        detail = explain()
        if detail:
            raise AssertionError(f'while waiting for {what}: {detail}')
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout_s} s waiting for {what}'
                                 + (f' (last error: {last_error!r})' if last_error else ''))
        time.sleep(poll_s)


def save_screenshot(driver, tmp_path: Path, name: str) -> Path:
    """Full-page screenshot in tmp_path; also docs/img/<name> with SMARTCELL_UPDATE_SCREENSHOTS=1."""
    height = driver.execute_script('return document.documentElement.scrollHeight')
    driver.set_window_size(1280, max(600, min(int(height) + 40, 4000)))
    path = tmp_path / name
    assert driver.save_screenshot(str(path)), f'screenshot {path} not written'
    assert path.stat().st_size > 10_000, 'screenshot suspiciously small (blank page?)'
    if UPDATE_SCREENSHOTS:
        target = REPO / 'docs' / 'img' / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    driver.set_window_size(1280, 1000)
    return path
