"""The dashboard (`GET /`) in a real browser: Debian's headless Chromium driven by selenium.

Two daemons replicate real writes; the page's values match `/progress`, its RPO chart has the
samples the daemon recorded, its table rows are the standby's tables, and it loads with every
address but loopback unreachable (a dead proxy), fetching nothing from anywhere else.
A screenshot is kept in test-artifacts/ (and is the README's picture).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from drsync.demo import ROUND_WRITES, create_sample_warehouse
from drsync.site.rpo_history import load_history
from drsync.site.state import StandbyState, load_state
from tests.helpers import drsync
from tests.integration.test_daemon import (
    DaemonProcess,
    _caught_up,
    _key_after_now,
    _site_with_ports,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM and CHROMEDRIVER):
        raise RuntimeError("chromium and chromedriver are missing: `make test` installs them "
                           "(apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1600",
                # the network is off for the page: every non-loopback address goes to a dead proxy
                "--proxy-server=http://127.0.0.1:9"):  # Chromium never proxies loopback
        options.add_argument(arg)
    os.environ["SE_OFFLINE"] = "true"  # selenium must never fetch a driver
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _field(driver: webdriver.Chrome, side: str, name: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f"#{side} [data-field='{name}']").text)


def test_dashboard_shows_what_progress_says(tmp_path: Path, browser: webdriver.Chrome) -> None:
    sites, p_port, s_port = _site_with_ports(tmp_path, "rpo-target=1h")
    create_sample_warehouse(sites.primary, rows=30)
    daemons: list[DaemonProcess] = []
    try:
        for role, port in (("standby", s_port), ("primary", p_port)):
            daemons.append(DaemonProcess(sites.config, role, port, tmp_path))
            daemons[-1].start()
        standby, primary = daemons
        wait_for("first set restored", lambda: _caught_up(sites), timeout=60)
        ROUND_WRITES[0](sites.primary, 1)
        written = _key_after_now()
        wait_for("the write replicated", lambda: _caught_up(sites, after=written), timeout=60)
        # hold the values still: no new rounds, the standby restored the newest set
        drsync("stop-backup", "-c", str(sites.config), check=True)
        wait_for("backup stopped", lambda: primary.get("/progress")["apply"]["backupState"] == "stopped")
        wait_for("standby caught up", lambda: primary.get("/progress")["primary cluster"]["key"]
                 == _caught_up(sites) and standby.get("/progress")["apply"]["restoreState"] == "waiting")

        wait_for("every table verified (continuous verification)", timeout=60, check=lambda: (
            v := standby.get("/progress")["verification"])["verifiedTables"] == v["tables"] == 10)
        wait_for("two RPO samples recorded", timeout=30, check=lambda: len(
            [rpo for _, rpo in load_history(sites.standby_meta) if rpo is not None]) >= 2)

        before: dict[str, Any] = standby.get("/progress")
        browser.get(standby.url + "/")
        after: dict[str, Any] = standby.get("/progress")
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

        assert _field(browser, "primary", "state") == before["apply"]["backupState"] == "stopped"
        assert _field(browser, "standby", "state") == before["apply"]["restoreState"] == "waiting"
        for side in ("primary", "standby"):
            assert _field(browser, side, "key") == before[f"{side} cluster"]["key"]
            assert _field(browser, side, "progress") == before[f"{side} cluster"]["progress"]
        assert browser.find_element(By.ID, "latest-barrier").text == before["latestBarrierTime"]
        rpo = int(browser.find_element(By.ID, "rpo-now").text)
        assert int(before["recovery point objective"]) <= rpo <= int(after["recovery point objective"])
        assert browser.find_element(By.ID, "forecast").text.startswith("forecast: ")

        tables = {row.get_attribute("data-table")
                  for row in browser.find_elements(By.CSS_SELECTOR, "#table-lag tr[data-table]")}
        assert tables == set(load_state(sites.standby_meta, StandbyState).tables) and len(tables) == 10
        samples = int(browser.find_element(By.ID, "rpo-chart").get_attribute("data-samples") or 0)
        assert samples >= 2, "the daemon recorded no RPO history"
        assert browser.find_elements(By.CSS_SELECTOR, "#rpo-chart polyline")
        assert "backup" in browser.find_element(By.ID, "sets").text
        shown = browser.find_element(By.CSS_SELECTOR, "#verification [data-field='verified-barrier']").text
        assert shown == before["verification"]["verifiedBarrierTime"] != ""

        # nothing but the page itself was fetched, and only from the daemon
        urls = browser.execute_script(
            "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name))")
        assert all(str(u).startswith(standby.url) for u in urls), urls
        # read-only: the page offers no form and no button
        assert not browser.find_elements(By.CSS_SELECTOR, "form, button, input")
    finally:
        for d in daemons:
            d.stop()
