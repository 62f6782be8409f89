// The munggoggo dashboard: a WebSocket feed keeps `peers` and `feed` up to
// date; changes re-render the graph, the table and the messages, at most
// every RENDER_GAP ms (a busy bus sends dozens of events a second: drawing
// each one would keep a slow machine's page forever behind the feed).
// Plain DOM and SVG, no library. Everything from the bus goes in through
// textContent, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const FEED_MAX = 300;
const MATCH_MAX = 200;
const RENDER_GAP = 150;

const app = {
  peers: new Map(), // name -> AgentView
  feed: [], // TraceView, oldest first
  selected: null, // agent name or null
  filter: "", // lower-case text a shown message must contain, or ""
  matches: [], // TraceView matching the filter, oldest first: kept while the feed moves on
  info: null,
  token: localStorage.getItem("munggoggo.token") || "",
  seen: 0,
  snapshotted: false, // the feed's first snapshot arrived
  flashes: new Set(), // "from->to" keys to flash on the next draw
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

function toast(text, isError) {
  const t = el("div", { class: "toast" + (isError ? " error" : ""), text });
  $("toasts").append(t);
  setTimeout(() => t.remove(), isError ? 6000 : 3000);
}

function stateClass(state) {
  return ["running", "standby", "init", "stopping", "shutdown", "crashed"].includes(state) ? state : "unknown";
}

function stateWord(state) {
  return state === "init" ? "stopped" : state === "shutdown" ? "finished" : state;
}

// munggoggo's own tools by what they are, not by their long identities.
function who(name) {
  if (name.startsWith("munggoggo-dashboard-")) return name === (app.info && app.info.identity) ? "this dashboard" : "a dashboard";
  if (name.startsWith("munggoggo-cli-")) return "the CLI";
  return name;
}

function shorten(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "\u2026" : text;
}

// ---------------------------------------------------------------- API

async function api(method, path, body) {
  const headers = {};
  if (method !== "GET") headers["Content-Type"] = "application/json";
  if (app.token) headers["Authorization"] = "Bearer " + app.token;
  const response = await fetch(path, {
    method,
    headers,
    body: method === "GET" ? undefined : JSON.stringify(body === undefined ? {} : body),
  });
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) {
    if (response.status === 401) askToken();
    const message = data && data.error ? data.error.message : response.status + " " + response.statusText;
    const error = new Error(message);
    error.data = data;
    throw error;
  }
  return data;
}

function askToken() {
  const token = prompt("This dashboard wants a bearer token for changes:", app.token);
  if (token !== null) {
    app.token = token.trim();
    localStorage.setItem("munggoggo.token", app.token);
  }
}

// ---------------------------------------------------------------- feed

function connect(delay) {
  const live = $("live");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/ws");
  ws.onopen = () => { live.dataset.state = "live"; live.lastChild.textContent = "live"; delay = 500; };
  ws.onmessage = (e) => {
    let event;
    try { event = JSON.parse(e.data); } catch (_) { return; }
    apply(event);
  };
  ws.onclose = () => {
    live.dataset.state = "down";
    live.lastChild.textContent = "reconnecting";
    setTimeout(() => connect(Math.min((delay || 500) * 2, 8000)), delay || 500);
  };
}

function apply(event) {
  switch (event.event) {
    case "snapshot":
      app.snapshotted = true;
      app.peers = new Map(event.peers.map((p) => [p.name, p]));
      app.feed = event.traces.slice(-FEED_MAX);
      app.seen = Math.max(app.seen, app.feed.length);
      keepMatches(app.feed);
      break;
    case "peer":
      app.peers.set(event.peer.name, event.peer);
      break;
    case "left":
      app.peers.delete(event.name);
      if (app.selected === event.name) app.selected = null;
      break;
    case "traces":
      for (const t of event.traces) app.flashes.add(t.from + "->" + t.to);
      app.feed.push(...event.traces);
      app.seen += event.traces.length;
      if (app.feed.length > FEED_MAX) app.feed.splice(0, app.feed.length - FEED_MAX);
      keepMatches(event.traces);
      break;
    default:
      return;
  }
  scheduleRender();
}

// ---------------------------------------------------------------- filter

// Whether a message shows under the filter: its parties, type, topic or body
// contain the filter's text.
function matches(t) {
  if (!app.filter) return true;
  return [t.from, t.to, t.type, t.routing_key, t.body].some((v) => v && String(v).toLowerCase().includes(app.filter));
}

// Keeps the messages that match the filter apart from the feed, so a match
// stays shown on a busy bus whose feed soon drops it (a snapshot after a
// lag repeats messages: each is kept once).
function keepMatches(traces) {
  if (!app.filter) return;
  const known = new Set(app.matches.map(key));
  for (const t of traces) {
    if (matches(t) && !known.has(key(t))) {
      app.matches.push(t);
      known.add(key(t));
    }
  }
  if (app.matches.length > MATCH_MAX) app.matches.splice(0, app.matches.length - MATCH_MAX);
}

function key(t) {
  return t.time + "|" + t.from + "|" + t.to + "|" + t.type + "|" + t.body;
}

function setFilter(text) {
  app.filter = text.trim().toLowerCase();
  app.matches = [];
  keepMatches(app.feed);
  render();
}

let renderTimer = null;
let lastRender = 0;

// One render for all the events that arrive within RENDER_GAP ms.
function scheduleRender() {
  if (renderTimer !== null) return;
  const wait = Math.max(0, lastRender + RENDER_GAP - performance.now());
  renderTimer = setTimeout(() => {
    renderTimer = null;
    render();
  }, wait);
}

// ---------------------------------------------------------------- render

function render() {
  lastRender = performance.now();
  const peers = [...app.peers.values()].sort((a, b) => a.name.localeCompare(b.name));
  renderStats(peers);
  renderGraph(peers);
  renderTable(peers);
  renderMessages();
  renderChoices(peers);
}

function renderStats(peers) {
  const behaviours = peers.flatMap((p) => p.behaviours);
  $("stat-agents").textContent = peers.length;
  $("stat-running").textContent = behaviours.filter((b) => b.state === "running").length + "/" + behaviours.length;
  $("stat-messages").textContent = app.seen;
  $("stat-errors").textContent = behaviours.reduce((n, b) => n + (b.errors || 0), 0);
}

// The graph: agents on the left, their behaviours beside them, topics on
// the right; arcs on the far left are messages between agents.
function renderGraph(peers) {
  const graph = $("graph");
  $("graph-empty").hidden = peers.length > 0;
  graph.replaceChildren();
  if (peers.length === 0) { graph.setAttribute("viewBox", "0 0 900 120"); return; }

  const ROW = 34, AGENT_X = 90, AGENT_W = 190, B_X = 360, B_W = 230, T_X = 700, T_W = 170, TOP = 24;
  const agentPos = new Map(), behaviourPos = new Map(), topics = new Map();
  let y = TOP;
  for (const p of peers) {
    // A state machine takes MACHINE_ROWS more rows: its states under it.
    const machineRows = p.behaviours.filter((b) => b.machine).length * MACHINE_ROWS;
    const rows = Math.max(p.behaviours.length + p.methods.length + machineRows, 1);
    const height = rows * ROW;
    agentPos.set(p.name, { y: y + height / 2 - 4 });
    p.methods.forEach((m, i) => {
      behaviourPos.set(p.name + "()" + m.name, { y: y + (p.behaviours.length + machineRows + i) * ROW + ROW / 2 - 4 });
    });
    let row = 0;
    p.behaviours.forEach((b) => {
      const by = y + row * ROW + ROW / 2 - 4;
      row += b.machine ? 1 + MACHINE_ROWS : 1;
      behaviourPos.set(b.name, { y: by });
      for (const key of b.topics || []) {
        if (!topics.has(key)) topics.set(key, []);
        topics.get(key).push(by);
      }
    });
    y += height + 22;
  }
  // Topics at the mean height of their subscribers, pushed apart.
  const topicList = [...topics.entries()].map(([key, ys]) => ({ key, y: ys.reduce((a, b) => a + b, 0) / ys.length }));
  topicList.sort((a, b) => a.y - b.y);
  for (let i = 1; i < topicList.length; i++) topicList[i].y = Math.max(topicList[i].y, topicList[i - 1].y + ROW);
  const height = Math.max(y, (topicList.length ? topicList[topicList.length - 1].y + ROW : 0)) + 6;
  graph.setAttribute("viewBox", `0 0 900 ${height}`);

  const defs = svg("defs", {},
    svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "8", markerHeight: "8", markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
      svg("path", { d: "M0 0 L10 5 L0 10 z", fill: "#6ea8fe" })),
    svg("marker", { id: "fsm-arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "6", markerHeight: "6", markerUnits: "userSpaceOnUse", orient: "auto" },
      svg("path", { d: "M0 0 L10 5 L0 10 z", fill: "#6b7a9c" })));
  graph.append(defs);
  const edges = svg("g", {}), nodes = svg("g", {});
  graph.append(edges, nodes);

  // Messages between agents: arcs left of the agents, thicker when busy.
  const pairs = new Map();
  for (const t of app.feed) {
    if (!agentPos.has(t.from) || !agentPos.has(t.to) || t.from === t.to) continue;
    const key = t.from + "->" + t.to;
    pairs.set(key, (pairs.get(key) || 0) + 1);
  }
  for (const [key, count] of pairs) {
    const [from, to] = key.split("->");
    const y1 = agentPos.get(from).y, y2 = agentPos.get(to).y;
    const bend = Math.min(80, 20 + Math.abs(y2 - y1) / 3);
    const x = AGENT_X - 2;
    const path = svg("path", {
      class: "edge msg" + (app.flashes.has(key) ? " flash" : ""),
      d: `M${x} ${y1 - 4} C ${x - bend} ${y1 - 4}, ${x - bend} ${y2 + 4}, ${x} ${y2 + 4}`,
      "stroke-width": Math.min(1.4 + Math.log2(count), 5).toFixed(1),
    });
    path.append(svg("title", { text: `${from} \u2192 ${to}: ${count} message${count === 1 ? "" : "s"}` }));
    edges.append(path);
  }
  app.flashes.clear();

  for (const p of peers) {
    const ay = agentPos.get(p.name).y;
    const selected = app.selected === p.name;
    const agent = svg("g", { class: "node agent" + (selected ? " selected" : ""), "data-agent": p.name, onclick: () => select(p.name) },
      svg("rect", { class: "box", x: AGENT_X, y: ay - 20, width: AGENT_W, height: 40, rx: 9 }),
      svg("rect", { class: "stripe " + stateClass(p.state) + "-stripe", x: AGENT_X, y: ay - 20, width: 5, height: 40, rx: 2 }),
      svg("text", { class: "title", x: AGENT_X + 16, y: ay - 3, text: shorten(p.name, 24) }),
      svg("text", { class: "subtitle", x: AGENT_X + 16, y: ay + 12, text: p.agent_type ? p.agent_type : "munggoggo 0.4" }),
      svg("title", { text: `${p.name} (${p.state})` }));
    nodes.append(agent);
    for (const b of p.behaviours) {
      const by = behaviourPos.get(b.name).y;
      edges.append(svg("path", { class: "edge", d: `M${AGENT_X + AGENT_W} ${ay} C ${AGENT_X + AGENT_W + 50} ${ay}, ${B_X - 50} ${by}, ${B_X} ${by}` }));
      const node = svg("g", { class: "node behaviour", "data-behaviour": b.name, onclick: () => select(p.name) },
        svg("rect", { x: B_X, y: by - 13, width: B_W, height: 26, rx: 13 }),
        svg("circle", { class: "state " + stateClass(b.state), cx: B_X + 14, cy: by, r: 5 }),
        svg("text", { x: B_X + 26, y: by + 4, text: shorten(b.method, 18) }),
        svg("text", { class: "kind", x: B_X + B_W - 10, y: by + 4, "text-anchor": "end", text: b.kind || "" }),
        svg("title", { text: `${b.name}: ${stateWord(b.state)}${b.detail ? " \u2014 " + b.detail : ""}` }));
      nodes.append(node);
      if (b.machine) drawMachine(edges, nodes, b, B_X, by + ROW);
      for (const key of b.topics || []) {
        const t = topicList.find((t) => t.key === key);
        edges.append(svg("path", { class: "edge topic", d: `M${T_X} ${t.y} C ${T_X - 50} ${t.y}, ${B_X + B_W + 50} ${by}, ${B_X + B_W} ${by}` }));
      }
    }
  }
  for (const p of peers) {
    const ay = agentPos.get(p.name).y;
    for (const m of p.methods) {
      const my = behaviourPos.get(p.name + "()" + m.name).y;
      edges.append(svg("path", { class: "edge", d: `M${AGENT_X + AGENT_W} ${ay} C ${AGENT_X + AGENT_W + 50} ${ay}, ${B_X - 50} ${my}, ${B_X} ${my}` }));
      nodes.append(svg("g", { class: "node method", "data-method": p.name + "." + m.name, onclick: () => select(p.name) },
        svg("rect", { x: B_X, y: my - 13, width: B_W, height: 26, rx: 6 }),
        svg("text", { class: "glyph", x: B_X + 10, y: my + 4, text: "\u0192" }),
        svg("text", { x: B_X + 26, y: my + 4, text: shorten(m.name + "(" + m.params.join(", ") + ")", 24) }),
        svg("text", { class: "kind", x: B_X + B_W - 10, y: my + 4, "text-anchor": "end", text: "rpc" }),
        svg("title", { text: `${p.name}.${m.name}(${m.params.join(", ")}): call it below` })));
    }
  }
  for (const t of topicList) {
    nodes.append(svg("g", { class: "node topicnode", "data-topic": t.key },
      svg("rect", { x: T_X, y: t.y - 13, width: T_W, height: 26, rx: 6 }),
      svg("text", { x: T_X + 12, y: t.y + 4, text: "# " + shorten(t.key, 18) }),
      svg("title", { text: "topic " + t.key })));
  }
}

// Rows of the graph a state machine's drawing takes under its behaviour.
const MACHINE_ROWS = 2;

// A state machine under its behaviour: its states left to right in their
// declared order, the current one highlighted (its time and transitions
// in its tooltip), final ones with a double border; each way a state may
// go is an arc below the states, a timeout's arc dashed.
function drawMachine(edges, nodes, b, x0, y) {
  const m = b.machine;
  const W = Math.min(118, (890 - x0) / m.states.length), H = 22, GAP = 10;
  const at = new Map(m.states.map((s, i) => [s.name, x0 + i * W + (W - GAP) / 2]));
  const arc = (from, to, timeout, i) => {
    const x1 = at.get(from), x2 = at.get(to);
    if (x1 === undefined || x2 === undefined) return;
    // Backward arcs (and timeouts) bend deeper, so that a pair of states
    // that go both ways shows two arcs.
    const bend = (x2 > x1 ? 7 : 15) + Math.abs(x2 - x1) / 10 + (timeout ? 8 : 0);
    // Forward arcs leave a little right of the middle, backward ones left.
    const shift = x2 > x1 ? 6 : -6;
    const path = svg("path", {
      class: "fsm-edge" + (timeout ? " timeout" : ""),
      d: `M${x1 + shift} ${y + H / 2} C ${x1 + shift} ${y + H / 2 + bend}, ${x2 - shift} ${y + H / 2 + bend}, ${x2 - shift} ${y + H / 2 + 1}`,
      "data-from": from, "data-to": to, "marker-end": "url(#fsm-arrow)",
    });
    path.append(svg("title", { text: `${from} \u2192 ${to}${timeout ? " after " + seconds(timeout) : ""}` }));
    edges.append(path);
  };
  for (const s of m.states) {
    for (const to of s.to) arc(s.name, to, null);
    if (s.timeout_to) arc(s.name, s.timeout_to, s.timeout_ms);
  }
  m.states.forEach((s, i) => {
    const x = x0 + i * W;
    const current = s.name === m.state;
    const since = new Date(m.entered_ms).toISOString().replace(".000Z", "Z");
    const title = current
      ? `${b.method}: in ${s.name} since ${since}, ${m.transitions} transition${m.transitions === 1 ? "" : "s"}`
      : `${b.method}: ${s.name}${s.name === m.initial ? " (initial)" : ""}${s.final ? " (final)" : ""}`;
    nodes.append(svg("g", { class: "fsm-state" + (current ? " current" : "") + (s.final ? " final" : ""), "data-machine": b.name, "data-state": s.name },
      svg("rect", { x, y: y - H / 2, width: W - GAP, height: H, rx: 6 }),
      s.final ? svg("rect", { class: "inner", x: x + 3, y: y - H / 2 + 3, width: W - GAP - 6, height: H - 6, rx: 4 }) : null,
      svg("text", { x: x + (W - GAP) / 2, y: y + 4, "text-anchor": "middle", text: shorten(s.name, Math.floor((W - GAP) / 7)) }),
      svg("title", { text: title })));
  });
}

// `30s`, `1.5s`: a timeout in milliseconds, as a person reads it.
function seconds(ms) {
  return ms % 1000 === 0 ? ms / 1000 + "s" : (ms / 1000).toFixed(1) + "s";
}

// Rows drawn last time, by key. A row keeps its node and a cell is
// replaced only when it changed, so that a click on a button is not lost
// to a redraw between the press and the release (the run counts of a busy
// agent change several times a second).
const rowCache = new Map();

function cachedRow(key, content, make) {
  const signature = JSON.stringify(content);
  const cached = rowCache.get(key);
  if (cached && cached.signature === signature) return cached.node;
  const fresh = make();
  const node = cached && cached.node.cells.length === fresh.cells.length ? patchRow(cached.node, fresh) : fresh;
  rowCache.set(key, { signature, node });
  return node;
}

function patchRow(row, fresh) {
  row.className = fresh.className;
  // A copy: a cell moved into `row` leaves `fresh.cells`.
  const cells = [...fresh.cells];
  cells.forEach((cell, i) => {
    if (row.cells[i].outerHTML !== cell.outerHTML) row.replaceChild(cell, row.cells[i]);
  });
  return row;
}

function renderTable(peers) {
  const body = $("agents").tBodies[0];
  const rows = [];
  const keys = new Set();
  for (const p of peers) {
    keys.add("a:" + p.name);
    rows.push(cachedRow("a:" + p.name, [app.selected === p.name, p.name, p.agent_type, p.flavour, p.state, p.methods, p.behaviours, p.rate, p.p50_ms, p.p99_ms, p.group && groupCount(p.group)], () => agentRow(p)));
    for (const b of p.behaviours) {
      keys.add("b:" + p.name + ":" + b.name);
      rows.push(cachedRow("b:" + p.name + ":" + b.name, b, () => behaviourRow(p, b)));
    }
  }
  for (const key of [...rowCache.keys()]) if (!keys.has(key)) rowCache.delete(key);
  const same = rows.length === body.children.length && rows.every((row, i) => body.children[i] === row);
  if (!same) body.replaceChildren(...rows);
}

// An agent's row has the columns of its behaviours' rows: its name, type
// and methods span Behaviour and Kind; its own Last error cell stays empty
// (each behaviour's last error is on the behaviour's row).
function agentRow(p) {
    const chip = p.flavour === "0.4" ? el("span", { class: "chip legacy", text: "0.4" }) : null;
    const replica = p.group ? el("span", { class: "chip replica", title: "a replica of the replicated agent " + p.group, text: "replica of " + p.group + groupCount(p.group) }) : null;
    const methods = p.methods.length ? el("span", { class: "agent-methods kind", text: "rpc: " + p.methods.map((m) => m.name).join(", ") }) : null;
    return el("tr", { class: "agent-row" + (app.selected === p.name ? " selected" : ""), "data-agent": p.name, onclick: () => select(p.name) },
      el("td", { colspan: "2" },
        el("span", { class: "agent-name", text: p.name }),
        el("span", { class: "agent-type", text: p.agent_type || "munggoggo 0.4" }), chip, replica, methods),
      el("td", {}, el("span", { class: "badge " + stateClass(p.state), text: stateWord(p.state) })),
      el("td", { class: "num", text: sum(p.behaviours, "runs") }),
      el("td", { class: "num rate", text: figure(p.rate) }),
      el("td", { class: "num latency", text: latency(p) }),
      el("td", { class: "num", text: sum(p.behaviours, "errors") }),
      el("td", { class: "last-error" }),
      el("td", { class: "num" }, el("button", {
        class: "shutdown", "data-action": "shutdown", text: "Shut down", title: "Shut down " + p.name,
        onclick: (e) => { e.stopPropagation(); shutdown(p.name, e.currentTarget); },
      })));
}

// ` (1 of 3)`: how many replicas of the group are running, of those listed.
function groupCount(group) {
  const replicas = [...app.peers.values()].filter((q) => q.group === group);
  const running = replicas.filter((q) => q.state === "running").length;
  return " (" + running + " of " + replicas.length + " running)";
}

function behaviourRow(p, b) {
      const running = b.state === "running";
      const finished = b.state === "shutdown";
      const button = el("button", {
        class: "toggle " + (running ? "stop" : "start"),
        "data-action": running ? "stop" : "start",
        text: running ? "Stop" : "Start",
        title: (running ? "Stop " : "Start ") + b.name,
        onclick: (e) => { e.stopPropagation(); toggle(p.name, b, running ? "stop" : "start", e.currentTarget); },
      });
      if (finished) button.textContent = "Restart";
      const errors = b.errors == null ? "\u2013" : String(b.errors);
      return el("tr", { class: "behaviour-row", "data-behaviour": b.name, "data-agent-of": p.name },
        el("td", { text: b.method }),
        el("td", { class: "kind", text: b.detail || b.kind || "" }),
        el("td", { class: "state" }, el("span", { class: "badge " + stateClass(b.state), "data-state": b.state, text: stateWord(b.state) }),
          b.machine ? el("span", { class: "fsm-current", "data-fsm-state": b.machine.state, title: b.machine.transitions + " transitions", text: " " + b.machine.state }) : null),
        el("td", { class: "num", text: b.runs == null ? "\u2013" : String(b.runs) }),
        el("td", { class: "num rate", text: figure(b.rate) }),
        el("td", { class: "num latency", text: latency(b) }),
        el("td", { class: "num" + (b.errors ? " errors-some" : ""), text: errors }),
        el("td", { class: "last-error", text: b.last_error || "", title: b.last_error || "" }),
        el("td", { class: "num" }, button));
}

// A live figure (per second or milliseconds), or a dash when unknown.
function figure(x) {
  if (x == null) return "\u2013";
  return x >= 100 ? String(Math.round(x)) : String(Number(x.toPrecision(3)));
}

// `0.0123 / 0.0456`: the p50 and p99 run time of an agent or a behaviour.
function latency(v) {
  if (v.p50_ms == null) return "\u2013";
  return figure(v.p50_ms) + " / " + figure(v.p99_ms);
}

function sum(behaviours, field) {
  if (behaviours.some((b) => b[field] == null)) return "\u2013";
  return String(behaviours.reduce((n, b) => n + b[field], 0));
}

function renderMessages() {
  const list = $("messages");
  const source = app.filter ? app.matches : app.feed;
  const shown = app.selected ? source.filter((t) => t.to === app.selected || t.from === app.selected) : source;
  $("messages-of").textContent = app.selected ? "of " + app.selected : "";
  $("messages-all").hidden = !app.selected;
  $("messages-empty").hidden = shown.length > 0;
  $("messages-empty").textContent = app.filter ? "No message contains “" + app.filter + "” yet." : "No messages yet.";
  const items = shown.slice(-80).reverse().map((t) => {
    const when = new Date(t.time * 1000).toLocaleTimeString([], { hour12: false });
    const to = t.routing_key && t.routing_key !== t.to && t.routing_key !== "admin" ? "#" + t.routing_key + " \u2192 " + t.to : t.to;
    return el("li", { class: t.category === "rejected" || t.reason ? "rejected" : "", "data-from": t.from, "data-to": t.to, "data-type": t.type },
      el("span", { class: "time", text: when }),
      el("span", { class: "route" }, el("b", { text: who(t.from || "?") }), " \u2192 " + who(to)),
      el("span", { class: "type", text: t.type || "?" }),
      el("span", { class: "body", text: says(t), title: t.body }),
      t.reason ? el("span", { class: "reason", text: t.reason }) : null);
  });
  list.replaceChildren(...items);
}

// What a message says, in short: its body; for an RPC request what it
// asks (`multiply [3,4]`), for a reply what it answers (`multiply -> 12`),
// not the request that a reply repeats.
function says(t) {
  const r = t.rpc;
  if (!r) return t.body;
  const what = r.method || r.request;
  if (!r.reply) return what + " " + JSON.stringify(r.data);
  if (r.error != null) return what + " \u2192 error: " + r.error;
  return what + " \u2192 " + JSON.stringify(r.data);
}

// Keeps the choices of the forms in step with the agents.
function renderChoices(peers) {
  fill($("message-to"), [["", "every agent (broadcast)"], ...peers.map((p) => [p.name, p.name])]);
  const callable = peers.filter((p) => p.methods.length);
  fill($("call-agent"), callable.map((p) => [p.name, p.name]));
  renderMethods();
  const topics = [...new Set(peers.flatMap((p) => p.behaviours.flatMap((b) => b.topics || [])))];
  $("topics").replaceChildren(...topics.map((t) => el("option", { value: t.replace(/[#*]/g, "x") })));
}

function renderMethods() {
  const agent = app.peers.get($("call-agent").value);
  const methods = agent ? agent.methods : [];
  const select = $("call-method");
  const before = select.value;
  fill(select, methods.map((m) => [m.name, m.name + "(" + m.params.join(", ") + ")"]));
  if (select.value !== before) fillParams();
}

function fillParams() {
  const agent = app.peers.get($("call-agent").value);
  const method = agent && agent.methods.find((m) => m.name === $("call-method").value);
  if (method) $("call-params").value = JSON.stringify(Object.fromEntries(method.params.map((p) => [p, 0])));
}

function fill(select, options) {
  const value = select.value;
  const same = select.options.length === options.length && options.every(([v, t], i) => select.options[i].value === v && select.options[i].text === t);
  if (same) return;
  select.replaceChildren(...options.map(([v, t]) => el("option", { value: v, text: t })));
  if (options.some(([v]) => v === value)) select.value = value;
}

// ---------------------------------------------------------------- actions

function select(name) {
  app.selected = app.selected === name ? null : name;
  if (app.peers.has(name)) $("message-to").value = name;
  render();
}

async function toggle(agent, behaviour, command, button) {
  button.disabled = true;
  try {
    const r = await api("POST", `/api/agents/${encodeURIComponent(agent)}/behaviours/${encodeURIComponent(behaviour.method)}/${command}`);
    toast(r.result);
  } catch (e) {
    toast(e.message, true);
    button.disabled = false;
  }
}

async function shutdown(agent, button) {
  if (!confirm(`Shut down ${agent}? It stops gracefully and leaves the bus.`)) return;
  button.disabled = true;
  try {
    const r = await api("POST", `/api/agents/${encodeURIComponent(agent)}/shutdown`);
    toast(r.result);
  } catch (e) {
    toast(e.message, true);
    button.disabled = false;
  }
}

function parseJson(text, what) {
  try { return JSON.parse(text); } catch (e) { throw new Error(what + " is not JSON: " + e.message); }
}

function showResult(value, isError) {
  const result = $("result");
  result.hidden = false;
  result.className = "result" + (isError ? " error" : "");
  result.dataset.status = isError ? "error" : "ok";
  result.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

async function submit(e, action) {
  e.preventDefault();
  const button = e.target.querySelector("button[type=submit]");
  button.disabled = true;
  delete $("result").dataset.status;
  try {
    showResult(await action(), false);
  } catch (err) {
    showResult(err.message, true);
  } finally {
    button.disabled = false;
  }
}

function wire() {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
      for (const p of document.querySelectorAll(".pane")) p.hidden = p.dataset.pane !== tab.dataset.tab;
    });
  }
  $("form-message").addEventListener("submit", (e) => submit(e, () => {
    const body = parseJson($("message-body").value, "The body");
    const payload = { type: $("message-type").value.trim(), body };
    const to = $("message-to").value;
    return to ? api("POST", `/api/agents/${encodeURIComponent(to)}/messages`, payload) : api("POST", "/api/broadcast", payload);
  }));
  $("form-publish").addEventListener("submit", (e) => submit(e, () => {
    const body = parseJson($("publish-body").value, "The body");
    const type = $("publish-type").value.trim();
    return api("POST", "/api/publish", { topic: $("publish-topic").value.trim(), type: type || undefined, body });
  }));
  $("form-call").addEventListener("submit", (e) => submit(e, async () => {
    const params = parseJson($("call-params").value, "The parameters");
    const agent = $("call-agent").value;
    const r = await api("POST", `/api/agents/${encodeURIComponent(agent)}/call`, { method: $("call-method").value, params });
    return r.result;
  }));
  $("call-agent").addEventListener("change", () => { renderMethods(); fillParams(); });
  $("call-method").addEventListener("change", fillParams);
  $("messages-all").addEventListener("click", () => { app.selected = null; render(); });
  $("messages-filter").addEventListener("input", (e) => setFilter(e.target.value));
  $("token-button").addEventListener("click", askToken);
}

async function start() {
  wire();
  connect(500);
  // The agents over HTTP too: on a busy machine the feed's first snapshot
  // can come seconds later (or after a reconnect), and the page should not
  // show no agents while the API lists them. The snapshot, once there, wins.
  const peers = api("GET", "/api/peers").then((r) => {
    if (!app.snapshotted) {
      app.peers = new Map(r.peers.map((p) => [p.name, p]));
      scheduleRender();
    }
  }).catch(() => {});
  try {
    app.info = await api("GET", "/api/info");
    $("bus").textContent = app.info.bus;
    $("token-button").hidden = !app.info.auth_required;
  } catch (e) {
    toast("Cannot reach the dashboard: " + e.message, true);
  }
  render();
  await peers;
}

start();
