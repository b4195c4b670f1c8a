// The Lineage page: an SVG graph of jobs and datasets around a node, now or as of a time
// or a run; pan (drag), zoom (wheel), collapse a node's neighbours, a side panel.
import { explain, get } from "./api.js";
import { layout, visibleSubgraph } from "./layout.js";
import { columnLineage } from "./pages.js";
import {
  clear,
  fmtDuration,
  fmtTime,
  h,
  hrefDataset,
  hrefIssues,
  hrefLineage,
  hrefRun,
  hrefRuns,
  isoToLocalInput,
  loading,
  localInputToIso,
  message,
  nodeIdOf,
  put,
  s,
  shortId,
  stateBadge,
  stateClass,
} from "./util.js";

const DEFAULT_DEPTH = 5;
const DEFAULT_MAX_NODES = 500;
const STATUS_CHUNK = 150;
const MIN_READABLE_ZOOM = 0.6;
// Boxes narrow enough that a chain of eight fits a laptop screen readably; a name too
// long for one line wraps onto a second (at a '.', '/', '_' or '-'), then is shortened.
const NODE_WIDTH = 200;
const COL_GAP = 56;
const TEXT_ROOM = NODE_WIDTH - 28;
const NAME_FONT = "600 12.5px";
const SUB_FONT = "11px";

export async function renderLineage(view, _segments, params) {
  const node = params.get("node") || "";
  if (!node) {
    await renderPicker(view);
    return;
  }
  const opts = {
    node,
    direction: params.get("direction") || "both",
    depth: Number(params.get("depth") || DEFAULT_DEPTH),
    asOf: params.get("as_of") || "",
    asOfRun: params.get("as_of_run") || "",
    maxNodes: Number(params.get("max_nodes") || DEFAULT_MAX_NODES),
  };
  const kind = node.split(":", 1)[0];

  // The job behind the start node (for the "as of a run" choices).
  let job = null;
  let startRun = null;
  if (kind === "run") {
    startRun = await get(["runs", node.slice(4)]);
    job = { namespace: startRun.job_namespace, name: startRun.job_name };
  } else if (kind === "job") {
    const rest = node.slice(4);
    job = await jobOfNodeId(rest);
  }

  const controls = h("form", { class: "graph-controls", id: "graph-controls" });
  const banner = h("div", { class: "graph-banners" });
  const stage = h("div", { class: "graph-stage" }, loading());
  const panel = h("aside", { class: "side-panel hidden", id: "side-panel" });
  put(view, 
    h("div", { class: "page-head" }, h("div", null, h("div", { class: "kicker" }, "Lineage"), h("h1", { class: "graph-title" }, nodeTitle(node, startRun)))),
    controls,
    banner,
    h("div", { class: "graph-layout" }, stage, panel),
  );
  await buildControls(controls, opts, job, startRun);

  const query = {
    node_id: node,
    direction: opts.direction,
    depth: opts.depth,
    max_nodes: opts.maxNodes,
    as_of: opts.asOf || undefined,
    as_of_run: opts.asOfRun || undefined,
  };
  let result;
  try {
    result = await get(["lineage"], query);
  } catch (err) {
    put(clear(stage), message("error", explain(err)));
    return;
  }
  // As of a past time, a job is coloured by the state of its run current then.
  const thenRuns = result.as_of ? result.nodes.filter((n) => n.type === "job" && n.run_id).map((n) => "run:" + n.run_id) : [];
  const status = await nodeStatus([...result.nodes.map((n) => n.id), ...thenRuns]);
  if (result.as_of) {
    for (const n of result.nodes) {
      const then = n.run_id && status["run:" + n.run_id];
      if (n.type === "job" && then) status[n.id] = { ...(status[n.id] || {}), state: then.state };
    }
  }

  if (result.as_of) {
    const runNote = opts.asOfRun || (kind === "run" ? node.slice(4) : "");
    put(banner, 
      h(
        "div",
        { class: "message info as-of-note", id: "as-of-note" },
        runNote ? `As of run ${shortId(runNote)} (started ${fmtTime(result.as_of)}): ` : `As of ${fmtTime(result.as_of)}: `,
        "each job shows the inputs and outputs of its latest run started by then.",
      ),
    );
  }
  if (result.truncated) {
    const more = new URLSearchParams(params);
    more.set("max_nodes", String(Math.min(opts.maxNodes * 2, 10000)));
    put(banner, 
      h(
        "div",
        { class: "message warn truncated", id: "truncated-note" },
        `Truncated: this graph stops at ${result.nodes.length} nodes (max ${opts.maxNodes}); more lineage exists beyond the edge. `,
        "Lower the depth, pick one direction, or ",
        h("a", { href: "#/lineage?" + more }, "show up to " + Math.min(opts.maxNodes * 2, 10000) + " nodes"),
        ".",
      ),
    );
  }
  if (result.hidden_nodes) {
    put(banner, h("div", { class: "message info" }, `${result.hidden_nodes} node${result.hidden_nodes === 1 ? " is" : "s are"} hidden: outside this key's namespaces.`));
  }
  if (!result.nodes.length) {
    put(clear(stage), message("info", "Nothing to show."));
    return;
  }
  new GraphView(stage, panel, result, status, opts).draw();
}

function nodeTitle(node, startRun) {
  if (startRun) return `${startRun.job_name} · run ${shortId(startRun.run_id)}`;
  const kind = node.split(":", 1)[0];
  const rest = node.slice(kind.length + 1);
  return rest || node;
}

// "job:<ns>:<name>" -> {namespace, name} by asking the API (a namespace may hold ':').
async function jobOfNodeId(rest) {
  // try each ':' as the split point, longest namespace first matching a known job
  const positions = [];
  for (let i = rest.indexOf(":"); i >= 0; i = rest.indexOf(":", i + 1)) positions.push(i);
  for (const i of positions) {
    const namespace = rest.slice(0, i);
    const name = rest.slice(i + 1);
    if (!namespace || !name || name.startsWith("//")) continue;
    try {
      await get(["jobs", namespace, name]);
      return { namespace, name };
    } catch {
      // not this split
    }
  }
  return null;
}

async function nodeStatus(ids) {
  const found = {};
  const chunks = [];
  for (let i = 0; i < ids.length; i += STATUS_CHUNK) chunks.push(ids.slice(i, i + STATUS_CHUNK));
  const answers = await Promise.all(chunks.map((chunk) => get(["ui", "node-status"], { node: chunk }).catch(() => ({ nodes: {} }))));
  for (const answer of answers) Object.assign(found, answer.nodes);
  return found;
}

async function buildControls(form, opts, job, startRun) {
  const direction = h(
    "select",
    { name: "direction", id: "g-direction" },
    ["both", "upstream", "downstream"].map((d) => h("option", { value: d, selected: d === opts.direction }, d)),
  );
  const depth = h("input", { type: "number", name: "depth", id: "g-depth", min: 0, max: 100, value: opts.depth, class: "narrow" });
  const asOf = h("select", { name: "as_of_mode", id: "g-as-of" }, h("option", { value: "now" }, "Now"));
  const time = h("input", { type: "datetime-local", step: "1", name: "as_of", id: "g-as-of-time", value: isoToLocalInput(opts.asOf), class: "hidden" });
  const selectedRun = opts.asOfRun || (startRun ? startRun.run_id : "");
  if (job) {
    try {
      const runs = await get(["runs"], { namespace: job.namespace, job: job.name, limit: 50 });
      const group = h("optgroup", { label: "As of a run of " + job.name });
      for (const run of runs.items) {
        put(group, 
          h(
            "option",
            { value: "run:" + run.run_id, selected: run.run_id === selectedRun, "data-run-id": run.run_id },
            `run ${shortId(run.run_id)} · ${fmtTime(run.started_at)} · ${run.state}`,
          ),
        );
      }
      put(asOf, group);
    } catch {
      // no runs readable: only "now" and a time
    }
  }
  put(asOf, h("option", { value: "time", selected: Boolean(opts.asOf) }, "A time…"));
  if (opts.asOf) time.classList.remove("hidden");
  asOf.addEventListener("change", () => {
    time.classList.toggle("hidden", asOf.value !== "time");
    if (asOf.value !== "time") form.requestSubmit();
  });
  put(form, 
    h("label", { class: "field" }, h("span", null, "Direction"), direction),
    h("label", { class: "field" }, h("span", null, "Depth"), depth),
    h("label", { class: "field" }, h("span", null, "As of"), asOf),
    h("label", { class: "field" }, h("span", null, "\u00a0"), time),
    h("div", { class: "filter-buttons" }, h("button", { type: "submit", class: "primary" }, "Show")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    let node = opts.node;
    const params = new URLSearchParams();
    const mode = asOf.value;
    if (job && node.startsWith("run:")) node = nodeIdOf("job", job.namespace, job.name);
    params.set("node", node);
    if (direction.value !== "both") params.set("direction", direction.value);
    if (Number(depth.value) !== DEFAULT_DEPTH) params.set("depth", depth.value);
    if (opts.maxNodes !== DEFAULT_MAX_NODES) params.set("max_nodes", String(opts.maxNodes));
    if (mode.startsWith("run:")) params.set("as_of_run", mode.slice(4));
    if (mode === "time" && time.value) params.set("as_of", localInputToIso(time.value));
    location.hash = "#/lineage?" + params;
  });
}

async function renderPicker(view) {
  put(view, 
    h("h1", null, "Lineage"),
    h("p", { class: "sub" }, "Pick a job to see its graph, or search for a dataset or job (box at the top), or open a run's graph from Runs."),
  );
  const body = h("div", null, loading());
  put(view, body);
  const jobs = await get(["jobs"], { limit: 200 });
  const items = [...jobs.items].sort((a, b) => String((b.latest_run || {}).started_at || "").localeCompare(String((a.latest_run || {}).started_at || "")));
  put(clear(body), 
    h(
      "ul",
      { class: "picker" },
      items.map((j) =>
        h(
          "li",
          null,
          j.latest_run ? stateBadge(j.latest_run.state) : stateBadge(null),
          " ",
          h("a", { href: hrefLineage(nodeIdOf("job", j.namespace, j.name)), class: "job-link" }, j.name),
          h("span", { class: "ns" }, " " + j.namespace),
          j.latest_run ? h("span", { class: "sub" }, " · " + fmtTime(j.latest_run.started_at)) : null,
        ),
      ),
    ),
    items.length ? null : h("p", { class: "sub" }, "No jobs yet: send OpenLineage events first."),
  );
}

// --- the graph ------------------------------------------------------------------------------

class GraphView {
  constructor(stage, panel, result, status, opts) {
    this.stage = stage;
    this.panel = panel;
    this.result = result;
    this.status = status;
    this.opts = opts;
    this.collapsed = new Set();
    this.selected = null;
    this.view = { x: 20, y: 20, k: 1 };
    this.byId = new Map(result.nodes.map((n) => [n.id, n]));
  }

  draw() {
    const { nodes, edges, hiddenBy } = visibleSubgraph(this.result.nodes, this.result.edges, this.result.start, this.collapsed);
    const labels = new Map(nodes.map((n) => [n.id, nameLines(n.name)]));
    const twoLines = [...labels.values()].some((lines) => lines.length > 1);
    const laid = layout(nodes, edges, { start: this.result.start, nodeWidth: NODE_WIDTH, nodeHeight: twoLines ? 60 : 46, colGap: COL_GAP });
    this.laid = laid;
    const W = laid.nodeWidth;
    const H = laid.nodeHeight;
    const svg = s("svg", { class: "graph", id: "graph-svg", "data-nodes": nodes.length, "data-start": this.result.start });
    const defs = s(
      "defs",
      null,
      s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0 0 L10 5 L0 10 z", class: "arrow-head" })),
    );
    const root = s("g", { class: "viewport" });
    put(svg, defs, root);
    const edgeLayer = s("g", { class: "edges" });
    const nodeLayer = s("g", { class: "nodes" });
    put(root, edgeLayer, nodeLayer);

    for (const e of edges) {
      const a = laid.positions.get(e.source);
      const b = laid.positions.get(e.target);
      if (!a || !b) continue;
      const x1 = a.x + W;
      const y1 = a.y + H / 2;
      const x2 = b.x;
      const y2 = b.y + H / 2;
      let d;
      if (x2 > x1) {
        const dx = Math.max(30, (x2 - x1) / 2);
        d = `M${x1} ${y1} C${x1 + dx} ${y1} ${x2 - dx} ${y2} ${x2} ${y2}`;
      } else {
        const lift = Math.max(a.y, b.y) + H + 30;
        d = `M${x1} ${y1} C${x1 + 80} ${lift} ${x2 - 80} ${lift} ${x2} ${y2}`;
      }
      put(edgeLayer, s("path", { d, class: "edge", "marker-end": "url(#arrow)", "data-source": e.source, "data-target": e.target }));
    }

    for (const n of nodes) {
      const p = laid.positions.get(n.id);
      const st = this.status[n.id] || {};
      const isDataset = n.type === "dataset";
      const cls = ["node", n.type, isDataset ? "" : stateClass(st.state)];
      if (n.id === this.result.start) cls.push("start");
      if (n.id === this.selected) cls.push("selected");
      if (st.open_issues) cls.push("has-issues");
      if (this.collapsed.has(n.id)) cls.push("collapsed");
      const g = s("g", {
        class: cls.join(" "),
        transform: `translate(${p.x},${p.y})`,
        "data-node-id": n.id,
        "data-type": n.type,
        "data-state": st.state || "",
        tabindex: 0,
      });
      put(g, s("title", null, `${n.type} ${n.namespace}:${n.name}` + (st.state ? ` · ${st.state}` : "")));
      put(g, s("rect", { class: "node-box", width: W, height: H, rx: isDataset ? 18 : 5 }));
      if (!isDataset) put(g, s("rect", { class: "state-strip", width: 7, height: H, rx: 2 }));
      const x = isDataset ? 14 : 16;
      const lines = labels.get(n.id);
      put(g, s("text", { x, y: 19, class: "node-name" }, lines.map((line, i) => s("tspan", { x, dy: i ? 15 : 0 }, line))));
      const state = st.state || "no run";
      const sub = isDataset ? fitText(n.namespace, SUB_FONT, TEXT_ROOM) : `${state} · ${fitText(n.namespace, SUB_FONT, TEXT_ROOM - textWidth(state + " · ", SUB_FONT))}`;
      put(g, s("text", { x, y: H - 10, class: "node-sub" }, sub));
      if (st.open_issues) {
        const marker = s("g", { class: "issue-marker", transform: `translate(${W - 4},2)` });
        put(marker, s("circle", { r: 10 }), s("text", { y: 4, "text-anchor": "middle" }, st.open_issues > 9 ? "9+" : "!" + (st.open_issues > 1 ? st.open_issues : "")));
        put(marker, s("title", null, `${st.open_issues} open issue${st.open_issues === 1 ? "" : "s"}`));
        put(g, marker);
      }
      if (hiddenBy.get(n.id)) {
        const badge = s("g", { class: "collapse-badge", transform: `translate(${W + 4},${H / 2 - 9})` });
        put(badge, s("rect", { width: 30, height: 18, rx: 9 }), s("text", { x: 15, y: 13, "text-anchor": "middle" }, "+" + hiddenBy.get(n.id)));
        put(g, badge);
      }
      g.addEventListener("click", (event) => {
        if (this.dragged) return;
        event.stopPropagation();
        this.select(n.id);
      });
      g.addEventListener("dblclick", (event) => {
        event.stopPropagation();
        this.toggleCollapse(n.id);
      });
      g.addEventListener("keydown", (event) => {
        if (event.key === "Enter") this.select(n.id);
      });
      put(nodeLayer, g);
    }

    const toolbar = h(
      "div",
      { class: "graph-toolbar" },
      h("button", { type: "button", onclick: () => this.zoomBy(1.25), title: "zoom in" }, "+"),
      h("button", { type: "button", onclick: () => this.zoomBy(0.8), title: "zoom out" }, "−"),
      h("button", { type: "button", onclick: () => this.fit(), id: "fit-button" }, "Fit"),
      this.collapsed.size ? h("button", { type: "button", onclick: () => this.expandAll() }, "Expand all") : null,
      h("span", { class: "graph-count", id: "graph-count" }, `${nodes.length} of ${this.result.nodes.length} nodes · ${edges.length} edges`),
    );
    const legend = h(
      "div",
      { class: "graph-legend" },
      ["COMPLETE", "FAIL", "RUNNING", "ABORT"].map((st) => h("span", { class: "legend-item" }, h("i", { class: "swatch " + stateClass(st) }), st.toLowerCase())),
      h("span", { class: "legend-item" }, h("i", { class: "swatch dataset" }), "dataset"),
      h("span", { class: "legend-item" }, h("i", { class: "swatch issue" }), "open issues"),
      h("span", { class: "legend-item hint" }, "drag to pan · wheel to zoom · double-click to collapse"),
    );
    put(clear(this.stage), toolbar, svg, legend);
    this.svg = svg;
    this.root = root;
    this.bindPanZoom();
    if (!this.placed) {
      this.fit();
      // a large graph would be unreadable whole: start readable, around the start node
      if (this.view.k < MIN_READABLE_ZOOM) this.focus(this.result.start, MIN_READABLE_ZOOM);
      this.placed = true;
    } else {
      this.apply();
    }
    if (this.selected) this.renderPanel(this.selected);
  }

  apply() {
    this.root.setAttribute("transform", `translate(${this.view.x},${this.view.y}) scale(${this.view.k})`);
  }

  fit() {
    const box = this.svg.getBoundingClientRect();
    const width = box.width || 1000;
    const height = box.height || 600;
    const margin = 40;
    const k = Math.min(1.2, (width - margin * 2) / Math.max(1, this.laid.width + 40), (height - margin * 2) / Math.max(1, this.laid.height));
    this.view.k = Math.max(0.05, k);
    this.view.x = (width - this.laid.width * this.view.k) / 2;
    this.view.y = (height - this.laid.height * this.view.k) / 2;
    this.apply();
  }

  focus(id, k) {
    const p = this.laid.positions.get(id);
    if (!p) return;
    const box = this.svg.getBoundingClientRect();
    this.view.k = k;
    this.view.x = box.width / 2 - (p.x + this.laid.nodeWidth / 2) * k;
    this.view.y = box.height / 2 - (p.y + this.laid.nodeHeight / 2) * k;
    this.apply();
  }

  zoomBy(factor, px, py) {
    const box = this.svg.getBoundingClientRect();
    const cx = px !== undefined ? px : box.width / 2;
    const cy = py !== undefined ? py : box.height / 2;
    const k = Math.min(4, Math.max(0.05, this.view.k * factor));
    const ratio = k / this.view.k;
    this.view.x = cx - (cx - this.view.x) * ratio;
    this.view.y = cy - (cy - this.view.y) * ratio;
    this.view.k = k;
    this.apply();
  }

  bindPanZoom() {
    const svg = this.svg;
    svg.addEventListener("mousedown", (event) => {
      if (event.button !== 0) return;
      this.panStart = { x: event.clientX, y: event.clientY, vx: this.view.x, vy: this.view.y };
      this.dragged = false;
      svg.classList.add("panning");
    });
    svg.addEventListener(
      "wheel",
      (event) => {
        event.preventDefault();
        const box = svg.getBoundingClientRect();
        this.zoomBy(Math.exp(-event.deltaY * 0.0015), event.clientX - box.left, event.clientY - box.top);
      },
      { passive: false },
    );
    svg.addEventListener("click", () => {
      if (!this.dragged) this.select(null);
    });
    if (this.windowBound) return;
    this.windowBound = true;
    window.addEventListener("mousemove", (event) => {
      const start = this.panStart;
      if (!start || !this.svg.isConnected) return;
      const dx = event.clientX - start.x;
      const dy = event.clientY - start.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) this.dragged = true;
      this.view.x = start.vx + dx;
      this.view.y = start.vy + dy;
      this.apply();
    });
    window.addEventListener("mouseup", () => {
      if (!this.panStart) return;
      this.panStart = null;
      this.svg.classList.remove("panning");
      setTimeout(() => (this.dragged = false), 0);
    });
  }

  toggleCollapse(id) {
    if (this.collapsed.has(id)) this.collapsed.delete(id);
    else this.collapsed.add(id);
    this.draw();
  }

  expandAll() {
    this.collapsed.clear();
    this.draw();
  }

  select(id) {
    this.selected = id;
    for (const g of this.svg.querySelectorAll("g.node")) g.classList.toggle("selected", g.dataset.nodeId === id);
    if (id) {
      this.renderPanel(id);
      this.ensureVisible(id);
    } else this.panel.classList.add("hidden");
  }

  // Pan so that a node is inside the stage (the side panel narrows it).
  ensureVisible(id) {
    const p = this.laid.positions.get(id);
    if (!p) return;
    const box = this.svg.getBoundingClientRect();
    const k = this.view.k;
    const left = p.x * k + this.view.x;
    const right = left + this.laid.nodeWidth * k;
    const top = p.y * k + this.view.y;
    const bottom = top + this.laid.nodeHeight * k;
    const margin = 30;
    if (right > box.width - margin) this.view.x -= right - (box.width - margin);
    else if (left < margin) this.view.x += margin - left;
    if (bottom > box.height - margin) this.view.y -= bottom - (box.height - margin);
    else if (top < margin) this.view.y += margin - top;
    this.apply();
  }

  renderPanel(id) {
    const n = this.byId.get(id);
    const st = this.status[id] || {};
    const panel = clear(this.panel);
    panel.classList.remove("hidden");
    panel.dataset.nodeId = id;
    const close = h("button", { type: "button", class: "link-button close", onclick: () => this.select(null), title: "close" }, "×");
    const collapse = h(
      "button",
      { type: "button", class: "button", id: "collapse-button", onclick: () => this.toggleCollapse(id) },
      this.collapsed.has(id) ? "Expand neighbours" : "Collapse neighbours",
    );
    const centre = h("a", { class: "button", href: hrefLineage(id, this.opts.asOf ? { as_of: this.opts.asOf } : undefined) }, "Centre graph here");
    put(panel, close, h("div", { class: "kicker" }, n.type), h("h2", { class: "panel-title" }, n.name), h("div", { class: "ns" }, n.namespace));
    if (n.type === "dataset") {
      if (n.aliases && n.aliases.length) put(panel, h("p", { class: "sub" }, "Also: " + n.aliases.join(", ")));
      put(panel, 
        h(
          "dl",
          { class: "facts" },
          h("dt", null, "Open issues"),
          h(
            "dd",
            null,
            st.open_issues
              ? h("a", { href: hrefIssues({ dataset_namespace: n.namespace, dataset_name: n.name, status: "open" }), class: "open-issues has" }, String(st.open_issues))
              : "0",
          ),
        ),
        h(
          "div",
          { class: "panel-links" },
          h("a", { class: "button", href: hrefDataset(n.namespace, n.name), id: "open-dataset" }, "Dataset"),
          h("a", { class: "button", href: hrefDataset(n.namespace, n.name, "quality") }, "Quality"),
          centre,
          collapse,
        ),
      );
      const columns = h("div", { class: "panel-columns" });
      const button = h(
        "button",
        {
          type: "button",
          class: "button",
          onclick: async () => {
            put(clear(columns), loading());
            try {
              await columnLineage(columns, n.namespace, n.name, true);
            } catch (err) {
              put(clear(columns), message("error", explain(err)));
            }
          },
        },
        "Column lineage",
      );
      put(panel, h("h3", null, "Columns"), button, columns);
    } else {
      const runId = n.run_id;
      put(panel, 
        h(
          "dl",
          { class: "facts" },
          h("dt", null, this.result.as_of ? "State (run then)" : "State"),
          h("dd", null, stateBadge(st.state)),
          st.latest_state && st.latest_state !== st.state ? [h("dt", null, "Latest run"), h("dd", null, stateBadge(st.latest_state))] : null,
          h("dt", null, "Run"),
          h("dd", null, runId ? h("a", { href: hrefRun(runId), class: "mono", id: "panel-run-link" }, shortId(runId)) : "—"),
          h("dt", null, "Started"),
          h("dd", null, fmtTime(n.run_start)),
          h("dt", null, "Open issues"),
          h(
            "dd",
            null,
            st.open_issues ? h("a", { href: hrefIssues({ job_namespace: n.namespace, job_name: n.name, status: "open" }), class: "open-issues has" }, String(st.open_issues)) : "0",
          ),
        ),
        h(
          "div",
          { class: "panel-links" },
          h("a", { class: "button", href: hrefRuns({ namespace: n.namespace, job: n.name }) }, "Runs"),
          runId ? h("a", { class: "button", href: hrefRun(runId, "duration") }, "Durations") : null,
          centre,
          collapse,
        ),
      );
      const recent = h("div", { class: "panel-runs" }, loading());
      put(panel, h("h3", null, "Recent runs"), recent);
      get(["runs"], { namespace: n.namespace, job: n.name, limit: 8 })
        .then((page) => {
          put(clear(recent), 
            h(
              "ul",
              { class: "mini-runs" },
              page.items.map((r) =>
                h(
                  "li",
                  null,
                  stateBadge(r.state),
                  " ",
                  h("a", { href: hrefRun(r.run_id), class: "mono" }, shortId(r.run_id)),
                  h("span", { class: "sub" }, ` ${fmtTime(r.started_at)} · ${fmtDuration(r.duration_ms)}`),
                  " ",
                  h("a", { href: hrefLineage("run:" + r.run_id), class: "small" }, "graph"),
                ),
              ),
            ),
          );
        })
        .catch((err) => put(clear(recent), message("error", explain(err))));
    }
  }
}

// --- labels ----------------------------------------------------------------------------------

let measureContext = null;
let fontFamily = "";
function textWidth(text, font) {
  if (!measureContext) {
    measureContext = document.createElement("canvas").getContext("2d");
    fontFamily = getComputedStyle(document.body).fontFamily || "sans-serif";
  }
  measureContext.font = `${font} ${fontFamily}`;
  return measureContext.measureText(text).width;
}

// `text`, shortened in the middle when wider than `room`: both the start (a schema, a
// bucket) and the end (the table, the file) tell which one it is.
function fitText(text, font, room) {
  const value = String(text || "");
  if (textWidth(value, font) <= room) return value;
  let keep = value.length - 1;
  while (keep > 2) {
    const head = Math.ceil(keep * 0.4);
    const short = value.slice(0, head) + "…" + value.slice(value.length - (keep - head));
    if (textWidth(short, font) <= room) return short;
    keep--;
  }
  return value.slice(0, 2) + "…";
}

// A node's name on one line, or two split after a separator (the second shortened if
// need be); the lines joined give the name back whenever it fits.
function nameLines(name) {
  const value = String(name || "");
  if (textWidth(value, NAME_FONT) <= TEXT_ROOM) return [value];
  // the last separator that leaves a first line that fits: '.', ':' or '/' before '_' or '-'
  let split = -1;
  for (const separators of [".:/", "_-"]) {
    for (let i = 1; i < value.length - 1; i++) {
      if (!separators.includes(value[i])) continue;
      if (textWidth(value.slice(0, i + 1), NAME_FONT) > TEXT_ROOM) break;
      split = i + 1;
    }
    if (split > 0) break;
  }
  if (split < 0) return [fitText(value, NAME_FONT, TEXT_ROOM)];
  return [value.slice(0, split), fitText(value.slice(split), NAME_FONT, TEXT_ROOM)];
}
