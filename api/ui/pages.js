// Pages: Runs, Issues, Search, Dataset (schema, quality, jobs, column lineage).
import { explain, get, getAll } from "./api.js";
import { countsChart, lineChart } from "./charts.js";
import {
  clear,
  fmtDuration,
  fmtNumber,
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
  qualified,
  severityBadge,
  shortId,
  stateBadge,
  statusBadge,
  table,
  tabs,
} from "./util.js";

const PAGE = 50;
const RUN_STATES = ["COMPLETE", "FAIL", "RUNNING", "START", "ABORT", "OTHER"];
const ISSUE_KINDS = ["assertion_failed", "run_failed", "duration_outlier", "schema_changed"];

// --- shared bits --------------------------------------------------------------------------

let namespacesCache = null;
async function namespaces() {
  if (!namespacesCache) {
    namespacesCache = getAll(["namespaces"], {}, 2000).then((items) => items.map((n) => n.name));
    namespacesCache.catch(() => (namespacesCache = null));
  }
  return namespacesCache;
}

function select(name, options, value, emptyLabel) {
  return h(
    "select",
    { name, id: "f-" + name },
    emptyLabel !== undefined ? h("option", { value: "" }, emptyLabel) : null,
    options.map((o) => {
      const [v, label] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: v === value }, label);
    }),
  );
}

function field(label, control) {
  return h("label", { class: "field" }, h("span", null, label), control);
}

// A filter form whose submit rewrites the hash with the form's values.
function filterForm(base, controls, timeFields) {
  const form = h(
    "form",
    { class: "filters" },
    controls,
    h("div", { class: "filter-buttons" }, h("button", { type: "submit", class: "primary" }, "Apply"), h("a", { href: base, class: "button" }, "Reset")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) {
      const value = String(v).trim();
      if (!value) continue;
      params.set(k, (timeFields || []).includes(k) ? localInputToIso(value) : value);
    }
    const text = params.toString();
    location.hash = base + (text ? "?" + text : "");
  });
  return form;
}

function pager(base, params, total, offset) {
  const from = total ? offset + 1 : 0;
  const to = Math.min(offset + PAGE, total);
  const link = (o) => {
    const p = new URLSearchParams(params);
    if (o) p.set("offset", String(o));
    else p.delete("offset");
    return base + "?" + p;
  };
  return h(
    "div",
    { class: "pager" },
    h("span", null, `${from}–${to} of ${fmtNumber(total)}`),
    offset > 0 ? h("a", { href: link(Math.max(0, offset - PAGE)), class: "button" }, "← Newer") : null,
    to < total ? h("a", { href: link(offset + PAGE), class: "button" }, "Older →") : null,
  );
}

function timeInput(name, iso) {
  return h("input", { type: "datetime-local", step: "1", name, id: "f-" + name, value: isoToLocalInput(iso) });
}

// --- Runs -----------------------------------------------------------------------------------

export async function renderRuns(view, _segments, params) {
  const filters = {
    namespace: params.get("namespace") || "",
    job: params.get("job") || "",
    state: params.get("state") || "",
    after: params.get("after") || "",
    before: params.get("before") || "",
  };
  const offset = Number(params.get("offset") || 0);
  put(view, h("h1", null, filters.job ? "Runs of " + filters.job : "Runs"), h("p", { class: "sub" }, "Most recent first. Times are UTC. ", filters.job ? jobLinks(filters) : null));
  const nsSelect = select("namespace", [], filters.namespace, "all namespaces");
  const jobList = h("datalist", { id: "job-names" });
  const form = filterForm(
    "#/runs",
    [
      field("Namespace", nsSelect),
      field("Job", h("input", { name: "job", id: "f-job", value: filters.job, list: "job-names", placeholder: "job name" })),
      jobList,
      field("State", select("state", RUN_STATES, filters.state, "any state")),
      field("Started after", timeInput("after", filters.after)),
      field("Started before", timeInput("before", filters.before)),
    ],
    ["after", "before"],
  );
  put(view, form);
  const body = h("div", null, loading());
  put(view, body);

  namespaces()
    .then((names) => {
      for (const name of names) put(nsSelect, h("option", { value: name, selected: name === filters.namespace }, name));
    })
    .catch(() => {});
  get(["jobs"], { namespace: filters.namespace || undefined, limit: 1000 })
    .then((page) => {
      for (const job of page.items) put(jobList, h("option", { value: job.name }, job.namespace));
    })
    .catch(() => {});

  const page = await get(["runs"], {
    namespace: filters.namespace || undefined,
    job: filters.job || undefined,
    state: filters.state || undefined,
    started_after: filters.after || undefined,
    started_before: filters.before || undefined,
    limit: PAGE,
    offset,
  });
  put(clear(body), 
    table(
      [
        { label: "State", cell: (r) => stateBadge(r.state) },
        {
          label: "Job",
          cell: (r) =>
            h("a", { href: hrefRuns({ namespace: r.job_namespace, job: r.job_name }), class: "job-link" }, qualified(r.job_namespace, r.job_name)),
        },
        { label: "Started", cell: (r) => fmtTime(r.started_at), class: "nowrap" },
        { label: "Duration", cell: (r) => fmtDuration(r.duration_ms), class: "num" },
        {
          label: "Parent",
          cell: (r) =>
            r.parent_run_id
              ? h("a", { href: hrefRun(r.parent_run_id), title: r.parent_run_id }, r.parent_job_name || shortId(r.parent_run_id))
              : "—",
        },
        { label: "Run", cell: (r) => h("a", { href: hrefRun(r.run_id), class: "run-link mono", title: r.run_id }, shortId(r.run_id)) },
        { label: "", cell: (r) => h("a", { href: hrefLineage("run:" + r.run_id), class: "button small graph-link" }, "Graph") },
      ],
      page.items,
      {
        class: "runs-table",
        empty: "No runs match these filters.",
        rowAttrs: (r) => ({ "data-run-id": r.run_id, "data-job": r.job_name }),
      },
    ),
    pager("#/runs", params, page.total, offset),
  );
}

// On the runs of one job: its lineage graph, and the way back to every run.
function jobLinks(filters) {
  const links = [h("a", { href: "#/runs", id: "all-runs" }, "All runs")];
  if (filters.namespace) {
    links.unshift(h("a", { href: hrefLineage(nodeIdOf("job", filters.namespace, filters.job)), id: "job-lineage" }, "Lineage of this job"), " · ");
  }
  return h("span", { class: "job-links" }, links);
}

// --- Issues ---------------------------------------------------------------------------------

export async function renderIssues(view, _segments, params) {
  const status = params.has("status") ? params.get("status") : "open";
  const f = (k) => params.get(k) || "";
  const offset = Number(params.get("offset") || 0);
  put(view, h("h1", null, "Issues"), h("p", { class: "sub" }, "Failed checks, failed runs, unusual durations and schema changes, most recently opened first."));
  const nsSelect = select("namespace", [], f("namespace"), "all namespaces");
  put(view, 
    filterForm(
      "#/issues",
      [
        field("Status", select("status", [["open", "open"], ["resolved", "resolved"], ["all", "open and resolved"]], status || "all")),
        field("Kind", select("kind", ISSUE_KINDS, f("kind"), "any kind")),
        field("Namespace", nsSelect),
        field("Dataset", h("input", { name: "dataset_name", id: "f-dataset_name", value: f("dataset_name"), placeholder: "dataset name" })),
        field("Job", h("input", { name: "job_name", id: "f-job_name", value: f("job_name"), placeholder: "job name" })),
        field("Opened since", timeInput("since", f("since"))),
        field("Opened until", timeInput("until", f("until"))),
        // carried along so that links with a dataset/job namespace keep it
        f("dataset_namespace") ? h("input", { type: "hidden", name: "dataset_namespace", value: f("dataset_namespace") }) : null,
        f("job_namespace") ? h("input", { type: "hidden", name: "job_namespace", value: f("job_namespace") }) : null,
      ],
      ["since", "until"],
    ),
  );
  namespaces()
    .then((names) => names.forEach((n) => put(nsSelect, h("option", { value: n, selected: n === f("namespace") }, n))))
    .catch(() => {});
  const body = h("div", null, loading());
  put(view, body);
  const query = {
    kind: f("kind") || undefined,
    namespace: f("namespace") || undefined,
    dataset_namespace: f("dataset_namespace") || undefined,
    dataset_name: f("dataset_name") || undefined,
    job_namespace: f("job_namespace") || undefined,
    job_name: f("job_name") || undefined,
    since: f("since") || undefined,
    until: f("until") || undefined,
  };
  const page = await get(["issues"], { ...query, status: status === "all" ? undefined : status || undefined, limit: PAGE, offset });
  put(clear(body), issuesTable(page.items), pager("#/issues", params, page.total, offset));
  if (status === "open") {
    // resolved issues (a failed run followed by a good one) are hidden: say how many
    get(["issues"], { ...query, status: "resolved", limit: 1, offset: 0 })
      .then((resolved) => {
        if (!resolved.total) return;
        const all = new URLSearchParams(params);
        all.set("status", "all");
        all.delete("offset");
        const n = resolved.total;
        put(
          body,
          h(
            "p",
            { class: "sub resolved-note", id: "resolved-note" },
            `${fmtNumber(n)} resolved issue${n === 1 ? " is" : "s are"} not shown. `,
            h("a", { href: "#/issues?" + all, id: "show-resolved" }, "Show open and resolved"),
          ),
        );
      })
      .catch(() => {});
  }
}

// The columns a schema change removed, retyped and added, under its summary.
function schemaChanges(issue) {
  const d = issue.kind === "schema_changed" ? issue.details || {} : {};
  const items = [
    ...(d.removed || []).map((name) => h("li", { class: "chg removed" }, "− " + name)),
    ...(d.retyped || []).map((c) => h("li", { class: "chg retyped" }, `~ ${c.name}: ${c.from} → ${c.to}`)),
    ...(d.added || []).map((name) => h("li", { class: "chg added" }, "+ " + name)),
  ];
  return items.length ? h("ul", { class: "schema-changes" }, items) : null;
}

export function issuesTable(items, opts) {
  return table(
    [
      { label: "Status", cell: (i) => statusBadge(i.status) },
      { label: "Severity", cell: (i) => severityBadge(i.severity) },
      { label: "Kind", cell: (i) => h("span", { class: "kind" }, i.kind) },
      {
        label: "Summary",
        cell: (i) => h("span", null, h("span", { class: "summary", title: JSON.stringify(i.details || {}, null, 1) }, i.summary), schemaChanges(i)),
      },
      {
        label: "Dataset",
        cell: (i) =>
          i.dataset
            ? h(
                "span",
                null,
                h("a", { href: hrefDataset(i.dataset.namespace, i.dataset.name, i.kind === "assertion_failed" ? "quality" : "schema"), class: "dataset-link" }, i.dataset.name),
                i.column ? h("span", { class: "column" }, " · " + i.column) : null,
              )
            : "—",
      },
      {
        label: "Job",
        cell: (i) => (i.job ? h("a", { href: hrefRuns({ namespace: i.job.namespace, job: i.job.name }) }, i.job.name) : "—"),
      },
      { label: "Run", cell: (i) => (i.run_id ? h("a", { href: hrefRun(i.run_id), class: "run-link mono", title: i.run_id }, shortId(i.run_id)) : "—") },
      { label: "Opened", cell: (i) => fmtTime(i.opened_at), class: "nowrap" },
      {
        label: "Resolved",
        cell: (i) =>
          i.resolved_at
            ? h(
                "span",
                null,
                fmtTime(i.resolved_at),
                i.resolved_by_run ? h("span", { class: "nowrap" }, " by ", h("a", { href: hrefRun(i.resolved_by_run), class: "mono" }, shortId(i.resolved_by_run))) : i.resolved_how ? " " + i.resolved_how : null,
              )
            : "—",
      },
    ],
    items,
    {
      class: "issues-table",
      empty: (opts && opts.empty) || "No issues match these filters.",
      rowAttrs: (i) => ({ "data-issue-id": i.issue_id, "data-kind": i.kind, class: "issue-" + i.status }),
    },
  );
}

// --- Search ---------------------------------------------------------------------------------

export async function renderSearch(view, _segments, params) {
  const q = params.get("q") || "";
  const type = params.get("type") || "";
  put(view, h("h1", null, "Search"));
  const input = h("input", { type: "search", name: "q", id: "f-q", value: q, placeholder: "a dataset, job or run id", class: "wide" });
  put(view, filterForm("#/search", [field("Text", input), field("Type", select("type", ["dataset", "job", "run"], type, "all types"))]));
  document.getElementById("search-input").value = q;
  if (!q) {
    put(view, h("p", { class: "sub" }, "Datasets and jobs by name, runs by id: exact matches first, then prefixes, then substrings."));
    input.focus();
    return;
  }
  const body = h("div", null, loading());
  put(view, body);
  const page = await get(["search"], { q, type: type || undefined, limit: 100 });
  const link = (r) => {
    if (r.type === "dataset") return h("a", { href: hrefDataset(r.namespace, r.name), class: "result-link" }, r.name);
    if (r.type === "job") return h("a", { href: hrefLineage(nodeIdOf("job", r.namespace, r.name)), class: "result-link" }, r.name);
    return h("a", { href: hrefRun(r.run_id || r.name), class: "result-link mono" }, r.run_id || r.name);
  };
  put(clear(body), 
    h("p", { class: "sub" }, `${fmtNumber(page.total)} result${page.total === 1 ? "" : "s"} for “${q}”`),
    table(
      [
        { label: "Type", cell: (r) => h("span", { class: "badge type-" + r.type }, r.type) },
        { label: "Name", cell: link },
        { label: "Namespace", cell: (r) => h("span", { class: "ns" }, r.namespace) },
        { label: "Match", cell: (r) => r.match },
        { label: "Updated", cell: (r) => fmtTime(r.updated_at), class: "nowrap" },
        {
          label: "",
          cell: (r) =>
            r.type === "run"
              ? h("a", { href: hrefLineage("run:" + (r.run_id || r.name)), class: "button small" }, "Graph")
              : h("a", { href: hrefLineage(nodeIdOf(r.type, r.namespace, r.name)), class: "button small" }, "Graph"),
        },
      ],
      page.items,
      { class: "search-table", empty: "Nothing matches." },
    ),
  );
}

// --- Dataset --------------------------------------------------------------------------------

const DATASET_TABS = [
  { id: "schema", label: "Schema" },
  { id: "quality", label: "Quality" },
  { id: "jobs", label: "Jobs" },
  { id: "columns", label: "Column lineage" },
];

export async function renderDataset(view, segments, params) {
  const [namespace, name] = segments;
  if (!namespace || !name) {
    put(view, message("error", "A dataset page needs #/dataset/<namespace>/<name>."));
    return;
  }
  const tab = params.get("tab") || "schema";
  const dataset = await get(["datasets", namespace, name]);
  const nodeId = nodeIdOf("dataset", namespace, name);
  put(view, 
    h(
      "div",
      { class: "page-head" },
      h("div", null, h("div", { class: "kicker" }, "Dataset · " + namespace), h("h1", { class: "dataset-title" }, name)),
      h(
        "div",
        { class: "head-links" },
        h("a", { href: hrefLineage(nodeId), class: "button" }, "Lineage"),
        h("a", { href: hrefIssues({ dataset_namespace: namespace, dataset_name: name, status: "all" }), class: "button" }, "Issues"),
      ),
    ),
    dataset.description ? h("p", { class: "description" }, dataset.description) : null,
    dataset.aliases && dataset.aliases.length
      ? h("p", { class: "sub" }, "Also known as: ", dataset.aliases.map((a) => `${a.namespace}:${a.name}`).join(", "))
      : null,
    tabs(DATASET_TABS, tab, (id) => hrefDataset(namespace, name, id)),
  );
  const body = h("div", { class: "tab-body" }, loading());
  put(view, body);
  if (tab === "quality") await datasetQuality(body, namespace, name);
  else if (tab === "jobs") datasetJobs(body, dataset);
  else if (tab === "columns") await columnLineage(body, namespace, name);
  else await datasetSchema(body, namespace, name, dataset);
}

function fieldsTable(fields) {
  return table(
    [
      { label: "Field", cell: (f) => h("span", { class: "mono" }, f.name) },
      { label: "Type", cell: (f) => f.type || "—" },
      { label: "Description", cell: (f) => f.description || "" },
      { label: "Tags", cell: (f) => (f.tags || []).map((t) => h("span", { class: "tag" }, t)) },
    ],
    fields || [],
    { class: "fields-table", empty: "No schema reported." },
  );
}

async function datasetSchema(body, namespace, name, dataset) {
  const versions = await get(["datasets", namespace, name, "versions"], { limit: 50 });
  put(clear(body), 
    h("h2", null, "Current schema"),
    fieldsTable(dataset.fields),
    h("h2", null, `Versions (${versions.total})`),
    versions.items.length
      ? h(
          "ol",
          { class: "versions" },
          versions.items.map((v) => {
            const changes = v.changes || { added: [], removed: [], retyped: [] };
            const parts = [
              ...changes.added.map((f) => h("span", { class: "chg added" }, "+ " + f)),
              ...changes.removed.map((f) => h("span", { class: "chg removed" }, "− " + f)),
              ...changes.retyped.map((f) => h("span", { class: "chg retyped" }, `~ ${f.name}: ${f.from} → ${f.to}`)),
            ];
            return h(
              "li",
              { class: "version" + (v.current ? " current" : "") },
              h(
                "div",
                { class: "version-head" },
                h("span", { class: "mono" }, (v.dataset_version || v.version_id || "").slice(0, 12)),
                v.current ? h("span", { class: "badge current" }, "current") : null,
                h("span", null, " first seen " + fmtTime(v.created_at)),
                v.run_id ? h("span", null, " by run ", h("a", { href: hrefRun(v.run_id), class: "mono" }, shortId(v.run_id))) : null,
                v.job_name ? h("span", { class: "sub" }, " of " + v.job_name) : null,
                h("span", { class: "sub" }, ` · ${v.fields.length} fields · ${v.runs} run${v.runs === 1 ? "" : "s"}`),
              ),
              h("div", { class: "changes" }, parts.length ? parts : h("span", { class: "sub" }, "first version")),
              h("details", null, h("summary", null, "fields"), fieldsTable(v.fields)),
            );
          }),
        )
      : h("p", { class: "sub" }, "No versions."),
  );
}

function jobsList(jobs, empty) {
  return table(
    [
      { label: "Job", cell: (j) => h("a", { href: hrefLineage(nodeIdOf("job", j.namespace, j.name)) }, qualified(j.namespace, j.name)) },
      { label: "Last seen", cell: (j) => fmtTime(j.last_seen), class: "nowrap" },
      { label: "", cell: (j) => h("a", { href: hrefRuns({ namespace: j.namespace, job: j.name }), class: "button small" }, "Runs") },
    ],
    jobs || [],
    { empty },
  );
}

function datasetJobs(body, dataset) {
  put(clear(body), 
    h("h2", null, "Produced by"),
    jobsList(dataset.produced_by, "No job wrote this dataset."),
    h("h2", null, "Consumed by"),
    jobsList(dataset.consumed_by, "No job read this dataset."),
  );
}

async function datasetQuality(body, namespace, name) {
  const quality = await get(["datasets", namespace, name, "quality"], { runs: 20 });
  clear(body);
  const runs = [...quality.runs].reverse(); // oldest first for the charts
  const labels = runs.map((r) => (r.time ? fmtTime(r.time).slice(5, 16) : shortId(r.run_id)));
  put(body, 
    h(
      "div",
      { class: "quality-summary" },
      h("span", null, `${quality.runs.length} run${quality.runs.length === 1 ? "" : "s"} with checks or metrics`),
      h(
        "a",
        { href: hrefIssues({ dataset_namespace: namespace, dataset_name: name, status: "open" }), class: quality.open_issues ? "open-issues has" : "open-issues" },
        `${quality.open_issues} open issue${quality.open_issues === 1 ? "" : "s"}`,
      ),
    ),
  );
  if (!runs.length) {
    put(body, h("p", { class: "sub" }, "No run reported checks or metrics for this dataset."));
    return;
  }
  const charts = h("div", { class: "charts" });
  put(body, charts);
  const rowCounts = runs.map((r) => (r.metrics.dataset ? r.metrics.dataset.row_count : null));
  if (rowCounts.some((v) => typeof v === "number")) {
    put(charts, lineChart({ title: "Row count", labels, series: [{ name: "rows", values: rowCounts, cls: "s0" }], width: 640 }));
  }
  const columns = new Set();
  runs.forEach((r) => Object.keys(r.metrics.columns || {}).forEach((c) => columns.add(c)));
  for (const column of [...columns].sort()) {
    const nulls = runs.map((r) => (r.metrics.columns[column] ? r.metrics.columns[column].null_count : null));
    const distinct = runs.map((r) => (r.metrics.columns[column] ? r.metrics.columns[column].distinct_count : null));
    if (![...nulls, ...distinct].some((v) => typeof v === "number")) continue;
    put(charts, 
      lineChart({
        title: "Column " + column,
        labels,
        width: 420,
        height: 200,
        series: [
          { name: "nulls", values: nulls, cls: "s1" },
          { name: "distinct", values: distinct, cls: "s2" },
        ],
      }),
    );
  }
  if (runs.some((r) => r.assertions.length)) {
    put(charts, countsChart(labels, runs.map((r) => r.counts), { width: 640 }));
    put(body, h("h2", null, "Assertions by run"), assertionGrid(quality));
  }
  put(body, 
    h("h2", null, "Runs"),
    table(
      [
        { label: "Time", cell: (r) => fmtTime(r.time), class: "nowrap" },
        { label: "Run", cell: (r) => (r.run_id ? h("a", { href: hrefRun(r.run_id), class: "mono" }, shortId(r.run_id)) : "dataset event") },
        { label: "Job", cell: (r) => (r.job ? r.job.name : "—") },
        { label: "State", cell: (r) => stateBadge(r.state) },
        { label: "Passed", cell: (r) => r.counts.pass, class: "num" },
        { label: "Failed", cell: (r) => h("span", { class: r.counts.fail ? "fail-count" : "" }, r.counts.fail), class: "num" },
        { label: "Skipped", cell: (r) => r.counts.skipped, class: "num" },
        { label: "Rows", cell: (r) => fmtNumber(r.metrics.dataset ? r.metrics.dataset.row_count : null), class: "num" },
      ],
      quality.runs,
      { class: "quality-runs", rowAttrs: (r) => ({ "data-run-id": r.run_id || "" }) },
    ),
  );
}

function assertionGrid(quality) {
  const runs = quality.runs; // newest first
  const key = (a) => `${a.assertion}|${a.column || ""}|${a.check_name || ""}`;
  const byRun = runs.map((r) => new Map(r.assertions.map((a) => [key(a), a])));
  return h(
    "div",
    { class: "scroll-x" },
    h(
      "table",
      { class: "grid assertion-grid" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", null, "Check"),
          h("th", null, "Column"),
          h("th", { class: "num" }, "Passed"),
          h("th", { class: "num" }, "Failed"),
          runs.map((r) => h("th", { class: "run-col", title: r.run_id || "" }, r.time ? fmtTime(r.time).slice(5, 16) : "—")),
        ),
      ),
      h(
        "tbody",
        null,
        quality.assertions.map((s) =>
          h(
            "tr",
            { "data-assertion": s.assertion, "data-column": s.column || "" },
            h("td", null, s.assertion, s.check_name && s.check_name !== s.assertion ? h("div", { class: "sub mono" }, s.check_name) : null),
            h("td", { class: "mono" }, s.column || "—"),
            h("td", { class: "num" }, s.passed),
            h("td", { class: "num" + (s.failed ? " fail-count" : "") }, s.failed),
            byRun.map((m) => {
              const a = m.get(key(s));
              if (!a) return h("td", { class: "cell-none" }, "");
              const title = [a.status, a.expected ? "expected " + a.expected : "", a.actual ? "actual " + a.actual : ""].filter(Boolean).join(", ");
              return h("td", { class: "cell-" + a.status, title }, a.status);
            }),
          ),
        ),
      ),
    ),
  );
}

// Column lineage of a dataset: every field edge in both directions.
export async function columnLineage(body, namespace, name, compact) {
  const result = await get(["column-lineage"], { node_id: nodeIdOf("dataset", namespace, name), direction: "both", depth: 5 });
  clear(body);
  if (!result.edges.length) {
    put(body, h("p", { class: "sub" }, "No column lineage reported for this dataset (the columnLineage facet)."));
    return;
  }
  const label = (id) => {
    const node = result.nodes.find((n) => n.id === id);
    if (!node) return id;
    const here = node.namespace === namespace && node.name === name;
    return h("span", { class: here ? "col-here" : "" }, h("span", { class: "sub" }, node.name + "."), h("span", { class: "mono" }, node.field || "*"));
  };
  const note = result.truncated ? message("warn", "Truncated: more column edges exist than shown.") : null;
  if (compact) {
    // the side panel: one line per edge, input field -> output field
    const field = (id) => {
      const node = result.nodes.find((n) => n.id === id);
      return node ? `${node.name}.${node.field || "*"}` : id;
    };
    put(
      body,
      note,
      h(
        "ul",
        { class: "column-list" },
        result.edges.map((e) =>
          h(
            "li",
            { title: [e.transformation_type, e.transformation_subtype].filter(Boolean).join(" / ") },
            h("span", { class: "mono" }, field(e.source)),
            h("span", { class: "arrow" }, " → "),
            h("span", { class: "mono" }, field(e.target)),
          ),
        ),
      ),
    );
    return;
  }
  put(body, 
    note,
    table(
      [
        { label: "Input field", cell: (e) => label(e.source) },
        { label: "", cell: () => "→" },
        { label: "Output field", cell: (e) => label(e.target) },
        { label: "Transformation", cell: (e) => [e.transformation_type, e.transformation_subtype].filter(Boolean).join(" / ") || "—" },
      ],
      result.edges,
      { class: "column-table" },
    ),
  );
}

export { explain };
