"""The operator's dashboard in a real browser (Playwright driving Debian's headless Chromium).

A machine sells through the world's broker to the vendor backend; the page, opened once, follows
the sales count, the stock and the alerts without a reload, and its restock button changes the
machine's own stock through a signed command.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.simulator.dashboard.conftest import TOKEN, chromium, dashboard_on
from tests.support.reporting import attached_runner, sell, world  # noqa: F401 - fixture
from tests.support.waiting import eventually

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_TO = "VENDING_DASHBOARD_SCREENSHOT"  # make screenshot: where to keep the picture for the docs


def test_the_page_follows_sales_stock_and_alerts_live_and_restocks_the_machine(world, tmp_path):  # noqa: F811
    browser_path = chromium()
    with attached_runner(world, tmp_path) as runner, dashboard_on(world, runner) as server:
        machine = runner.machine.controller.config.id
        inventory = runner.machine.books.inventory
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            try:
                page.goto(f"{server.url}/?token={TOKEN}")
                page.evaluate("window.openedOnce = true")  # gone if the page ever reloads
                expect(page.locator("#items-sold")).to_have_text("0")

                sell(runner, "A1", "lin")
                expect(page.locator("#items-sold")).to_have_text("1", timeout=20_000)
                expect(page.locator("#revenue")).to_contain_text("TWD")

                for _ in range(5):  # A1 from 7 down to the demo machine's low-stock level, 2
                    sell(runner, "A1", "lin")
                assert inventory.get("A1").stock == 2
                expect(page.locator("#items-sold")).to_have_text("6", timeout=20_000)
                row = page.locator(f"#slot-{machine}-A1")
                expect(row.locator(".stock")).to_have_text("2 / 10", timeout=20_000)
                expect(row).to_have_class(re.compile(r"(^|\s)low(\s|$)"))
                alert = page.locator("#alerts li.alert[data-kind='low_stock']")
                expect(alert).to_contain_text("A1")
                expect(page.locator("body")).to_have_attribute("data-chart-items", "6")

                row.get_by_role("button", name="Fill to 10").click()
                expect(page.locator("#command-answer")).to_contain_text("sent restock")

                def restocked() -> bool:
                    runner.machine.tick()  # the runner applies commands on the controller's thread
                    return inventory.get("A1").stock == 10

                eventually(restocked, what="the machine applying the dashboard's restock")
                expect(row.locator(".stock")).to_have_text("10 / 10", timeout=20_000)
                expect(alert).to_have_count(0)
                expect(page.locator("#commands")).to_contain_text("restock: applied")
                assert page.evaluate("window.openedOnce") is True, "the page reloaded"
                _keep_screenshot(page, tmp_path)

                world.vendor.client.disconnect()  # the backend has lost its link: a button says it sent nothing
                eventually(lambda: not world.vendor.client.is_connected(), what="the backend's link down")
                row.get_by_label("price of A1").fill("30")
                row.get_by_role("button", name="Set price").click()
                answer = page.locator("#command-answer p.refused")
                expect(answer).to_contain_text("no broker link right now; nothing sent")
            finally:
                browser.close()


def _keep_screenshot(page, tmp_path: Path) -> None:
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    target = os.environ.get(SCREENSHOT_TO)
    if target:
        shutil.copyfile(shot, target)


def test_right_after_the_machine_starts_the_page_shows_its_stock_by_name_and_what_cannot_sell(world, tmp_path):  # noqa: F811
    """No sale, no restock, no command yet: the machine's boot snapshot alone fills the Stock panel."""
    browser_path = chromium()
    with attached_runner(world, tmp_path) as runner, dashboard_on(world, runner) as server:
        machine = runner.machine.controller.config.id
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            try:
                page.goto(f"{server.url}/?token={TOKEN}")
                group = page.locator(f"#stock tbody.machine-stock[data-machine='{machine}']")
                expect(group.locator("tr.machine-head")).to_have_text(machine, timeout=20_000)
                milk = page.locator(f"#slot-{machine}-A1")
                expect(milk.locator(".product")).to_contain_text("低脂鮮乳 / Low-fat milk")
                expect(milk.get_by_role("button", name="Fill to 10")).to_be_visible()
                refused = page.locator(f"#slot-{machine}-B3")  # sweetened tea: kept to show the refusal
                expect(refused).to_have_class(re.compile(r"(^|\s)cannot-sell(\s|$)"))
                expect(refused.locator(".why-not")).to_have_text("cannot sell: refused by the food rules")
                expect(refused.locator("button.restock")).to_have_count(0)
                expect(page.locator(f"tr[data-machine='{machine}'] .state")).to_have_text("online")
                expect(page.locator(f"tr[data-machine='{machine}'] .location")).to_contain_text("Da'an Junior High")
            finally:
                browser.close()
