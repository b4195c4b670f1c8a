// Small SVG charts drawn by hand: a line/point chart with an optional band and mean line.
import { fmtNumber, h, s } from "./util.js";

// opts: {
//   labels: [x label per point],           series: [{name, values: [number|null], cls}],
//   width, height, title, yFormat(v),     band: {low, high}, mean: number,
//   pointClass(seriesIndex, pointIndex) -> extra class, pointTitle(si, pi) -> text,
//   onPoint(si, pi) }
export function lineChart(opts) {
  const width = opts.width || 640;
  const height = opts.height || 220;
  const pad = { left: 64, right: 16, top: opts.title ? 28 : 12, bottom: 40 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const n = opts.labels.length;
  const values = [];
  for (const serie of opts.series) for (const v of serie.values) if (typeof v === "number") values.push(v);
  if (opts.band) values.push(opts.band.low, opts.band.high);
  if (typeof opts.mean === "number") values.push(opts.mean);
  let lo = values.length ? Math.min(...values, 0) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  if (hi === lo) hi = lo + 1;
  const span = hi - lo;
  hi += span * 0.08;
  if (lo < 0) lo -= span * 0.08;
  const x = (i) => pad.left + (n <= 1 ? plotW / 2 : (i * plotW) / (n - 1));
  const y = (v) => pad.top + plotH - ((v - lo) / (hi - lo)) * plotH;
  const fmt = opts.yFormat || ((v) => fmtNumber(hi - lo > 10 ? Math.round(v) : v));

  const svg = s("svg", {
    class: "chart " + (opts.class || ""),
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": opts.title || "chart",
  });
  if (opts.title) svg.append(s("text", { x: pad.left, y: 16, class: "chart-title" }, opts.title));

  // grid and y ticks
  const ticks = 4;
  for (let t = 0; t <= ticks; t++) {
    const v = lo + ((hi - lo) * t) / ticks;
    const yy = y(v);
    svg.append(s("line", { x1: pad.left, x2: width - pad.right, y1: yy, y2: yy, class: "grid-line" }));
    svg.append(s("text", { x: pad.left - 6, y: yy + 4, class: "tick", "text-anchor": "end" }, fmt(v)));
  }
  if (opts.band && n) {
    const top = y(opts.band.high);
    const bottom = y(Math.max(opts.band.low, lo));
    svg.append(
      s("rect", {
        x: pad.left,
        y: top,
        width: plotW,
        height: Math.max(0, bottom - top),
        class: "band",
      }),
    );
  }
  if (typeof opts.mean === "number") {
    const yy = y(opts.mean);
    svg.append(s("line", { x1: pad.left, x2: width - pad.right, y1: yy, y2: yy, class: "mean-line" }));
    svg.append(s("text", { x: width - pad.right, y: yy - 4, class: "tick", "text-anchor": "end" }, "mean " + fmt(opts.mean)));
  }
  // x labels (thinned to fit)
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotW / 70))));
  opts.labels.forEach((label, i) => {
    if (i % every !== 0 && i !== n - 1) return;
    svg.append(s("text", { x: x(i), y: height - pad.bottom + 16, class: "tick", "text-anchor": "middle" }, label));
  });
  // series
  opts.series.forEach((serie, si) => {
    let d = "";
    serie.values.forEach((v, i) => {
      if (typeof v !== "number") return;
      d += (d ? " L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
    });
    if (d) svg.append(s("path", { d, class: "series " + (serie.cls || "s" + si) }));
    serie.values.forEach((v, i) => {
      if (typeof v !== "number") return;
      const extra = opts.pointClass ? opts.pointClass(si, i) || "" : "";
      const point = s(
        "circle",
        { cx: x(i), cy: y(v), r: extra.includes("outlier") ? 6 : 3.5, class: `point ${serie.cls || "s" + si} ${extra}` },
        s("title", null, opts.pointTitle ? opts.pointTitle(si, i) : `${serie.name}: ${fmt(v)} (${opts.labels[i]})`),
      );
      if (opts.onPoint) {
        point.addEventListener("click", () => opts.onPoint(si, i));
        point.classList.add("clickable");
      }
      svg.append(point);
    });
  });
  // legend
  if (opts.series.length > 1 || opts.legend) {
    let lx = pad.left;
    for (const [si, serie] of opts.series.entries()) {
      svg.append(s("rect", { x: lx, y: height - 14, width: 10, height: 10, class: "legend " + (serie.cls || "s" + si) }));
      svg.append(s("text", { x: lx + 14, y: height - 5, class: "tick" }, serie.name));
      lx += 24 + serie.name.length * 7;
    }
  }
  return h("div", { class: "chart-box" }, svg);
}

// Stacked bars of pass/fail/skipped counts per run.
export function countsChart(labels, counts, opts) {
  const width = (opts && opts.width) || 640;
  const height = (opts && opts.height) || 180;
  const pad = { left: 40, right: 16, top: 24, bottom: 40 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const n = labels.length;
  const max = Math.max(1, ...counts.map((c) => c.pass + c.fail + c.skipped));
  const slot = n ? plotW / n : plotW;
  const barW = Math.min(36, slot * 0.7);
  const svg = s("svg", {
    class: "chart counts-chart",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": "assertions per run",
  });
  svg.append(s("text", { x: pad.left, y: 16, class: "chart-title" }, "Assertions per run (pass / fail / skipped)"));
  svg.append(s("line", { x1: pad.left, x2: width - pad.right, y1: pad.top + plotH, y2: pad.top + plotH, class: "grid-line" }));
  svg.append(s("text", { x: pad.left - 6, y: pad.top + 8, class: "tick", "text-anchor": "end" }, String(max)));
  counts.forEach((c, i) => {
    let base = pad.top + plotH;
    const cx = pad.left + slot * i + (slot - barW) / 2;
    for (const kind of ["pass", "fail", "skipped"]) {
      const hgt = (c[kind] / max) * plotH;
      if (hgt <= 0) continue;
      base -= hgt;
      svg.append(
        s("rect", { x: cx, y: base, width: barW, height: hgt, class: "bar bar-" + kind }, s("title", null, `${labels[i]}: ${c[kind]} ${kind}`)),
      );
    }
    svg.append(s("text", { x: cx + barW / 2, y: height - pad.bottom + 16, class: "tick", "text-anchor": "middle" }, labels[i]));
  });
  return h("div", { class: "chart-box" }, svg);
}
