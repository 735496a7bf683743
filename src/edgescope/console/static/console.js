// edgescope console: draws the picture the console server streams (/api/events).
// Events: "picture" (everything, first), "overview" (sites and links), "call" (one call).
"use strict";

const MAX_ROWS = 300;
const state = { picture: null, drawn: "", calls: [], selected: null, graph: null };
const $ = (selector) => document.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function badge(text, cls, attrs = {}) {
  return el("span", { class: `badge ${cls}`, text, ...attrs });
}

// -- graph (cytoscape) ---------------------------------------------------------------------

const EDGE_COLOURS = { up: "#2e7d32", down: "#c62828", cut: "#c62828", degraded: "#ef6c00",
                       idle: "#9e9e9e", unknown: "#bdbdbd" };

function makeGraph() {
  return cytoscape({
    container: $("#graph"),
    userZoomingEnabled: false,
    style: [
      { selector: "node", style: {
          "label": "data(label)", "text-wrap": "wrap", "text-valign": "center", "font-size": 12,
          "width": 86, "height": 86, "background-color": "#e8f5e9", "border-width": 3,
          "border-color": "data(border)", "color": "#212121" } },
      { selector: "node.seen-from", style: { "border-style": "double", "border-width": 6 } },
      { selector: "edge", style: {
          "label": "data(label)", "font-size": 11, "text-background-color": "#fff",
          "text-background-opacity": 1, "width": 4, "line-color": "data(colour)",
          "line-style": "data(line)", "curve-style": "bezier" } },
    ],
  });
}

function drawGraph(picture) {
  if (!state.graph) state.graph = makeGraph();
  const cy = state.graph;
  let added = false;
  for (const site of picture.sites) {
    const id = `site-${site.name}`;
    const label = site.pending ? `${site.name}\n${site.pending} queued` : site.name;
    const border = !site.watched ? "#bdbdbd" : site.reachable ? "#2e7d32" : "#c62828";
    let node = cy.getElementById(id);
    if (node.empty()) { node = cy.add({ group: "nodes", data: { id } }); added = true; }
    node.data({ label, border });
    node.toggleClass("seen-from", site.name === picture.seen_from);
  }
  const present = new Set();
  for (const link of picture.links) {
    const id = `link-${link.id}`;
    present.add(id);
    let edge = cy.getElementById(id);
    if (edge.empty()) {
      edge = cy.add({ group: "edges",
                      data: { id, source: `site-${link.a}`, target: `site-${link.b}` } });
    }
    const rtt = link.rtt_ms != null ? `${link.rtt_ms.toFixed(1)} ms` : "";
    const label = link.state === "cut" ? "cut" : link.state === "down" ? `down ${rtt}` : rtt;
    edge.data({ label, colour: EDGE_COLOURS[link.state] || "#bdbdbd",
                line: ["cut", "idle", "unknown"].includes(link.state) ? "dashed" : "solid" });
  }
  cy.edges().filter((edge) => !present.has(edge.id())).remove();
  if (added) cy.layout({ name: "circle", padding: 30 }).run();
}

// -- tables --------------------------------------------------------------------------------

function drawLinks(picture) {
  const body = $("#links tbody");
  body.replaceChildren(...picture.links.map((link) => {
    const breakers = Object.entries(link.breakers).map(([way, value]) =>
      badge(`${way} ${value ?? "?"}`, `breaker-${value ?? "unknown"}`, { "data-breaker": way }));
    const rtt = link.rtt_ms != null ? `${link.rtt_ms.toFixed(1)} ms` : "–";
    const wan = link.wan_rtt_ms != null ? ` (WAN ${link.wan_rtt_ms} ms)` : "";
    return el("tr", { "data-link": link.id, "data-state": link.state },
      el("td", { text: `${link.a} – ${link.b}` }),
      el("td", {}, badge(link.state, `state-${link.state}`, { class: `badge state state-${link.state}` })),
      el("td", { class: "rtt", text: rtt + wan }),
      el("td", { class: "breakers" }, ...breakers));
  }));
}

function drawSites(picture) {
  const box = $("#sites");
  box.replaceChildren(...picture.sites.map((site) => {
    const reach = !site.watched ? "not watched by this console"
      : site.reachable ? "reachable" : `unreachable: ${site.error}`;
    const card = el("div", { class: `site ${site.reachable ? "reachable" : "unreachable"}`,
                             "data-site": site.name, "data-reachable": String(site.reachable) },
      el("h3", { text: site.name + (site.name === picture.seen_from ? " (console here)" : "") }),
      el("div", { class: "reach", text: reach }));
    if (site.peers.length) {
      card.append(el("div", {}, "breakers: ", ...site.peers.map((peer) =>
        badge(`${peer.name} ${peer.breaker}${peer.rtt_ms != null ? ` ${peer.rtt_ms.toFixed(1)} ms` : ""}`,
              `breaker-${peer.breaker}`, { "data-peer": peer.name, "data-state": peer.breaker,
                                            title: peer.last_error || "" }))));
    }
    const replicas = site.replicas;
    if (replicas) {
      const sets = Object.entries(replicas.sets).map(([svc, n]) => `${n} ${svc}`).join(", ") || "none";
      const queued = Object.entries(replicas.pending).map(([to, n]) => `${n} for ${to}`).join(", ");
      card.append(el("div", { class: "sets", text: `replica sets: ${sets}` }),
        el("div", { class: "pending", "data-count": String(site.pending),
                    text: `queued writes: ${site.pending}${queued ? ` (${queued})` : ""}` }));
      if (replicas.queue.length) {
        card.append(el("ul", { class: "queue" }, ...replicas.queue.map((op) =>
          el("li", { text: `${op.method} ${op.path} → ${op.target} (tries ${op.attempts}` +
                           `${op.last_error ? `: ${op.last_error}` : ""})` }))));
      }
    }
    if (site.dropped) card.append(el("div", { text: `events dropped for this console: ${site.dropped}` }));
    return card;
  }));
}

function routeBadges(call) {
  return call.route.map((branch) => {
    const outcome = branch.status ?? "unreachable";
    const ok = branch.status != null && branch.status < 400;
    const ms = branch.ms != null ? ` · ${branch.ms} ms` : "";
    return badge(`${branch.site} ${outcome}${ms}`, ok ? "ok" : "failed",
                 { "data-route-site": branch.site, "data-route-status": String(outcome) });
  });
}

function callRow(call) {
  const time = new Date(call.at * 1000).toLocaleTimeString();
  const who = call.from_peer ? `peer ${call.from_peer}` : `${call.client} ${call.agent}`;
  const failed = call.status >= 400;
  const row = el("tr", { "data-id": call.id, "data-site": call.reported_by,
                         "data-service": call.service, "data-status": String(call.status),
                         "data-carrier": call.carrier },
    el("td", { text: time }),
    el("td", { text: call.reported_by }),
    el("td", { text: who }),
    el("td", { class: "what", text: `${call.method} ${call.service} ${call.path}` }),
    el("td", { class: "scope", text: call.resolved ? `${call.scope} → ${call.resolved}` : (call.scope ?? ""),
               title: call.resolved ? "around()/nearest() as the entry proxy resolved them" : "" }),
    el("td", { class: "route" }, ...routeBadges(call)),
    el("td", { class: `call-status ${failed ? "failed" : ""}`, text: String(call.status) }),
    el("td", { text: String(call.ms) }));
  row.addEventListener("click", () => showDetail(call));
  return row;
}

function matches(call) {
  const words = $("#filter").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const text = [call.id, call.reported_by, call.service, call.method, call.path, call.scope, call.status,
                call.from_peer, ...call.route.map((b) => b.site)].join(" ").toLowerCase();
  return words.every((word) => text.includes(word));
}

function addCall(call) {
  state.calls.push(call);
  if (state.calls.length > MAX_ROWS) state.calls.shift();
  if (!matches(call)) return;
  const body = $("#calls tbody");
  body.prepend(callRow(call));
  while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
}

function redrawCalls() {
  const rows = state.calls.filter(matches).reverse().map(callRow);
  $("#calls tbody").replaceChildren(...rows);
}

function showDetail(call) {
  state.selected = call.id;
  const fields = [["reported by", call.reported_by], ["method", call.method],
    ["service", call.service], ["path", call.path], ["scope", call.scope ?? "(none)"],
    ...(call.resolved ? [["resolved to", call.resolved]] : []),
    ["carrier", call.carrier], ["mode", call.mode], ["from", call.from_peer ? `peer ${call.from_peer}` : call.client],
    ["client", call.agent], ["status", call.status], ["time", `${call.ms} ms`], ["request id", call.id]];
  const list = el("dl", {}, ...fields.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
  const branches = el("table", { class: "branches" },
    el("thead", {}, el("tr", {}, ...["branch to", "status", "error", "ms", "breaker when sent"]
      .map((h) => el("th", { text: h })))),
    el("tbody", {}, ...call.route.map((b) => el("tr", { "data-branch": b.site },
      el("td", { text: b.site }), el("td", { text: String(b.status ?? "unreachable") }),
      el("td", { text: b.error || "" }), el("td", { text: String(b.ms ?? "") }),
      el("td", { text: b.breaker })))));
  const hops = state.calls.filter((c) => c.id === call.id && c !== call);
  const hopList = el("ul", { class: "hops" }, ...hops.map((c) =>
    el("li", { text: `${c.reported_by}: ${c.method} ${c.service} ${c.path} → ` +
                     `${c.route.map((b) => `${b.site} ${b.status ?? "unreachable"}`).join(", ")}` +
                     ` (${c.status}, ${c.ms} ms${c.from_peer ? `, from peer ${c.from_peer}` : ""})` })));
  $("#detail-id").textContent = call.id;
  $("#detail-body").replaceChildren(list, el("h3", { text: "Route" }), branches,
    el("h3", { text: "The same request at other proxies" }),
    hops.length ? hopList : el("p", { text: "none reported" }));
  $("#detail").hidden = false;
  for (const row of document.querySelectorAll("#calls tbody tr")) {
    row.classList.toggle("selected", row.dataset.id === call.id);
  }
}

function drawOverview(picture) {
  // Redraw only what changed: an operator reading or selecting text keeps it.
  const key = JSON.stringify({ seen_from: picture.seen_from, links: picture.links,
    sites: picture.sites.map(({ heard_at, ...rest }) => rest) });
  if (key === state.drawn) return;
  state.drawn = key;
  state.picture = picture;
  $("#seen-from").textContent = picture.seen_from ? `seen from ${picture.seen_from}` : "";
  drawGraph(picture);
  drawLinks(picture);
  drawSites(picture);
}

// -- the stream ----------------------------------------------------------------------------

function connect() {
  const source = new EventSource("/api/events");
  const status = $("#status");
  source.addEventListener("open", () => { status.textContent = "live"; status.className = "status live"; });
  source.addEventListener("error", () => { status.textContent = "reconnecting…"; status.className = "status lost"; });
  source.addEventListener("picture", (event) => {
    const picture = JSON.parse(event.data);
    state.calls = [];
    $("#calls tbody").replaceChildren();
    drawOverview(picture);
    for (const call of picture.calls) addCall(call);
  });
  source.addEventListener("overview", (event) => drawOverview(JSON.parse(event.data)));
  source.addEventListener("call", (event) => addCall(JSON.parse(event.data)));
}

$("#filter").addEventListener("input", redrawCalls);
$("#close-detail").addEventListener("click", () => { $("#detail").hidden = true; });
connect();
