// The cocaine dashboard: plain JavaScript over the REST API. The cluster
// arrives as server-sent events (/api/v1/events) once a second; an app's
// log tail is a second event stream. Every text from the server goes into
// the page through textContent, never as HTML.
"use strict";

const state = { cluster: null, session: { authenticated: false, writable: false, csrf: "" }, route: null };
const $ = (id) => document.getElementById(id);

// h builds an element: h("td", {class: "num"}, "12", child…).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

// ---- formatting ----
function ago(t) {
  const s = (Date.now() - new Date(t).getTime()) / 1000;
  if (!isFinite(s)) return "";
  if (s < 60) return Math.max(0, Math.round(s)) + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
}
function dur(sec) {
  sec = Math.round(sec);
  if (sec < 60) return sec + "s";
  if (sec < 3600) return Math.floor(sec / 60) + "m " + (sec % 60) + "s";
  if (sec < 86400) return Math.floor(sec / 3600) + "h " + Math.floor((sec % 3600) / 60) + "m";
  return Math.floor(sec / 86400) + "d " + Math.floor((sec % 86400) / 3600) + "h";
}
function ms(sec) {
  if (sec === null || sec === undefined) return "–";
  const v = sec * 1000;
  return v < 10 ? v.toFixed(1) + " ms" : Math.round(v) + " ms";
}
function rate(v) { return v ? (v < 10 ? v.toFixed(1) : Math.round(v)) : "0"; }
function bytes(n) {
  if (!n) return "–";
  const u = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function label(a) { return a.label || (a.version ? "#" + String(a.version).slice(-6) : "–"); }
function badge(s) { return h("span", { class: "badge " + s }, s); }

function spark(points) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 100 24");
  svg.setAttribute("preserveAspectRatio", "none");
  const pts = (points || []).slice(-90);
  if (pts.length < 2) return svg;
  const top = Math.max(...pts, 1e-9);
  const xy = pts.map((v, i) => [(i / (pts.length - 1)) * 100, 23 - (v / top) * 21]);
  const line = xy.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" ");
  const area = document.createElementNS(NS, "polygon");
  area.setAttribute("points", "0,24 " + line + " 100,24");
  const pl = document.createElementNS(NS, "polyline");
  pl.setAttribute("points", line);
  svg.append(area, pl);
  const title = document.createElementNS(NS, "title");
  title.textContent = "requests/s over the last " + Math.round(pts.length * 2 / 60) + " minutes; peak " + rate(top);
  svg.append(title);
  return svg;
}

// ---- API ----
async function api(method, path, body, headers) {
  const opts = { method, headers: Object.assign({}, headers || {}), credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = state.session.csrf || "";
  if (body !== undefined) opts.body = body;
  const resp = await fetch(path, opts);
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
  if (!resp.ok) {
    const err = new Error((data && data.error) || resp.statusText);
    err.status = resp.status;
    err.details = (data && data.details) || [];
    if (resp.status === 401 || resp.status === 403) loadSession();
    throw err;
  }
  return data;
}

async function loadSession() {
  try { state.session = await api("GET", "/api/v1/session"); } catch (e) { /* keep the last */ }
  renderAuth();
}

function renderAuth() {
  const box = $("auth");
  box.replaceChildren();
  if (state.session.authenticated) {
    box.append(h("button", { id: "btn-logout", onclick: async () => {
      await api("DELETE", "/api/v1/session");
      await loadSession();
      render();
    } }, "Log out"));
  } else {
    box.append(h("button", { id: "btn-login", onclick: () => openLogin() }, "Log in"));
  }
}

function openLogin() {
  $("login-error").textContent = "";
  $("login-token").value = "";
  $("login-dialog").showModal();
  $("login-token").focus();
}

function canWrite() { return state.session.authenticated; }

// ---- routing ----
function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "app" && parts[1]) return { page: "app", name: parts[1] };
  if (parts[0] === "node" && parts[1]) return { page: "node", id: parts[1] };
  return { page: "overview" };
}

function crumbs(...items) {
  const c = $("crumbs");
  c.replaceChildren();
  items.forEach((it, i) => {
    if (i) c.append(" / ");
    c.append(typeof it === "string" ? it : it);
  });
}

let pageTeardown = null;
function navigate() {
  if (pageTeardown) { pageTeardown(); pageTeardown = null; }
  state.route = parseRoute();
  const main = $("main");
  main.replaceChildren();
  if (state.route.page === "app") pageTeardown = appPage(main, state.route.name);
  else if (state.route.page === "node") pageTeardown = nodePage(main, state.route.id);
  else overviewPage(main);
  render();
}

// render refreshes what depends on the cluster snapshot.
const renderers = new Set();
function render() { for (const r of renderers) r(); }

// ---- overview ----
function overviewPage(main) {
  crumbs("overview");
  const stats = h("div", { class: "stats", id: "stats" });
  const appsBody = h("tbody", { id: "apps" });
  const nodesBody = h("tbody", { id: "nodes" });
  const uploadBtn = h("button", { class: "primary", id: "btn-upload", onclick: () => openUpload("") }, "Upload app");
  main.append(
    stats,
    h("section", { class: "card" },
      h("h2", {}, h("span", { class: "grow" }, "Apps"), uploadBtn),
      h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {},
          h("th", {}, "app"), h("th", {}, "state"), h("th", {}, "version"),
          h("th", { class: "num hide-sm" }, "slaves"), h("th", { class: "num hide-sm" }, "queue"),
          h("th", { class: "num" }, "req/s"), h("th", { class: "num hide-sm" }, "err/s"),
          h("th", { class: "num hide-sm" }, "p50"), h("th", { class: "num hide-sm" }, "p99"),
          h("th", { class: "hide-sm" }, "last 5 min"))),
        appsBody))),
    h("section", { class: "card" },
      h("h2", {}, "Nodes"),
      h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "endpoint"), h("th", { class: "hide-sm" }, "host"),
          h("th", { class: "num" }, "uptime"), h("th", {}, "apps"))),
        nodesBody))));
  const r = () => {
    if (state.route.page !== "overview") return;
    const c = state.cluster;
    uploadBtn.disabled = !canWrite();
    uploadBtn.title = canWrite() ? "" : "log in to upload";
    if (!c) return;
    let rps = 0, eps = 0, broken = 0;
    c.apps.forEach((a) => { rps += a.rps || 0; eps += a.eps || 0; if (a.state === "broken") broken++; });
    stats.replaceChildren(
      h("div", { class: "stat" }, h("b", {}, c.nodes.length), h("span", {}, "nodes")),
      h("div", { class: "stat" }, h("b", {}, c.apps.length), h("span", {}, "apps")),
      h("div", { class: "stat" }, h("b", {}, broken), h("span", {}, "broken")),
      h("div", { class: "stat" }, h("b", {}, rate(rps)), h("span", {}, "requests/s")),
      h("div", { class: "stat" }, h("b", {}, rate(eps)), h("span", {}, "errors/s")));
    appsBody.replaceChildren(...(c.apps.length ? c.apps.map((a) => h("tr", { "data-app": a.name },
      h("td", { class: "name", title: a.name }, h("a", { href: "#/app/" + encodeURIComponent(a.name) }, a.name)),
      h("td", { class: "state", title: a.reason || "" }, badge(a.state), a.reason ? h("div", { class: "reason hide-sm" }, a.reason.slice(0, 160)) : null),
      h("td", { class: "nowrap", title: "uploaded " + new Date(a.uploaded).toLocaleString() }, label(a), " ", h("span", { class: "muted hide-sm" }, ago(a.uploaded))),
      h("td", { class: "num hide-sm" }, a.busy + "/" + a.total),
      h("td", { class: "num hide-sm" }, a.queue),
      h("td", { class: "num" }, rate(a.rps)),
      h("td", { class: "num hide-sm" }, rate(a.eps)),
      h("td", { class: "num hide-sm" }, ms(a.p50)),
      h("td", { class: "num hide-sm" }, ms(a.p99)),
      h("td", { class: "hide-sm" }, spark(a.spark)))) : [h("tr", {}, h("td", { colspan: 10, class: "empty" }, "No apps yet: upload one."))]));
    nodesBody.replaceChildren(...(c.nodes.length ? c.nodes.map((n) => h("tr", { "data-node": n.id },
      h("td", { class: "wrap" }, h("a", { href: "#/node/" + encodeURIComponent(n.id) }, n.endpoint)),
      h("td", { class: "hide-sm wrap" }, n.hostname),
      h("td", { class: "num" }, dur(n.uptime)),
      h("td", { class: "wrap" }, n.apps.length + " ", h("span", { class: "muted" }, n.apps.join(", "))))) :
      [h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No live node."))]));
  };
  renderers.clear();
  renderers.add(r);
}

// ---- app page ----
function appPage(main, name) {
  crumbs(h("a", { href: "#/" }, "overview"), "app " + name);
  const title = h("h1", {}, name);
  const stateEl = h("span", { id: "app-state" });
  const reasonEl = h("div", { class: "reason", id: "app-reason" });
  const btnStop = h("button", { id: "btn-stop", onclick: () => act("stop") }, "Stop");
  const btnStart = h("button", { id: "btn-start", onclick: () => act("start") }, "Start");
  const btnRollback = h("button", { id: "btn-rollback", onclick: () => act("rollback") }, "Roll back");
  const btnUpload = h("button", { id: "btn-upload-version", onclick: () => openUpload(name) }, "Upload version");
  const actErr = h("p", { class: "error", id: "act-error" });
  const versionEl = h("span", { class: "muted", id: "app-version" });
  const versions = h("tbody", { id: "versions" });
  const drivers = h("tbody", { id: "drivers" });
  const figures = h("div", { class: "stats", id: "app-figures" });
  const logBox = h("div", { class: "log", id: "log" });
  const crashes = h("div", { id: "crashes" });
  const evSelect = h("select", { id: "call-event", name: "event" });
  const method = h("select", { id: "call-method" }, ["POST", "GET", "PUT", "DELETE"].map((m) => h("option", {}, m)));
  const path = h("input", { id: "call-path", placeholder: "/path (after /APP/EVENT)" });
  const reqBody = h("textarea", { id: "call-input", placeholder: "request body" });
  const result = h("div", { class: "result", id: "call-result" });
  const send = h("button", { class: "primary", id: "call-send", type: "submit" }, "Send");
  const form = h("form", { id: "call-form", onsubmit: (e) => { e.preventDefault(); call(); } },
    h("div", { class: "row" }, evSelect, method, path), reqBody, h("div", { class: "row" }, send), result);
  main.append(
    h("div", { class: "head" }, h("div", { class: "grow" }, title, h("div", { class: "row" }, stateEl, versionEl), reasonEl),
      h("div", { class: "row" }, btnUpload, btnRollback, btnStop, btnStart)),
    actErr, figures,
    h("div", { class: "grid" },
      h("section", { class: "card" }, h("h2", {}, "Versions"), h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "version"), h("th", {}, "uploaded"), h("th", { class: "num" }, "size"), h("th", {}, ""))), versions))),
      h("section", { class: "card" }, h("h2", {}, "Send a request"), form)),
    h("section", { class: "card" }, h("h2", {}, "Drivers"), h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "driver"), h("th", {}, "type"), h("th", { class: "hide-sm" }, "node"),
        h("th", { class: "num" }, "fired"), h("th", { class: "num" }, "refused"), h("th", {}, "last error"))), drivers))),
    h("section", { class: "card" }, h("h2", {}, h("span", { class: "grow" }, "Log"), h("span", { class: "muted", id: "log-status" }, "")), logBox),
    h("section", { class: "card" }, h("h2", {}, "Crash logs"), crashes));

  let detail = null, fetching = false, lastFetch = 0, gone = false;
  async function refresh(force) {
    if (fetching || (!force && Date.now() - lastFetch < 2000)) return;
    fetching = true;
    try {
      detail = await api("GET", "/api/v1/apps/" + encodeURIComponent(name));
      lastFetch = Date.now();
      renderDetail();
    } catch (e) {
      if (e.status === 404) { gone = true; stateEl.replaceChildren(badge("removed")); }
    } finally { fetching = false; }
  }
  function renderDetail() {
    if (!detail) return;
    // The page's own element, not a lookup: a fetch that ends after the
    // page was left must not touch (or fail on) the next page.
    versionEl.textContent = " " + label(detail) + " · uploaded " + ago(detail.uploaded);
    versions.replaceChildren(...detail.versions.map((v) => h("tr", { "data-version": v.version },
      h("td", {}, h("b", {}, label(v)), " ", h("span", { class: "muted mono hide-sm" }, v.version)),
      h("td", { title: new Date(v.uploaded).toLocaleString() }, new Date(v.uploaded).toLocaleString(), " ", h("span", { class: "muted" }, "(" + ago(v.uploaded) + ")")),
      h("td", { class: "num" }, bytes(v.size)),
      h("td", {}, v.current ? h("span", { class: "badge current" }, "current") : ""))));
    const rows = [];
    const events = new Set();
    for (const n of detail.nodes || []) {
      for (const [dn, d] of Object.entries(n.drivers || {}).sort()) {
        if (d.type === "native-server") events.add(dn);
        rows.push(h("tr", { "data-driver": dn },
          h("td", { class: "name" }, dn), h("td", {}, d.type, d.emit && d.emit !== dn ? h("span", { class: "muted" }, " → " + d.emit) : ""),
          h("td", { class: "hide-sm wrap" }, n.endpoint),
          h("td", { class: "num" }, d.events ?? "–"), h("td", { class: "num" }, d.refused ?? "–"),
          h("td", { class: "wrap" }, d["last-error"] ? h("span", { class: "reason", title: d["last-error-at"] || "" }, d["last-error"]) : h("span", { class: "muted" }, "none"))));
      }
    }
    if (!events.size && detail.manifest && detail.manifest.drivers) {
      for (const [dn, d] of Object.entries(detail.manifest.drivers)) if (d.type === "native-server") events.add(dn);
    }
    drivers.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 6, class: "empty" }, "Not running on any node."))]));
    const have = [...evSelect.options].map((o) => o.value).join(",");
    const want = [...events].sort();
    if (have !== want.join(",")) {
      const keep = evSelect.value;
      evSelect.replaceChildren(...want.map((e) => h("option", { value: e }, e)));
      if (want.includes(keep)) evSelect.value = keep;
    }
    send.disabled = !canWrite() || !want.length;
    send.title = canWrite() ? "" : "log in to send requests";
  }
  async function act(op) {
    actErr.textContent = "";
    try {
      await api("POST", "/api/v1/apps/" + encodeURIComponent(name) + "/" + op);
      await refresh(true);
    } catch (e) { actErr.textContent = op + ": " + e.message; }
  }
  async function call() {
    result.replaceChildren(h("span", { class: "muted" }, "sending…"));
    const q = new URLSearchParams({ method: method.value });
    if (path.value) q.set("path", path.value);
    try {
      const r = await api("POST", "/api/v1/apps/" + encodeURIComponent(name) + "/call/" + encodeURIComponent(evSelect.value) + "?" + q,
        reqBody.value, { "Content-Type": "text/plain" });
      const ok = r.status >= 200 && r.status < 400;
      result.replaceChildren(
        h("div", {}, h("span", { class: "code " + (ok ? "ok" : "bad"), id: "call-status" }, r.status || "broken mid-answer"),
          h("span", { class: "muted" }, " in ", h("span", { id: "call-time" }, r.ms.toFixed(1) + " ms"), " · " + bytes(r.size) + (r.truncated ? " (first MiB shown)" : ""))),
        h("pre", { class: "answer", id: "call-body" }, r.binary ? "(" + r.size + " bytes of binary data)" : r.body));
    } catch (e) {
      result.replaceChildren(h("span", { class: "error" }, e.message));
    }
  }

  // The log tail: an event stream of NDJSON lines; reconnects ask only
  // for lines after the last one shown.
  let es = null, lastTime = "", closed = false, retry = null;
  const logStatus = () => $("log-status");
  function openLog() {
    const q = new URLSearchParams({ follow: "1", limit: "200" });
    if (lastTime) q.set("since", lastTime);
    es = new EventSource("/api/v1/apps/" + encodeURIComponent(name) + "/logs?" + q);
    es.onopen = () => { if (logStatus()) logStatus().textContent = "live"; };
    es.onmessage = (m) => {
      let l;
      try { l = JSON.parse(m.data); } catch (e) { return; }
      lastTime = l.time;
      const stick = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 20;
      logBox.append(h("div", { class: "line " + l.stream },
        h("span", { class: "t" }, new Date(l.time).toLocaleTimeString()), l.text));
      while (logBox.childNodes.length > 1000) logBox.firstChild.remove();
      if (stick) logBox.scrollTop = logBox.scrollHeight;
    };
    es.onerror = () => {
      es.close();
      if (closed || gone) return;
      if (logStatus()) logStatus().textContent = "reconnecting…";
      retry = setTimeout(openLog, 2000);
    };
  }
  async function loadCrashes() {
    try {
      const r = await api("GET", "/api/v1/apps/" + encodeURIComponent(name) + "/crashlogs");
      const list = r.crashlogs || [];
      crashes.replaceChildren(...(list.length ? list.slice(0, 30).map((c) => {
        const out = h("pre", { class: "answer" }, "loading…");
        const d = h("details", { class: "crash" }, h("summary", {}, new Date(c.time).toLocaleString() + " · " + (c.reason || "") + (c.status && !(c.reason || "").includes(c.status) ? " · " + c.status : "")), out);
        d.addEventListener("toggle", async () => {
          if (!d.open || out.dataset.loaded) return;
          try {
            const full = await api("GET", "/api/v1/apps/" + encodeURIComponent(name) + "/crashlogs/" + encodeURIComponent(c.key));
            out.textContent = full.output || "(no output)";
            out.dataset.loaded = "1";
          } catch (e) { out.textContent = e.message; }
        });
        return d;
      }) : [h("div", { class: "empty" }, "No crash logs.")]));
    } catch (e) { crashes.replaceChildren(h("div", { class: "empty" }, e.message)); }
  }

  const r = () => {
    if (state.route.page !== "app") return;
    const a = state.cluster && state.cluster.apps.find((x) => x.name === name);
    const w = canWrite();
    for (const b of [btnStop, btnStart, btnRollback, btnUpload]) { b.disabled = !w; b.title = w ? "" : "log in to change the app"; }
    if (a) {
      gone = false;
      stateEl.replaceChildren(badge(a.state));
      reasonEl.textContent = a.reason || "";
      btnStop.hidden = a.stopped;
      btnStart.hidden = !a.stopped;
      figures.replaceChildren(
        h("div", { class: "stat" }, h("b", {}, a.busy + "/" + a.total), h("span", {}, "slaves busy")),
        h("div", { class: "stat" }, h("b", {}, a.queue), h("span", {}, "queued")),
        h("div", { class: "stat" }, h("b", {}, rate(a.rps)), h("span", {}, "requests/s")),
        h("div", { class: "stat" }, h("b", {}, rate(a.eps)), h("span", {}, "errors/s")),
        h("div", { class: "stat" }, h("b", {}, ms(a.p50)), h("span", {}, "p50")),
        h("div", { class: "stat" }, h("b", {}, ms(a.p99)), h("span", {}, "p99")),
        h("div", { class: "stat" }, spark(a.spark), h("span", {}, "requests/s, 5 min")));
      if (detail && (detail.version !== a.version || detail.stopped !== a.stopped)) refresh(true);
    } else if (state.cluster && !gone) {
      stateEl.replaceChildren(badge("removed"));
    }
    refresh(false);
    renderDetail();
  };
  renderers.clear();
  renderers.add(r);
  refresh(true);
  loadCrashes();
  openLog();
  const crashT = setInterval(loadCrashes, 10000);
  return () => { closed = true; if (es) es.close(); clearTimeout(retry); clearInterval(crashT); };
}

// ---- node page ----
function nodePage(main, id) {
  crumbs(h("a", { href: "#/" }, "overview"), "node");
  const head = h("div", { class: "head" }, h("h1", { class: "grow" }, "node " + id));
  const body = h("div", { id: "node-apps" }, h("p", { class: "muted" }, "Loading…"));
  main.append(head, body);
  let stop = false, timer = null;
  async function load() {
    try {
      const n = await api("GET", "/api/v1/nodes/" + encodeURIComponent(id));
      head.replaceChildren(h("div", { class: "grow" }, h("h1", {}, n.endpoint),
        h("dl", { class: "kv" }, h("dt", {}, "id"), h("dd", { class: "mono" }, n.id), h("dt", {}, "host"), h("dd", {}, n.hostname),
          h("dt", {}, "uptime"), h("dd", {}, dur(n.uptime)), h("dt", {}, "version"), h("dd", {}, n.version))));
      const names = Object.keys(n.apps || {}).sort();
      body.replaceChildren(...(names.length ? names.map((an) => {
        const a = n.apps[an];
        const slaves = a["slave-list"] || [];
        return h("section", { class: "card", "data-app": an },
          h("h2", {}, h("a", { href: "#/app/" + encodeURIComponent(an) }, an), badge(a.state),
            h("span", { class: "muted" }, a.slaves.busy + "/" + a.slaves.total + " busy · queue " + a["queue-depth"])),
          slaves.length ? h("div", { class: "scroll" }, h("table", {},
            h("thead", {}, h("tr", {}, h("th", {}, "pid"), h("th", {}, "state"), h("th", { class: "num" }, "uptime"),
              h("th", { class: "num" }, "running"), h("th", { class: "num" }, "served"), h("th", { class: "num" }, "memory"))),
            h("tbody", {}, slaves.map((s) => h("tr", { "data-slave": s.id },
              h("td", { class: "mono", title: s.id }, s.pid), h("td", {}, badge(s.state)),
              h("td", { class: "num" }, dur(s.uptime)), h("td", { class: "num" }, s.jobs), h("td", { class: "num" }, s.served),
              h("td", { class: "num" }, bytes(s.rss))))))) : h("div", { class: "empty" }, "No slave running (they start on demand)."));
      }) : [h("p", { class: "empty" }, "No apps on this node.")]));
    } catch (e) {
      body.replaceChildren(h("p", { class: "error" }, e.message));
    }
    if (!stop) timer = setTimeout(load, 2000);
  }
  renderers.clear();
  load();
  return () => { stop = true; clearTimeout(timer); };
}

// ---- upload ----
function openUpload(name) {
  $("upload-title").textContent = name ? "Upload a new version of " + name : "Upload an app";
  $("upload-name").value = name;
  $("upload-name").readOnly = !!name;
  $("upload-file").value = "";
  $("upload-problems").replaceChildren();
  $("upload-dialog").showModal();
}

async function upload(e) {
  e.preventDefault();
  const name = $("upload-name").value.trim();
  const file = $("upload-file").files[0];
  const box = $("upload-problems");
  if (!name || !file) return;
  box.replaceChildren(h("span", { class: "muted" }, "uploading…"));
  $("upload-submit").disabled = true;
  try {
    const r = await api("PUT", "/api/v1/apps/" + encodeURIComponent(name), file, { "Content-Type": "application/gzip" });
    box.replaceChildren(h("p", { class: "ok-note", id: "upload-ok" }, "Uploaded " + r.name + " " + (r.label || "") + (r.stopped ? " (stopped: start it to run)" : "") + "."));
    setTimeout(() => { $("upload-dialog").close(); location.hash = "#/app/" + encodeURIComponent(r.name); }, 700);
  } catch (err) {
    box.replaceChildren(h("p", { class: "error" }, "Refused (" + err.status + "): " + (err.details.length ? "the package has problems:" : err.message)),
      err.details.length ? h("ul", { id: "upload-details" }, err.details.map((d) => h("li", {}, h("code", {}, d.path), ": " + d.message))) : null);
  } finally { $("upload-submit").disabled = false; }
}

// ---- the cluster stream ----
function connect() {
  const live = $("live");
  const es = new EventSource("/api/v1/events");
  es.addEventListener("cluster", (m) => {
    state.cluster = JSON.parse(m.data);
    live.className = "live on";
    live.textContent = "live";
    render();
  });
  es.addEventListener("problem", (m) => { live.className = "live off"; live.textContent = JSON.parse(m.data); });
  es.onerror = () => { live.className = "live off"; live.textContent = "reconnecting…"; };
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      state.session = await api("POST", "/api/v1/session", JSON.stringify({ token: $("login-token").value }), { "Content-Type": "application/json" });
      $("login-dialog").close();
      renderAuth();
      render();
    } catch (err) { $("login-error").textContent = err.status === 403 ? "That token is not accepted." : err.message; }
  });
  $("login-cancel").addEventListener("click", () => $("login-dialog").close());
  $("upload-form").addEventListener("submit", upload);
  $("upload-cancel").addEventListener("click", () => $("upload-dialog").close());
  window.addEventListener("hashchange", navigate);
  loadSession().then(render);
  navigate();
  connect();
});
