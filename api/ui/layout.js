// A left-to-right layered layout of a directed graph (pure: no DOM).
//   layout(nodes: [{id}], edges: [{source, target}], opts) ->
//     {positions: Map(id -> {x, y, rank, order}), width, height, backEdges: Set("s->t")}
// Steps: break cycles (depth-first back edges), rank by longest path from the sources,
// pull sources next to their first successor, order each layer by barycentres (a few
// sweeps down and up), then place layers in columns and nodes in rows.

export function layout(nodes, edges, opts) {
  const o = { nodeWidth: 210, nodeHeight: 46, colGap: 90, rowGap: 22, sweeps: 6, ...(opts || {}) };
  const ids = nodes.map((n) => n.id);
  const index = new Map(ids.map((id, i) => [id, i]));
  const out = ids.map(() => []);
  const inc = ids.map(() => []);
  const seenEdge = new Set();
  for (const e of edges) {
    const a = index.get(e.source);
    const b = index.get(e.target);
    if (a === undefined || b === undefined || a === b) continue;
    const key = a + ">" + b;
    if (seenEdge.has(key)) continue;
    seenEdge.add(key);
    out[a].push(b);
    inc[b].push(a);
  }

  // 1. back edges by an iterative depth-first search, the start node first
  const back = new Set();
  const stateOf = new Uint8Array(ids.length); // 0 new, 1 on stack, 2 done
  const roots = [];
  if (o.start !== undefined && index.has(o.start)) roots.push(index.get(o.start));
  for (let i = 0; i < ids.length; i++) if (inc[i].length === 0) roots.push(i);
  for (let i = 0; i < ids.length; i++) roots.push(i);
  for (const root of roots) {
    if (stateOf[root]) continue;
    const stack = [[root, 0]];
    stateOf[root] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [v, k] = top;
      if (k < out[v].length) {
        top[1]++;
        const w = out[v][k];
        if (stateOf[w] === 1) back.add(v + ">" + w);
        else if (stateOf[w] === 0) {
          stateOf[w] = 1;
          stack.push([w, 0]);
        }
      } else {
        stateOf[v] = 2;
        stack.pop();
      }
    }
  }
  const fwdOut = out.map((list, a) => list.filter((b) => !back.has(a + ">" + b)));
  const fwdIn = ids.map(() => []);
  fwdOut.forEach((list, a) => list.forEach((b) => fwdIn[b].push(a)));

  // 2. longest-path ranks in topological order
  const rank = new Int32Array(ids.length);
  const indeg = fwdIn.map((l) => l.length);
  const queue = [];
  for (let i = 0; i < ids.length; i++) if (indeg[i] === 0) queue.push(i);
  const topo = [];
  while (queue.length) {
    const v = queue.shift();
    topo.push(v);
    for (const w of fwdOut[v]) {
      rank[w] = Math.max(rank[w], rank[v] + 1);
      if (--indeg[w] === 0) queue.push(w);
    }
  }
  // sources sit just left of their nearest successor (shorter edges)
  for (let t = topo.length - 1; t >= 0; t--) {
    const v = topo[t];
    if (fwdIn[v].length === 0 && fwdOut[v].length) {
      rank[v] = Math.min(...fwdOut[v].map((w) => rank[w])) - 1;
    }
  }
  let minRank = Infinity;
  for (let i = 0; i < ids.length; i++) minRank = Math.min(minRank, rank[i]);
  if (!Number.isFinite(minRank)) minRank = 0;
  const layers = [];
  for (let i = 0; i < ids.length; i++) {
    rank[i] -= minRank;
    (layers[rank[i]] = layers[rank[i]] || []).push(i);
  }
  for (let r = 0; r < layers.length; r++) layers[r] = layers[r] || [];

  // 3. order within layers: barycentre sweeps
  const pos = new Float64Array(ids.length);
  layers.forEach((layer) => {
    layer.sort((a, b) => (ids[a] < ids[b] ? -1 : 1));
    layer.forEach((v, i) => (pos[v] = i));
  });
  const bary = (v, neighbours) => {
    if (!neighbours.length) return pos[v];
    let sum = 0;
    for (const w of neighbours) sum += pos[w];
    return sum / neighbours.length;
  };
  for (let sweep = 0; sweep < o.sweeps; sweep++) {
    const down = sweep % 2 === 0;
    const order = down ? layers.map((_, i) => i) : layers.map((_, i) => layers.length - 1 - i);
    for (const r of order) {
      const layer = layers[r];
      const keys = new Map(layer.map((v) => [v, bary(v, down ? fwdIn[v] : fwdOut[v])]));
      layer.sort((a, b) => keys.get(a) - keys.get(b) || pos[a] - pos[b]);
      layer.forEach((v, i) => (pos[v] = i));
    }
  }

  // 4. coordinates: columns by rank, rows centred on the tallest layer
  const rowH = o.nodeHeight + o.rowGap;
  const colW = o.nodeWidth + o.colGap;
  const tallest = Math.max(1, ...layers.map((l) => l.length));
  const positions = new Map();
  layers.forEach((layer, r) => {
    const offset = ((tallest - layer.length) * rowH) / 2;
    layer.forEach((v, i) => {
      positions.set(ids[v], { x: r * colW, y: offset + i * rowH, rank: r, order: i });
    });
  });
  const backEdges = new Set([...back].map((k) => {
    const [a, b] = k.split(">").map(Number);
    return ids[a] + "->" + ids[b];
  }));
  return {
    positions,
    width: Math.max(1, layers.length) * colW - o.colGap,
    height: tallest * rowH - o.rowGap,
    backEdges,
    nodeWidth: o.nodeWidth,
    nodeHeight: o.nodeHeight,
  };
}

// The nodes still shown when some are collapsed: everything reachable from the start
// (edges in either direction) without going through a collapsed node. For each
// collapsed node, how many of its neighbours that hides.
export function visibleSubgraph(nodes, edges, start, collapsed) {
  const adj = new Map(nodes.map((n) => [n.id, []]));
  for (const e of edges) {
    if (!adj.has(e.source) || !adj.has(e.target)) continue;
    adj.get(e.source).push(e.target);
    adj.get(e.target).push(e.source);
  }
  const visible = new Set();
  const origin = adj.has(start) ? start : nodes.length ? nodes[0].id : null;
  if (origin === null) return { nodes: [], edges: [], hiddenBy: new Map() };
  const queue = [origin];
  visible.add(origin);
  // nodes not connected to the start at all stay visible (below)
  while (queue.length) {
    const v = queue.shift();
    if (collapsed.has(v)) continue;
    for (const w of adj.get(v)) {
      if (!visible.has(w)) {
        visible.add(w);
        queue.push(w);
      }
    }
  }
  const component = reachableFrom(adj, origin);
  for (const n of nodes) if (!component.has(n.id)) visible.add(n.id);
  const hiddenBy = new Map();
  for (const c of collapsed) {
    if (!visible.has(c)) continue;
    const hidden = (adj.get(c) || []).filter((w) => !visible.has(w)).length;
    hiddenBy.set(c, hidden);
  }
  return {
    nodes: nodes.filter((n) => visible.has(n.id)),
    edges: edges.filter((e) => visible.has(e.source) && visible.has(e.target)),
    hiddenBy,
  };
}

function reachableFrom(adj, from) {
  const seen = new Set([from]);
  const queue = [from];
  while (queue.length) {
    const v = queue.shift();
    for (const w of adj.get(v) || []) {
      if (!seen.has(w)) {
        seen.add(w);
        queue.push(w);
      }
    }
  }
  return seen;
}
