// Small helpers shared by every page: DOM building, formatting, state badges.

const SVG_NS = "http://www.w3.org/2000/svg";

// h("div", {class: "x", onclick: fn}, child, "text", [more children])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

// The same for SVG elements.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

function applyAttrs(el, attrs) {
  if (!attrs) return;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" && "value" in el) {
      el.value = value;
    } else if (key === "checked" || key === "selected" || key === "disabled") {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// --- formatting -------------------------------------------------------------------------

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, " UTC");
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  const neg = ms < 0;
  let rest = Math.abs(ms);
  if (rest < 1000) return (neg ? "-" : "") + Math.round(rest) + " ms";
  rest = rest / 1000;
  if (rest < 60) return (neg ? "-" : "") + rest.toFixed(rest < 10 ? 2 : 1) + " s";
  const hours = Math.floor(rest / 3600);
  const minutes = Math.floor((rest % 3600) / 60);
  const seconds = Math.round(rest % 60);
  const parts = [];
  if (hours) parts.push(hours + " h");
  if (minutes || hours) parts.push(minutes + " min");
  parts.push(seconds + " s");
  return (neg ? "-" : "") + parts.join(" ");
}

export function fmtNumber(n) {
  if (n === null || n === undefined) return "—";
  if (typeof n !== "number") return String(n);
  return n.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

export function shortId(id) {
  // first and last characters: UUIDv7 run ids (dbt-ol) share their leading time bits
  if (!id) return "—";
  const text = String(id);
  return text.length > 12 ? text.slice(0, 4) + "…" + text.slice(-4) : text;
}

// A datetime-local input's value (taken as UTC) -> ISO-8601 with Z, or "".
export function localInputToIso(value) {
  if (!value) return "";
  const withSeconds = value.length === 16 ? value + ":00" : value;
  return withSeconds + "Z";
}

// ISO-8601 -> the value of a datetime-local input (in UTC).
export function isoToLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toISOString().slice(0, 19);
}

const STATES = ["COMPLETE", "FAIL", "RUNNING", "START", "ABORT", "OTHER"];

export function stateClass(state) {
  const upper = String(state || "").toUpperCase();
  return STATES.includes(upper) ? "state-" + upper.toLowerCase() : "state-unknown";
}

export function stateBadge(state) {
  return h("span", { class: "badge " + stateClass(state) }, state || "no run");
}

export function severityBadge(severity) {
  return h("span", { class: "badge sev-" + (severity || "none") }, severity || "—");
}

export function statusBadge(status) {
  return h("span", { class: "badge status-" + status }, status);
}

// --- links ------------------------------------------------------------------------------

const enc = encodeURIComponent;

export function hrefDataset(namespace, name, tab) {
  return `#/dataset/${enc(namespace)}/${enc(name)}` + (tab ? `?tab=${enc(tab)}` : "");
}

export function hrefRun(runId, tab) {
  return `#/run/${enc(runId)}` + (tab ? `?tab=${enc(tab)}` : "");
}

export function hrefLineage(nodeId, extra) {
  const params = new URLSearchParams({ node: nodeId, ...(extra || {}) });
  return `#/lineage?${params}`;
}

export function hrefRuns(filters) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filters || {})) if (v) params.set(k, v);
  const text = params.toString();
  return "#/runs" + (text ? "?" + text : "");
}

export function hrefIssues(filters) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filters || {})) if (v) params.set(k, v);
  const text = params.toString();
  return "#/issues" + (text ? "?" + text : "");
}

export function nodeIdOf(kind, namespace, name) {
  return `${kind}:${namespace}:${name}`;
}

// A "namespace / name" label with the namespace dimmed.
export function qualified(namespace, name) {
  return h("span", { class: "qualified" }, h("span", { class: "ns" }, namespace), " ", h("span", { class: "nm" }, name));
}

// Tabs: [{id, label}], the active id, and a function building the href of a tab.
export function tabs(items, active, hrefOf) {
  return h(
    "nav",
    { class: "tabs" },
    items.map((t) =>
      h("a", { href: hrefOf(t.id), class: t.id === active ? "tab active" : "tab", "data-tab": t.id }, t.label),
    ),
  );
}

export function message(kind, text) {
  return h("div", { class: "message " + kind }, text);
}

export function loading() {
  return h("div", { class: "loading" }, "Loading…");
}

// A table from column specs [{label, cell: row => node|string, class}] and rows.
export function table(columns, rows, opts) {
  const options = opts || {};
  return h(
    "table",
    { class: "grid " + (options.class || "") },
    h("thead", null, h("tr", null, columns.map((c) => h("th", { class: c.class }, c.label)))),
    h(
      "tbody",
      null,
      rows.length
        ? rows.map((row) =>
            h(
              "tr",
              options.rowAttrs ? options.rowAttrs(row) : null,
              columns.map((c) => h("td", { class: c.class }, c.cell(row))),
            ),
          )
        : h("tr", null, h("td", { colspan: columns.length, class: "empty" }, options.empty || "Nothing found.")),
    ),
  );
}

// A collapsible JSON viewer (details/summary per object and array).
export function jsonView(value, label, open) {
  if (value === null || typeof value !== "object") {
    return h("div", { class: "json-leaf" }, label !== undefined ? h("span", { class: "json-key" }, label + ": ") : null, jsonScalar(value));
  }
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const summary = h(
    "summary",
    null,
    label !== undefined ? h("span", { class: "json-key" }, label) : null,
    h("span", { class: "json-meta" }, isArray ? ` [${entries.length}]` : ` {${entries.length}}`),
  );
  const details = h("details", { class: "json-node", open: open ? true : null }, summary);
  const body = h("div", { class: "json-children" });
  for (const [k, v] of entries) body.append(jsonView(v, k, false));
  details.append(body);
  return details;
}

function jsonScalar(value) {
  if (value === null) return h("span", { class: "json-null" }, "null");
  if (typeof value === "string") return h("span", { class: "json-string" }, JSON.stringify(value));
  if (typeof value === "number") return h("span", { class: "json-number" }, String(value));
  if (typeof value === "boolean") return h("span", { class: "json-bool" }, String(value));
  return h("span", null, String(value));
}

// Simple syntax highlighting of SQL or Python/other code: keywords, strings, comments,
// numbers. Builds DOM nodes (never HTML strings) so the code cannot inject markup.
const SQL_KEYWORDS = new Set(
  ("select from where and or not in is null as join left right inner outer full cross on group by order " +
    "having limit offset union all distinct insert into values update set delete create table view with " +
    "case when then else end asc desc between like exists cast over partition merge using replace drop alter " +
    "def return import for while if elif try except class lambda yield true false none").split(" "),
);

export function highlight(code, language) {
  const pre = h("pre", { class: "code lang-" + (language || "sql") });
  const pattern = /(--[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/)|('(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|([\s\S])/g;
  let match;
  let plain = "";
  const flush = () => {
    if (plain) {
      pre.append(document.createTextNode(plain));
      plain = "";
    }
  };
  const isSql = !language || /sql/i.test(language);
  while ((match = pattern.exec(code)) !== null) {
    const [text, comment, str, num, word] = match;
    if (comment !== undefined) {
      if (comment.startsWith("#") && isSql) {
        plain += comment;
        continue;
      }
      if (comment.startsWith("--") && !isSql) {
        plain += comment;
        continue;
      }
      flush();
      pre.append(h("span", { class: "tok-comment" }, comment));
    } else if (str !== undefined) {
      flush();
      pre.append(h("span", { class: "tok-string" }, str));
    } else if (num !== undefined) {
      flush();
      pre.append(h("span", { class: "tok-number" }, num));
    } else if (word !== undefined && SQL_KEYWORDS.has(word.toLowerCase())) {
      flush();
      pre.append(h("span", { class: "tok-keyword" }, word));
    } else {
      plain += text;
    }
  }
  flush();
  return pre;
}

// Line diff (longest common subsequence) of two texts: [{op: " "|"-"|"+", line}].
export function diffLines(a, b) {
  const x = (a || "").split("\n");
  const y = (b || "").split("\n");
  if (x.length * y.length > 4_000_000) {
    return [...x.map((line) => ({ op: "-", line })), ...y.map((line) => ({ op: "+", line }))];
  }
  const n = x.length;
  const m = y.length;
  const dp = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      dp[i][j] = x[i] === y[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push({ op: " ", line: x[i] });
      i++;
      j++;
    } else if (dp[i + 1][j] >= dp[i][j + 1]) {
      out.push({ op: "-", line: x[i++] });
    } else {
      out.push({ op: "+", line: y[j++] });
    }
  }
  while (i < n) out.push({ op: "-", line: x[i++] });
  while (j < m) out.push({ op: "+", line: y[j++] });
  return out;
}

// el.append(...) that skips null, undefined and false (the DOM's own would print "null").
export function put(el, ...children) {
  return append(el, children);
}
