"""README's "First lineage in five minutes", tried as a new user would.

`lineagehouse up` starts as a subprocess (free ports, a temp data dir, the directory it
runs in as the user's working directory); its banner gives the API URL, the admin key and
the demo command, which runs as printed (the demo finds up's broker through the state file
`up` keeps in its data dir). Then the browser follows the README's steps literally: log in
with the printed key, **Runs**, click `shop_daily.load_revenue`, then its **Graph**, and
**Issues** with the resolved ones shown too.

The final graph (1440x900) goes to `artifacts/screenshots/walkthrough-graph.png`, and with
`LINEAGEHOUSE_UPDATE_SCREENSHOTS=1` also to `docs/screenshots/`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, lineagehouse_cmd, wait_for
from tests.ui.test_ui import ARTIFACTS, DOCS_SHOTS, browser_page, graph_nodes, rendered
from tests.ui.user_up import Banner, running_up

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

README = REPO / "README.md"
JOB = "shop_daily.load_revenue"
SHOP = "postgres://shop-db:5432"
LAKE = "s3://demo-lake"
WAREHOUSE = "postgres://warehouse:5432"
PIPELINE = {
    f"dataset:{SHOP}:shop.public.orders",
    f"dataset:{SHOP}:shop.public.customers",
    f"dataset:{LAKE}:curated/orders_clean",
    f"dataset:{WAREHOUSE}:analytics.public.daily_revenue",
    f"job:demo-airflow:{JOB}",
}
KINDS = {"assertion_failed", "run_failed", "schema_changed", "duration_outlier"}


@pytest.fixture
def user_up(tmp_path: Path) -> Iterator[tuple[Banner, Path, dict[str, str]]]:
    """`lineagehouse up` as a user starts it (with free ports); the banner once it's up."""
    home = tmp_path / "home"  # the user's working directory
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGEHOUSE_")}
    with running_up(home, tmp_path / "data", env, tmp_path / "up.out") as banner:
        yield banner, home, env


def readme_walkthrough() -> str:
    text = README.read_text()
    start = text.index("## First lineage in five minutes")
    return text[start : text.index("\n## ", start + 3)]


def test_readme_walkthrough(user_up: tuple[Banner, Path, dict[str, str]], tmp_path: Path) -> None:
    banner, home, env = user_up
    steps = readme_walkthrough()
    assert "lineagehouse demo" in steps and "make up" in steps
    # the labels the README tells the user to click are the ones clicked below
    for label in ("Runs", "Graph", "Issues", "Show open and resolved"):
        assert f"**{label}**" in steps, label
    assert f"Click `{JOB}`" in steps
    url, key = banner.api_url, banner.key
    assert url.startswith("http://127.0.0.1:") and key.startswith("lh_")
    assert f"open {url}/" in banner.text

    # ---- `lineagehouse demo`, as the banner prints it, from the same directory
    began = time.monotonic()
    demo = subprocess.run(
        lineagehouse_cmd("demo", *banner.demo_command),
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    demo_s = time.monotonic() - began
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "Sent 116 events to Kafka" in demo.stdout, demo.stdout
    assert f"Open {url}/" in demo.stdout, demo.stdout
    assert demo_s < 60, f"the demo took {demo_s:.0f} s"

    # the worker gets there within moments; the user would wait and reload
    headers = {"Authorization": f"Bearer {key}"}

    def issue_kinds() -> set[str]:
        resp = httpx.get(f"{url}/api/v2/issues", params={"limit": 100}, headers=headers)
        return {i["kind"] for i in resp.json()["items"]} if resp.status_code == 200 else set()

    wait_for(lambda: issue_kinds() == KINDS, 240, f"the demo's issues {KINDS}")

    shots_dir = tmp_path / "screenshots"
    shots_dir.mkdir()
    with browser_page() as (page, errors):
        # ---- "open http://127.0.0.1:5000/ and log in with the API key `up` printed"
        page.goto(url + "/")
        page.fill("#api-key", key)
        page.get_by_role("button", name="Log in").click()

        # ---- 1. Runs lists the demo's runs, newest first
        page.get_by_role("link", name="Runs", exact=True).click()
        page.wait_for_selector("table.runs-table tbody tr[data-run-id]")
        jobs = page.eval_on_selector_all(
            "table.runs-table tbody tr[data-job]", "rs => rs.map(r => r.dataset.job)"
        )
        tasks = ["extract_orders", "transform_orders", "load_revenue", "check_revenue"]
        tasks += ["customer_ltv"]
        assert {"shop_daily", *[f"shop_daily.{t}" for t in tasks]} <= set(jobs), jobs
        page.screenshot(path=str(shots_dir / "walkthrough-runs.png"))

        # ---- 2. Click shop_daily.load_revenue, then its graph
        page.locator("table.runs-table a.job-link", has_text=JOB).first.click()
        page.wait_for_function(f"location.hash.includes({JOB!r})")
        rendered(page)  # the filtered table, not the one the click left behind
        rows = page.eval_on_selector_all(
            "table.runs-table tbody tr[data-job]", "rs => rs.map(r => r.dataset.job)"
        )
        assert len(rows) == 10 and set(rows) == {JOB}, rows  # "its ten runs (day 6 failed)"
        states = page.eval_on_selector_all(
            "table.runs-table tbody tr[data-run-id] td:first-child",
            "cs => cs.map(c => c.innerText)",
        )
        assert [i for i, state in enumerate(states) if state == "FAIL"] == [4], states
        page.screenshot(path=str(shots_dir / "walkthrough-job-runs.png"))
        assert page.inner_text("h1") == f"Runs of {JOB}"
        newest = page.locator("table.runs-table tbody tr[data-run-id]").first
        assert "COMPLETE" in newest.inner_text()
        newest.get_by_role("link", name="Graph").click()
        page.wait_for_selector("svg.graph g.node")
        nodes = graph_nodes(page)
        assert nodes >= PIPELINE, nodes
        # Postgres orders and customers flow through S3 into the revenue table
        labels = page.eval_on_selector_all(
            "svg.graph g.node text.node-name", "els => els.map(e => e.textContent)"
        )
        for name in ("shop.public.orders", "shop.public.customers", "curated/orders_clean"):
            assert name in labels, labels
        assert "analytics.public.daily_revenue" in labels, labels
        for node in PIPELINE:  # every node of the pipeline inside the visible stage
            box = page.locator(f"g.node[data-node-id='{node}']").bounding_box()
            assert box, node
            assert box["x"] >= 0 and box["x"] + box["width"] <= 1440, (node, box)
            assert box["y"] >= 0 and box["y"] + box["height"] <= 900, (node, box)
        page.wait_for_timeout(250)
        final = tmp_path / "walkthrough-graph.png"
        page.screenshot(path=str(final))
        targets = [ARTIFACTS]
        if os.environ.get("LINEAGEHOUSE_UPDATE_SCREENSHOTS") == "1":
            targets.append(DOCS_SHOTS)
        for target in targets:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(final, target / "walkthrough-graph.png")

        # ---- 3. Issues shows one of each kind (the recovered run among the resolved ones)
        page.get_by_role("link", name="Issues", exact=True).click()
        page.wait_for_selector("table.issues-table tbody tr[data-issue-id]")
        rendered(page)
        page.screenshot(path=str(shots_dir / "walkthrough-issues-open.png"))
        open_kinds = set(
            page.eval_on_selector_all(
                "table.issues-table tbody tr[data-issue-id]", "rs => rs.map(r => r.dataset.kind)"
            )
        )
        assert open_kinds == KINDS - {"run_failed"}, open_kinds
        page.get_by_role("link", name="Show open and resolved").click()
        page.wait_for_function("location.hash.includes('status=all')")
        rendered(page)
        rows = page.eval_on_selector_all(
            "table.issues-table tbody tr[data-issue-id]",
            "rs => rs.map(r => [r.dataset.kind, r.innerText])",
        )
        assert {kind for kind, _ in rows} == KINDS, rows
        texts = {kind: text for kind, text in rows}
        assert "coupon_code" in texts["schema_changed"], texts
        assert "transform_orders" in texts["duration_outlier"], texts
        page.screenshot(path=str(shots_dir / "walkthrough-issues.png"))
        assert errors == [], errors
