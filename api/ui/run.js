// The Run page: Info (facts, inputs and outputs, standard and custom facets, SQL),
// Duration (the job's recent durations with mean and band), Compare (two runs).
import { get } from "./api.js";
import { lineChart } from "./charts.js";
import {
  clear,
  diffLines,
  fmtDuration,
  fmtNumber,
  fmtTime,
  h,
  highlight,
  hrefDataset,
  hrefIssues,
  hrefLineage,
  hrefRun,
  hrefRuns,
  jsonView,
  loading,
  message,
  put,
  qualified,
  shortId,
  stateBadge,
  table,
  tabs,
} from "./util.js";

const RUN_TABS = [
  { id: "info", label: "Info" },
  { id: "duration", label: "Duration" },
  { id: "compare", label: "Compare" },
];
const SECRET_FACETS = ["sql", "sourceCode"];

export async function renderRun(view, segments, params) {
  const runId = segments[0];
  if (!runId) {
    put(view, message("error", "A run page needs #/run/<run id>."));
    return;
  }
  const tab = params.get("tab") || "info";
  const run = await get(["runs", runId]);
  put(view, 
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        null,
        h("div", { class: "kicker" }, "Run · " + run.job_namespace),
        h("h1", { class: "run-title" }, run.job_name, " ", stateBadge(run.state)),
        h("div", { class: "mono sub", id: "run-id" }, run.run_id),
      ),
      h(
        "div",
        { class: "head-links" },
        h("a", { href: hrefLineage("run:" + run.run_id), class: "button", id: "run-graph-link" }, "Graph as of this run"),
        h("a", { href: hrefRuns({ namespace: run.job_namespace, job: run.job_name }), class: "button" }, "Runs of this job"),
        h("a", { href: hrefIssues({ job_namespace: run.job_namespace, job_name: run.job_name, status: "all" }), class: "button" }, "Issues"),
      ),
    ),
    tabs(RUN_TABS, tab, (id) => {
      const p = new URLSearchParams(params);
      p.set("tab", id);
      return `#/run/${encodeURIComponent(runId)}?${p}`;
    }),
  );
  const body = h("div", { class: "tab-body" }, loading());
  put(view, body);
  if (tab === "duration") await durationTab(body, run);
  else if (tab === "compare") await compareTab(body, run, params.get("other") || "");
  else await infoTab(body, run);
}

// --- Info -----------------------------------------------------------------------------------

function facts(run) {
  const rows = [
    ["State", stateBadge(run.state)],
    ["Started", fmtTime(run.started_at)],
    ["Ended", fmtTime(run.ended_at)],
    ["Duration", fmtDuration(run.duration_ms)],
    run.nominal_start_time ? ["Nominal start", fmtTime(run.nominal_start_time)] : null,
    run.nominal_end_time ? ["Nominal end", fmtTime(run.nominal_end_time)] : null,
    run.parent_run_id
      ? ["Parent", h("a", { href: hrefRun(run.parent_run_id) }, `${run.parent_job_name || ""} ${shortId(run.parent_run_id)}`)]
      : ["Parent", "—"],
    run.root_run_id && run.root_run_id !== run.parent_run_id
      ? ["Root", h("a", { href: hrefRun(run.root_run_id) }, `${run.root_job_name || ""} ${shortId(run.root_run_id)}`)]
      : null,
    run.error_message ? ["Error", h("pre", { class: "error-text" }, run.error_message)] : null,
    run.processing_engine ? ["Engine", `${run.processing_engine} ${run.processing_engine_version || ""}`] : null,
    run.integration ? ["Integration", run.integration] : null,
    run.job_type ? ["Job type", run.job_type] : null,
    run.processing_type ? ["Processing", run.processing_type] : null,
    ["Events", (run.event_types || []).join(", ")],
  ].filter(Boolean);
  return h("dl", { class: "facts wide" }, rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

function datasetsTable(items, empty) {
  return table(
    [
      { label: "Dataset", cell: (d) => h("a", { href: hrefDataset(d.namespace, d.name), class: "dataset-link" }, qualified(d.namespace, d.name)) },
      { label: "Rows", cell: (d) => fmtNumber(d.row_count), class: "num" },
      { label: "Bytes", cell: (d) => fmtNumber(d.byte_count), class: "num" },
      { label: "Version", cell: (d) => h("span", { class: "mono sub" }, (d.version_id || "").slice(0, 12) || "—") },
    ],
    items || [],
    { empty },
  );
}

// {entity label -> facets} for standard or custom facets of every entity of the run.
function facetGroups(facets, which) {
  const groups = [];
  const add = (label, split, omit) => {
    if (!split) return;
    const found = { ...(split[which] || {}) };
    for (const name of omit || []) delete found[name];
    if (Object.keys(found).length) groups.push([label, found, split.summarised || []]);
  };
  add("run", facets.run);
  add("job", facets.job, SECRET_FACETS);
  for (const d of facets.inputs || []) {
    add(`input ${d.name}`, d.facets);
    add(`input ${d.name} (inputFacets)`, d.inputFacets);
  }
  for (const d of facets.outputs || []) {
    add(`output ${d.name}`, d.facets);
    add(`output ${d.name} (outputFacets)`, d.outputFacets);
  }
  return groups;
}

function facetSection(title, id, groups, empty) {
  return h(
    "section",
    { class: "facet-section", id },
    h("h2", null, title),
    groups.length
      ? groups.map(([label, found, summarised]) =>
          h(
            "div",
            { class: "facet-group", "data-entity": label },
            h("h3", null, label),
            Object.entries(found).map(([name, value]) =>
              h("div", { class: "facet", "data-facet": name }, jsonView(value, name, false), summarised.includes(name) ? h("span", { class: "sub" }, " (summarised: over the size limit)") : null),
            ),
          ),
        )
      : h("p", { class: "sub" }, empty),
  );
}

export function sqlBlock(jobFacets) {
  const standard = (jobFacets && jobFacets.standard) || {};
  const custom = (jobFacets && jobFacets.custom) || {};
  const all = { ...custom, ...standard };
  const present = SECRET_FACETS.filter((name) => all[name]);
  const box = h("section", { class: "sql-section", id: "sql-section" }, h("h2", null, "SQL and source code"));
  if (!present.length) {
    put(box, h("p", { class: "sub", id: "sql-none" }, "This run's job reported no SQL or source code."));
    return box;
  }
  if (present.some((name) => all[name] && all[name]._redacted)) {
    put(box, 
      h(
        "div",
        { class: "message info", id: "sql-hidden" },
        "SQL hidden: set LINEAGEHOUSE_API__EXPOSE_SQL=true on the API to show a job's SQL and source code (to keys that may read its namespace).",
      ),
    );
    return box;
  }
  if (all.sql && typeof all.sql.query === "string") {
    put(box, h("h3", null, "SQL" + (all.sql.dialect ? ` (${all.sql.dialect})` : "")), h("div", { id: "sql-code" }, highlight(all.sql.query, "sql")));
  }
  if (all.sourceCode && typeof all.sourceCode.sourceCode === "string") {
    const language = all.sourceCode.language || "";
    put(box, h("h3", null, "Source code" + (language ? ` (${language})` : "")), h("div", { id: "source-code" }, highlight(all.sourceCode.sourceCode, language || "text")));
  }
  return box;
}

async function infoTab(body, run) {
  const facets = await get(["runs", run.run_id, "facets"]).catch((err) => {
    if (err.status === 404) return { run: null, job: null, inputs: [], outputs: [] };
    throw err;
  });
  put(clear(body), 
    h(
      "div",
      { class: "two-col" },
      h("section", null, h("h2", null, "Run"), facts(run)),
      h(
        "section",
        null,
        h("h2", null, "Inputs"),
        datasetsTable(run.inputs, "No inputs."),
        h("h2", null, "Outputs"),
        datasetsTable(run.outputs, "No outputs."),
      ),
    ),
    sqlBlock(facets.job),
    h(
      "div",
      { class: "two-col facets" },
      facetSection("Standard facets", "standard-facets", facetGroups(facets, "standard"), "No standard facets."),
      facetSection("Custom facets", "custom-facets", facetGroups(facets, "custom"), "No custom facets (facets without an OpenLineage spec schema)."),
    ),
  );
}

// --- Duration -------------------------------------------------------------------------------

async function durationTab(body, run) {
  const data = await get(["jobs", run.job_namespace, run.job_name, "durations"], { runs: 30 });
  clear(body);
  const runs = data.runs;
  if (!runs.length) {
    put(body, h("p", { class: "sub" }, "No finished runs of this job yet."));
    return;
  }
  const labels = runs.map((r) => (r.started_at ? fmtTime(r.started_at).slice(5, 16) : shortId(r.run_id)));
  const values = runs.map((r) => (typeof r.duration_ms === "number" ? r.duration_ms : null));
  put(body, 
    h(
      "div",
      { class: "duration-summary", id: "duration-summary" },
      h("span", null, "Mean ", h("strong", null, fmtDuration(data.mean_ms))),
      h("span", null, "Std dev ", h("strong", null, fmtDuration(data.stddev_ms))),
      data.band ? h("span", null, "Usual band ", h("strong", null, `${fmtDuration(Math.max(0, data.band.low_ms))} – ${fmtDuration(data.band.high_ms)}`)) : null,
      h("span", null, `${data.complete_runs} completed run${data.complete_runs === 1 ? "" : "s"}`),
    ),
    lineChart({
      title: `Durations of ${run.job_name} (last ${runs.length} finished runs)`,
      labels,
      width: 1000,
      height: 280,
      series: [{ name: "duration", values, cls: "s0" }],
      band: data.band ? { low: Math.max(0, data.band.low_ms), high: data.band.high_ms } : undefined,
      mean: typeof data.mean_ms === "number" ? data.mean_ms : undefined,
      yFormat: (v) => fmtDuration(v),
      pointClass: (_si, i) => [runs[i].outlier ? "outlier" : "", runs[i].run_id === run.run_id ? "current" : "", "st-" + String(runs[i].state).toLowerCase()].join(" "),
      pointTitle: (_si, i) => `${shortId(runs[i].run_id)} · ${runs[i].state} · ${fmtDuration(runs[i].duration_ms)}${runs[i].outlier ? " · outlier" : ""}`,
      onPoint: (_si, i) => (location.hash = hrefRun(runs[i].run_id, "duration")),
    }),
    h("p", { class: "sub" }, "The band is mean ± max(3 standard deviations, 10% of the mean) over the completed runs: a run outside it raises a duration_outlier issue."),
    table(
      [
        { label: "Run", cell: (r) => h("a", { href: hrefRun(r.run_id), class: "mono" }, shortId(r.run_id)) },
        { label: "State", cell: (r) => stateBadge(r.state) },
        { label: "Started", cell: (r) => fmtTime(r.started_at), class: "nowrap" },
        { label: "Duration", cell: (r) => fmtDuration(r.duration_ms), class: "num" },
        { label: "", cell: (r) => (r.outlier ? h("span", { class: "badge outlier" }, "outlier") : "") },
      ],
      [...runs].reverse(),
      { class: "durations-table", rowAttrs: (r) => ({ "data-run-id": r.run_id, class: r.run_id === run.run_id ? "current-row" : "" }) },
    ),
  );
}

// --- Compare --------------------------------------------------------------------------------

async function compareTab(body, run, otherId) {
  const recent = await get(["runs"], { namespace: run.job_namespace, job: run.job_name, limit: 50 });
  const others = recent.items.filter((r) => r.run_id !== run.run_id);
  if (!others.length) {
    put(clear(body), h("p", { class: "sub" }, "This job has no other run to compare with."));
    return;
  }
  if (!otherId) {
    // default: the run that started just before this one, else the newest other
    const older = others.filter((r) => (r.started_at || "") < (run.started_at || ""));
    otherId = (older[0] || others[0]).run_id;
  }
  const picker = h(
    "select",
    { id: "compare-other" },
    others.map((r) => h("option", { value: r.run_id, selected: r.run_id === otherId }, `${shortId(r.run_id)} · ${fmtTime(r.started_at)} · ${r.state}`)),
  );
  picker.addEventListener("change", () => {
    location.hash = `#/run/${encodeURIComponent(run.run_id)}?tab=compare&other=${encodeURIComponent(picker.value)}`;
  });
  const [other, facetsA, facetsB] = await Promise.all([
    get(["runs", otherId]),
    get(["runs", run.run_id, "facets"]).catch(() => ({})),
    get(["runs", otherId, "facets"]).catch(() => ({})),
  ]);
  put(clear(body), h("label", { class: "field inline" }, h("span", null, "Compare with "), picker));
  const dsNames = (list) => (list || []).map((d) => `${d.namespace}:${d.name}`);
  const listDiff = (mine, theirs) => {
    const a = new Set(mine);
    const b = new Set(theirs);
    return [
      h("ul", { class: "plain" }, mine.map((x) => h("li", { class: b.has(x) ? "" : "chg added" }, x))),
      h("ul", { class: "plain" }, theirs.map((x) => h("li", { class: a.has(x) ? "" : "chg removed" }, x))),
    ];
  };
  const [inA, inB] = listDiff(dsNames(run.inputs), dsNames(other.inputs));
  const [outA, outB] = listDiff(dsNames(run.outputs), dsNames(other.outputs));
  const row = (label, a, b, differs) => h("tr", { class: differs ? "differs" : "" }, h("th", null, label), h("td", null, a), h("td", null, b));
  put(body, 
    h(
      "table",
      { class: "grid compare-table", id: "compare-table" },
      h(
        "thead",
        null,
        h("tr", null, h("th", null, ""), h("th", null, "This run ", h("span", { class: "mono" }, shortId(run.run_id))), h("th", null, "Other run ", h("a", { href: hrefRun(other.run_id), class: "mono" }, shortId(other.run_id)))),
      ),
      h(
        "tbody",
        null,
        row("State", stateBadge(run.state), stateBadge(other.state), run.state !== other.state),
        row("Started", fmtTime(run.started_at), fmtTime(other.started_at), false),
        row("Duration", fmtDuration(run.duration_ms), fmtDuration(other.duration_ms), run.duration_ms !== other.duration_ms),
        row("Inputs", inA, inB, dsNames(run.inputs).join() !== dsNames(other.inputs).join()),
        row("Outputs", outA, outB, dsNames(run.outputs).join() !== dsNames(other.outputs).join()),
        row("Error", run.error_message || "—", other.error_message || "—", run.error_message !== other.error_message),
      ),
    ),
    h("h2", null, "Schema differences"),
    schemaDiff(facetsA, facetsB),
    h("h2", null, "SQL differences"),
    sqlDiff(facetsA.job, facetsB.job),
  );
}

function schemasOf(facets) {
  const found = new Map();
  for (const kind of ["inputs", "outputs"]) {
    for (const d of facets[kind] || []) {
      const schema = d.facets && ((d.facets.standard || {}).schema || (d.facets.custom || {}).schema);
      if (schema && Array.isArray(schema.fields)) {
        found.set(`${kind.slice(0, -1)} ${d.namespace}:${d.name}`, new Map(schema.fields.map((f) => [f.name, f.type || ""])));
      }
    }
  }
  return found;
}

function schemaDiff(a, b) {
  const mine = schemasOf(a);
  const theirs = schemasOf(b);
  const keys = [...new Set([...mine.keys(), ...theirs.keys()])].sort();
  const rows = [];
  for (const key of keys) {
    const x = mine.get(key);
    const y = theirs.get(key);
    if (!x || !y) {
      rows.push({ key, what: x ? "only in this run" : "only in the other run", cls: x ? "added" : "removed" });
      continue;
    }
    for (const [name, type] of x) {
      if (!y.has(name)) rows.push({ key, what: `+ ${name} ${type}`, cls: "added" });
      else if (y.get(name) !== type) rows.push({ key, what: `~ ${name}: ${y.get(name)} → ${type}`, cls: "retyped" });
    }
    for (const [name, type] of y) if (!x.has(name)) rows.push({ key, what: `− ${name} ${type}`, cls: "removed" });
  }
  if (!keys.length) return h("p", { class: "sub" }, "Neither run reported a schema.");
  if (!rows.length) return h("p", { class: "sub", id: "schema-same" }, "Same schemas in both runs.");
  return table(
    [
      { label: "Dataset", cell: (r) => r.key },
      { label: "Change (this run against the other)", cell: (r) => h("span", { class: "chg " + r.cls }, r.what) },
    ],
    rows,
    { class: "schema-diff" },
  );
}

function sqlText(jobFacets) {
  const all = { ...((jobFacets || {}).custom || {}), ...((jobFacets || {}).standard || {}) };
  if (all.sql && all.sql._redacted) return { hidden: true };
  if (all.sql && typeof all.sql.query === "string") return { text: all.sql.query };
  if (all.sourceCode && all.sourceCode._redacted) return { hidden: true };
  if (all.sourceCode && typeof all.sourceCode.sourceCode === "string") return { text: all.sourceCode.sourceCode };
  return {};
}

function sqlDiff(a, b) {
  const x = sqlText(a);
  const y = sqlText(b);
  if (x.hidden || y.hidden) {
    return h("div", { class: "message info sql-hidden" }, "SQL hidden: set LINEAGEHOUSE_API__EXPOSE_SQL=true on the API to compare SQL.");
  }
  if (x.text === undefined && y.text === undefined) return h("p", { class: "sub" }, "Neither run reported SQL or source code.");
  if (x.text === y.text) return h("p", { class: "sub" }, "Same SQL in both runs.");
  return h(
    "pre",
    { class: "code diff", id: "sql-diff" },
    diffLines(y.text || "", x.text || "").map((d) => h("div", { class: d.op === "+" ? "diff-add" : d.op === "-" ? "diff-del" : "diff-same" }, d.op + " " + d.line)),
  );
}
