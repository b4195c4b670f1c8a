"""The Lineage page with a few hundred nodes, in a real browser.

A chain of 30 jobs (`j00` reads `chain_00` and writes `chain_01`, `j01` reads `chain_01`
...); the first 15 also read 8 feeds each (fan-in), the last 15 also write 8 datasets each
(fan-out): 301 nodes, all up- or downstream of `j15`, stored straight into ClickHouse
(`load_events`). The graph of `j15` with depth 40 shows all of them; wheel zooms,
dragging pans, collapsing `chain_16` hides everything downstream of it, and with
`max_nodes` below the graph's size the page says it is truncated.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page

from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from tests.conftest import load_events
from tests.events import BASE_TIME, PRODUCER, SCHEMA_URL
from tests.ui.test_ui import ARTIFACTS, browser_page, graph_nodes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

JOBS = 30
MIDDLE = 15
FAN = 8
NS = "scale"
DS = "warehouse"
TOTAL = JOBS + (JOBS + 1) + JOBS * FAN  # jobs, chain, feeds and fans = 301


def ds(name: str) -> dict[str, str]:
    return {"namespace": DS, "name": name}


def chain_and_fan() -> list[dict[str, Any]]:
    events = []
    for i in range(JOBS):
        run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"scale/{i}"))
        for offset, kind in ((0, "START"), (30, "COMPLETE")):
            events.append(
                {
                    "eventType": kind,
                    "eventTime": (BASE_TIME + timedelta(minutes=i, seconds=offset))
                    .isoformat()
                    .replace("+00:00", "Z"),
                    "run": {"runId": run_id},
                    "job": {"namespace": NS, "name": f"j{i:02d}"},
                    "inputs": [ds(f"chain_{i:02d}")]
                    + [ds(f"feed_{i:02d}_{k}") for k in range(FAN) if i < MIDDLE],
                    "outputs": [ds(f"chain_{i + 1:02d}")]
                    + [ds(f"fan_{i:02d}_{k}") for k in range(FAN) if i >= MIDDLE],
                    "producer": PRODUCER,
                    "schemaURL": SCHEMA_URL,
                }
            )
    return events


def viewport(page: Page) -> tuple[float, float, float]:
    """(x, y, scale) of the graph's pan/zoom transform."""
    text = page.get_attribute("svg.graph g.viewport", "transform") or ""
    match = re.fullmatch(r"translate\(([-\d.e]+),([-\d.e]+)\) scale\(([-\d.e]+)\)", text)
    assert match, text
    x, y, k = (float(v) for v in match.groups())
    return x, y, k


def node_count(page: Page) -> int:
    return page.locator("svg.graph g.node").count()


def test_lineage_page_with_300_nodes(
    make_settings: Callable[..., Settings], start_api: Any
) -> None:
    settings = make_settings()
    migrate(settings)
    load_events(settings, chain_and_fan())
    url = start_api(settings, LINEAGEHOUSE_API__AUTH_ENABLED="false")
    start = f"job:{NS}:j15"

    def lineage(**params: Any) -> str:
        return f"{url}/#/lineage?" + urlencode({"node": start, **params})

    with browser_page() as (page, errors):
        began = time.monotonic()
        page.goto(lineage(depth=40))
        page.wait_for_selector("svg.graph g.node")
        render_s = time.monotonic() - began
        nodes = graph_nodes(page)
        assert len(nodes) == node_count(page) == TOTAL, len(nodes)
        assert {start, f"dataset:{DS}:chain_00", f"dataset:{DS}:chain_30"} <= nodes
        assert {f"dataset:{DS}:fan_29_7", f"dataset:{DS}:feed_00_0"} <= nodes
        assert page.inner_text("#graph-count").startswith(f"{TOTAL} of {TOTAL} nodes")
        assert page.locator("#truncated-note").count() == 0
        assert render_s < 20, f"{TOTAL} nodes took {render_s:.1f} s"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "lineage-scale.png"))
        # every edge drawn: each job has its chain input and output, and FAN more
        assert page.locator("svg.graph path.edge").count() == JOBS * (2 + FAN)

        # ---- wheel zooms around the pointer; dragging pans
        box = page.locator("svg.graph").bounding_box()
        assert box
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        before = page.get_attribute("svg.graph g.viewport", "transform")
        k0 = viewport(page)[2]
        page.mouse.move(cx, cy)
        page.mouse.wheel(0, -400)
        page.wait_for_function(
            "t => document.querySelector('svg.graph g.viewport').getAttribute('transform') !== t",
            arg=before,
        )
        x1, y1, k1 = viewport(page)
        assert k1 > k0, (k0, k1)
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + 150, cy + 80, steps=5)
        page.mouse.up()
        x2, y2, k2 = viewport(page)
        assert (round(x2 - x1), round(y2 - y1), k2) == (150, 80, k1), ((x1, y1), (x2, y2))
        page.click("#fit-button")
        assert viewport(page)[2] < k1

        # ---- collapsing chain_16 (j15's output) hides all that lies downstream of it
        page.goto(lineage(depth=40))
        page.wait_for_selector(f"svg.graph g.node[data-node-id='{start}']")
        chain16 = f"dataset:{DS}:chain_16"
        page.click(f"g.node[data-node-id='{chain16}']")
        page.wait_for_selector(f"#side-panel[data-node-id='{chain16}']")
        page.click("#collapse-button")
        downstream = (JOBS - 16) * (1 + 1 + FAN)  # j16.. with their chain output and fans
        page.wait_for_function(
            f"document.querySelectorAll('svg.graph g.node').length === {TOTAL - downstream}"
        )
        visible = graph_nodes(page)
        assert f"job:{NS}:j16" not in visible and f"dataset:{DS}:fan_29_0" not in visible
        assert {start, chain16, f"dataset:{DS}:chain_00", f"dataset:{DS}:fan_15_0"} <= visible
        badge = page.locator(f"g.node[data-node-id='{chain16}'] .collapse-badge")
        assert badge.text_content() == "+1"  # its one hidden neighbour, j16
        page.click("#collapse-button")  # expand again
        page.wait_for_function(f"document.querySelectorAll('svg.graph g.node').length === {TOTAL}")

        # ---- max_nodes below the graph's size: truncated, and said so
        page.goto(lineage(depth=40, max_nodes=100))
        page.wait_for_selector("#truncated-note")
        assert "Truncated" in page.inner_text("#truncated-note")
        page.wait_for_selector("svg.graph g.node")
        shown = node_count(page)
        assert 0 < shown <= 100, shown
        assert start in graph_nodes(page)
        more = page.locator("#truncated-note a")
        assert "max_nodes=200" in (more.get_attribute("href") or "")
        assert errors == [], errors
