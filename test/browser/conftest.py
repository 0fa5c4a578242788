"""Browser tests: Debian's chromium driven through its chromedriver with selenium (both from apt in CI).

Where Chromium or its driver is missing the tests skip and say which and how to install it; under
CI (CI=true) a missing browser is a failure instead, so the tier is never skipped silently there.
"""
from __future__ import annotations

import os
import shutil

import pytest

INSTALL = 'apt-get update && apt-get install -y chromium chromium-driver'


def _missing() -> str:
    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    driver = shutil.which('chromedriver')
    missing = [name for name, path in (('chromium', browser), ('chromedriver (package chromium-driver)', driver))
               if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append('the selenium Python package (requirements.txt)')
    return ', '.join(missing)


@pytest.fixture(scope='session')
def browser():
    missing = _missing()
    if missing:
        message = f'browser tests need {missing}: install with `{INSTALL}`'
        if os.environ.get('CI') == 'true':
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which('chromium') or shutil.which('chromium-browser')
    for argument in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                     '--window-size=1280,1000', '--hide-scrollbars', '--no-first-run',
                     '--disable-background-networking'):
        options.add_argument(argument)
    # The driver from apt, named explicitly: selenium must not try to download one.
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which('chromedriver')), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
