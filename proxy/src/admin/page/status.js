// rauta's status page: polls /status.json and renders it. Plain JavaScript,
// no framework. Every value from the server goes into the page as text
// (textContent), never as markup. Large tables are filtered and sorted in
// memory and only one page of rows is in the DOM at a time.
"use strict";

const POLL_MS = 2000;
const PAGE_ROWS = 50;

// The table of the generation we have (routes, backends, certificates),
// and the last live figures.
let table = null;
let live = null;

// ---- formatting ----

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v !== undefined && v !== null) e.setAttribute(k, v);
    }
  }
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function setText(id, text) {
  const e = document.getElementById(id);
  if (e) e.textContent = text;
}

function fmtLatency(us) {
  if (!us) return "–";
  if (us < 1000) return us + " µs";
  if (us < 1e6) return (us / 1000).toPrecision(3) + " ms";
  return (us / 1e6).toPrecision(3) + " s";
}

function fmtRate(x) {
  if (!x) return "0";
  if (x >= 100) return Math.round(x).toString();
  return x.toPrecision(3).replace(/\.?0+$/, "");
}

function fmtPercent(ratio) {
  if (!ratio) return "0 %";
  return (ratio * 100).toPrecision(3).replace(/\.?0+$/, "") + " %";
}

function fmtTime(unix) {
  if (!unix) return "–";
  const d = new Date(unix * 1000);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function fmtAgo(unix, now) {
  if (!unix) return "–";
  const s = Math.max(0, Math.round(now - unix));
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " days ago";
}

// ---- a table with filter, sort and paging ----

// columns: [{key, label, num, cell(row) -> {text, attrs}}]
class PagedTable {
  constructor(opts) {
    this.table = document.getElementById(opts.table);
    this.filterInput = document.getElementById(opts.filter);
    this.pager = document.getElementById(opts.pager);
    this.count = document.getElementById(opts.count);
    this.columns = opts.columns;
    this.rowAttrs = opts.rowAttrs;
    this.rows = [];
    this.view = [];
    this.page = 0;
    this.sortKey = opts.sortKey || null;
    this.sortDesc = !!opts.sortDesc;
    this.filter = "";
    this.buildHead();
    let timer = null;
    this.filterInput.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        this.filter = this.filterInput.value.trim().toLowerCase();
        this.page = 0;
        this.refresh();
      }, 120);
    });
  }

  buildHead() {
    const tr = this.table.tHead.rows[0];
    tr.textContent = "";
    for (const c of this.columns) {
      const th = el("th", { "data-key": c.key, class: c.num ? "num sortable" : "sortable", title: "sort" }, c.label);
      th.addEventListener("click", () => {
        if (this.sortKey === c.key) {
          this.sortDesc = !this.sortDesc;
        } else {
          this.sortKey = c.key;
          this.sortDesc = !!c.num;
        }
        this.refresh();
      });
      tr.appendChild(th);
    }
  }

  setRows(rows) {
    this.rows = rows;
    this.refresh();
  }

  refresh() {
    const f = this.filter;
    // Every word must occur somewhere in the row.
    const words = f ? f.split(/\s+/) : [];
    let view = words.length
      ? this.rows.filter((r) => words.every((w) => r.search.includes(w)))
      : this.rows.slice();
    if (this.sortKey) {
      const k = this.sortKey;
      const dir = this.sortDesc ? -1 : 1;
      view.sort((a, b) => {
        const x = a[k], y = b[k];
        if (x === y) return a.order - b.order;
        if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
        return String(x).localeCompare(String(y)) * dir;
      });
    }
    this.view = view;
    const pages = Math.max(1, Math.ceil(view.length / PAGE_ROWS));
    if (this.page >= pages) this.page = pages - 1;
    this.render(pages);
  }

  render(pages) {
    const start = this.page * PAGE_ROWS;
    const shown = this.view.slice(start, start + PAGE_ROWS);
    const body = document.createDocumentFragment();
    for (const r of shown) {
      const tr = el("tr", this.rowAttrs ? this.rowAttrs(r) : null);
      for (const c of this.columns) {
        const v = c.cell(r);
        const attrs = Object.assign({ class: c.key + (c.num ? " num" : "") }, v.attrs || {});
        if (v.cls) attrs.class += " " + v.cls;
        tr.appendChild(el("td", attrs, v.text));
      }
      body.appendChild(tr);
    }
    const tbody = this.table.tBodies[0];
    tbody.textContent = "";
    tbody.appendChild(body);
    for (const th of this.table.tHead.rows[0].cells) {
      th.classList.toggle("sorted", th.dataset.key === this.sortKey);
      th.classList.toggle("desc", th.dataset.key === this.sortKey && this.sortDesc);
    }
    // Pager.
    this.pager.textContent = "";
    const prev = el("button", { type: "button", class: "prev" }, "◀");
    prev.disabled = this.page === 0;
    prev.addEventListener("click", () => { this.page--; this.refresh(); });
    const next = el("button", { type: "button", class: "next" }, "▶");
    next.disabled = this.page >= pages - 1;
    next.addEventListener("click", () => { this.page++; this.refresh(); });
    const from = this.view.length ? start + 1 : 0;
    const to = start + shown.length;
    this.pager.append(prev, el("span", { class: "range" }, `${from}–${to} of ${this.view.length}`), next);
    if (this.count) {
      this.count.textContent = this.view.length === this.rows.length
        ? `(${this.rows.length})`
        : `(${this.view.length} of ${this.rows.length} match)`;
    }
  }
}

// ---- the routes and endpoints tables ----

const routes = new PagedTable({
  table: "routes",
  filter: "route-filter",
  pager: "routes-pager",
  count: "routes-count",
  columns: [
    { key: "host", label: "host", cell: (r) => ({ text: r.host || (r.type === "default" ? "(default backend)" : "*") }) },
    { key: "path", label: "path", cell: (r) => ({ text: r.path }) },
    { key: "type", label: "type", cell: (r) => ({ text: r.typeText, attrs: r.conditions.length ? { title: r.conditions.join("\n") } : null }) },
    { key: "ingress", label: "Ingress", cell: (r) => ({ text: r.ingress }) },
    { key: "backend", label: "backend", cell: (r) => ({ text: r.backend }) },
    { key: "rps", label: "req/s", num: true, cell: (r) => ({ text: fmtRate(r.rps), attrs: { "data-value": r.rps } }) },
    { key: "err", label: "5xx", num: true, cell: (r) => ({ text: r.rps ? fmtPercent(r.err) : "–", cls: r.err > 0 ? "bad" : "", attrs: { "data-value": r.err } }) },
    { key: "p50", label: "p50", num: true, cell: (r) => ({ text: fmtLatency(r.p50), attrs: { "data-us": r.p50 } }) },
    { key: "p99", label: "p99", num: true, cell: (r) => ({ text: fmtLatency(r.p99), attrs: { "data-us": r.p99 } }) },
    { key: "p999", label: "p99.9", num: true, cell: (r) => ({ text: fmtLatency(r.p999), attrs: { "data-us": r.p999 } }) },
    { key: "inflight", label: "in flight", num: true, cell: (r) => ({ text: r.inflight }) },
  ],
  rowAttrs: (r) => ({ "data-route": r.index }),
});

const endpoints = new PagedTable({
  table: "endpoints",
  filter: "endpoint-filter",
  pager: "endpoints-pager",
  count: "endpoints-count",
  columns: [
    { key: "backend", label: "backend", cell: (r) => ({ text: r.backend }) },
    { key: "addr", label: "endpoint", cell: (r) => ({ text: r.addr }) },
    { key: "pod", label: "pod", cell: (r) => ({ text: r.pod || "–" }) },
    { key: "weight", label: "weight", num: true, cell: (r) => ({ text: r.weight }) },
    { key: "state", label: "state", cell: (r) => ({ text: r.stateText, cls: "state-" + r.state }) },
    { key: "inflight", label: "in flight", num: true, cell: (r) => ({ text: r.inflight }) },
    { key: "idle", label: "idle connections", num: true, cell: (r) => ({ text: r.idle }) },
  ],
  rowAttrs: (r) => ({ "data-endpoint": r.addr, "data-state": r.state }),
});

function loadTable(t) {
  table = t;
  const rows = t.routes.map(([host, path, type, ingress, b], i) => {
    const backend = t.backends[b] ? t.backends[b][0] : "";
    return {
      index: i, order: i, host, path, type, typeText: type, ingress, backend, conditions: [],
      rps: 0, err: 0, p50: 0, p99: 0, p999: 0, inflight: 0,
    };
  });
  // Routes with conditions (HTTPRoute matches) or that are one weighted
  // share of a rule.
  for (const [i, conditions, shareOf] of t.extras || []) {
    const r = rows[i];
    if (!r) continue;
    r.conditions = conditions;
    const notes = [];
    if (conditions.length) notes.push(conditions.length === 1 ? "1 condition" : `${conditions.length} conditions`);
    if (shareOf !== null && shareOf !== undefined) notes.push("weighted share");
    if (notes.length) r.typeText = `${r.type} (${notes.join(", ")})`;
  }
  for (const r of rows) {
    r.search = [r.host || "(default backend)", r.path, r.typeText, r.ingress, r.backend, ...r.conditions]
      .join(" ").toLowerCase();
  }
  routes.rows = rows;
  const eps = [];
  for (const [name, , , list] of t.backends) {
    for (const [addr, weight, state, pod] of list) {
      eps.push({
        order: eps.length, backend: name, addr, weight, pod, base: state, state, stateText: state,
        inflight: 0, idle: 0, ejected: 0, search: "",
      });
    }
  }
  endpoints.rows = eps;
  // Certificates.
  const now = Date.now() / 1000;
  const tbody = document.getElementById("certs").tBodies[0];
  tbody.textContent = "";
  for (const [host, secret, notAfter] of t.certificates) {
    const days = Math.floor((notAfter - now) / 86400);
    const tr = el("tr", { "data-host": host });
    tr.append(el("td", null, host), el("td", null, secret), el("td", null, fmtTime(notAfter)),
      el("td", { class: "num" + (days < 14 ? " bad" : "") }, days));
    tbody.appendChild(tr);
  }
  setText("certs-count", t.certificates.length
    ? `(${t.certificates.length}${t.certificates_skipped ? `, ${t.certificates_skipped} skipped` : ""})`
    : "(none: no TLS listener or no TLS Ingress)");
}

function applyLive(s) {
  live = s;
  // Routes: zero, then the ones with figures.
  for (const r of routes.rows) {
    r.rps = 0; r.err = 0; r.p50 = 0; r.p99 = 0; r.p999 = 0; r.inflight = 0;
  }
  let total = 0, errors = 0;
  for (const [i, rps, err, p50, p99, p999, inflight] of s.routes) {
    const r = routes.rows[i];
    if (!r) continue;
    Object.assign(r, { rps, err, p50, p99, p999, inflight });
    total += rps;
    errors += rps * err;
  }
  routes.refresh();
  setText("total-rps", fmtRate(total));
  setText("total-errors", total ? fmtPercent(errors / total) : "–");

  // Endpoints.
  const byAddr = new Map(s.endpoints.map(([addr, inflight, idle, ejected]) => [addr, { inflight, idle, ejected }]));
  const shards = s.shards.length || 1;
  for (const e of endpoints.rows) {
    const d = byAddr.get(e.addr) || { inflight: 0, idle: 0, ejected: 0 };
    e.inflight = d.inflight; e.idle = d.idle; e.ejected = d.ejected;
    if (d.ejected > 0) {
      e.state = "ejected";
      e.stateText = `ejected (${d.ejected}/${shards} shards)`;
    } else {
      e.state = e.base;
      e.stateText = e.base;
    }
    e.search = [e.backend, e.addr, e.pod || "", e.stateText].join(" ").toLowerCase();
  }
  endpoints.refresh();

  // Summary.
  setText("generation", s.generation);
  const badge = document.getElementById("live-badge");
  badge.textContent = s.live_on_every_shard ? "live on every shard" : "not yet on every shard";
  badge.className = "badge " + (s.live_on_every_shard ? "good" : "warn");
  setText("published", s.published ? `${fmtAgo(s.published, s.now)} (${fmtTime(s.published)})` : "–");
  setText("loads", s.reloads.loads);
  setText("failed-count", s.reloads.failed);
  document.getElementById("failed-count").className = s.reloads.failed ? "bad" : "";
  setText("window", `${Math.round(s.window.seconds)} s`);
  setText("window-note",
    `Requests/s, 5xx share and latency (complete request head to last response byte) over the last ` +
    `${s.window.seconds.toFixed(1)} s: the admin thread keeps the per-second deltas of the shards' ` +
    `snapshots for about ${s.window.nominal} s (the window covers from the snapshot before its oldest ` +
    `second to the latest one). Latency quantiles come from the same histograms, in buckets of 32 per ` +
    `power of two (about 3 %).`);
  setText("updated", `updated ${new Date(s.now * 1000).toLocaleTimeString()}`);
  document.getElementById("updated").className = "muted";

  renderReloads(s);
  renderShards(s);
  renderEbpf(s.ebpf);
  renderL4(s);
  renderKubernetes(s.kubernetes, s.now);
}

function problemItem(p) {
  const li = el("li", { class: "problem " + p.severity });
  li.appendChild(el("span", { class: "severity" }, p.severity));
  const where = [p.file, p.object].filter((x) => x).join(": ");
  if (where) li.appendChild(el("span", { class: "where" }, where));
  li.appendChild(el("span", { class: "message" }, p.message));
  return li;
}

function renderReloads(s) {
  const r = s.reloads;
  const failed = document.getElementById("reload-failed");
  const last = r.recent_failures[0];
  // The source rejected its last load; or the proxy could not compile the
  // latest configuration and nothing was published since.
  const compileFailed = !!last && last.kind === "compile" && last.generation === s.generation &&
    (!s.published || s.published < last.seen);
  failed.hidden = !r.last_failed && !compileFailed;
  if (!failed.hidden) {
    const seen = last ? ` (seen ${fmtAgo(last.seen, s.now)})` : "";
    setText("reload-failed-text",
      `The configuration was rejected${seen}; generation ${s.generation}, the last good one, stays live.`);
    const ul = document.getElementById("reload-failed-problems");
    ul.textContent = "";
    let problems = r.problems.filter((p) => p.severity === "fatal");
    if (compileFailed && !r.last_failed) problems = last.problems;
    for (const p of problems) ul.appendChild(problemItem(p));
  }
  const section = document.getElementById("problems-section");
  section.hidden = r.problems.length === 0;
  const ul = document.getElementById("problems");
  ul.textContent = "";
  for (const p of r.problems) ul.appendChild(problemItem(p));
  const [fatal, error, warning] = r.problem_counts;
  setText("problem-counts", `(${fatal} fatal, ${error} errors, ${warning} warnings)`);
  const fs = document.getElementById("failures-section");
  fs.hidden = r.recent_failures.length === 0;
  const fl = document.getElementById("failures");
  fl.textContent = "";
  for (const f of r.recent_failures) {
    const li = el("li", { class: "failure" });
    li.appendChild(el("span", { class: "when" }, `${fmtTime(f.seen)}: generation ${f.generation} stayed live`));
    const inner = el("ul");
    for (const p of f.problems) inner.appendChild(problemItem(p));
    li.appendChild(inner);
    fl.appendChild(li);
  }
}

function renderShards(s) {
  const tbody = document.getElementById("shards").tBodies[0];
  tbody.textContent = "";
  for (const sh of s.shards) {
    const tr = el("tr", { "data-shard": sh.shard });
    tr.append(
      el("td", null, sh.shard),
      el("td", { class: sh.generation === s.generation ? "" : "warn" }, sh.generation),
      el("td", { class: "num" }, sh.open_connections),
      el("td", { class: "num" }, fmtRate(sh.accepted_per_s)),
      el("td", { class: "num" }, fmtRate(sh.requests_per_s)),
    );
    tbody.appendChild(tr);
  }
}

function fmtBytes(n) {
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n, u = -1;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return v.toPrecision(3) + " " + units[u];
}

function renderL4(s) {
  const services = s.l4_services || [];
  const tbody = document.getElementById("l4").tBodies[0];
  tbody.textContent = "";
  if (services.length === 0) {
    const tr = el("tr");
    tr.appendChild(el("td", { colspan: 10, class: "muted" }, "none (no tcp-services or udp-services ConfigMap entries)"));
    tbody.appendChild(tr);
  }
  for (const l of services) {
    const tr = el("tr", { "data-service": l.service });
    tr.append(
      el("td", { class: "service" }, l.service),
      el("td", { class: "backend" }, l.backend),
      el("td", { class: "source" }, l.source),
      el("td", { class: "state " + (l.listening ? "good" : "bad"), title: l.error || null }, l.listening ? "listening" : "not listening"),
      el("td", { class: "active num" }, l.active),
      el("td", { class: "connections num" }, l.connections),
      el("td", { class: "bytes-in num", "data-value": l.bytes_in }, fmtBytes(l.bytes_in)),
      el("td", { class: "bytes-out num", "data-value": l.bytes_out }, fmtBytes(l.bytes_out)),
      el("td", { class: "connect-failures num" + (l.connect_failures ? " warn" : "") }, l.connect_failures),
      el("td", { class: "unserved num" + (l.unserved ? " warn" : "") }, l.unserved),
    );
    tbody.appendChild(tr);
  }
  setText("l4-count", `(${services.length})`);
  const hosts = s.passthrough || [];
  const pt = document.getElementById("passthrough").tBodies[0];
  pt.textContent = "";
  if (hosts.length === 0) {
    const tr = el("tr");
    tr.appendChild(el("td", { colspan: 2, class: "muted" }, "none (no Ingress with ssl-passthrough)"));
    pt.appendChild(tr);
  }
  for (const h of hosts) {
    const tr = el("tr", { "data-host": h.host });
    tr.append(el("td", { class: "host" }, h.host), el("td", { class: "backend" }, h.backend));
    pt.appendChild(tr);
  }
  setText("passthrough-count", `(${hosts.length})`);
  const hellos = s.client_hellos || [];
  setText("hellos", hellos.length
    ? "ClientHellos since start: " + hellos.map(([result, n]) => `${result} ${n}`).join(", ")
    : "");
}

function renderKubernetes(k, now) {
  const section = document.getElementById("kubernetes");
  section.hidden = !k;
  if (!k) return;
  const role = k.leader ? "leader (writes status and Events)" : "follower";
  const sync = k.last_sync_unix > 0 ? fmtAgo(k.last_sync_unix, now) : "not yet";
  setText("kube-summary", role + ", role taken " + fmtAgo(k.leader_since_unix, now)
    + "; last sync " + sync + "; Events sent " + k.events_ok
    + (k.events_failed ? ", failed " + k.events_failed : ""));
  const res = document.getElementById("kube-resources").tBodies[0];
  res.textContent = "";
  for (const r of k.resources) {
    const tr = el("tr");
    tr.append(el("td", null, r.resource), el("td", { class: "num" }, r.objects),
      el("td", { class: r.watch_errors ? "num warn" : "num" }, r.watch_errors),
      el("td", { class: "num" }, r.watch_restarts));
    res.appendChild(tr);
  }
  const writes = document.getElementById("kube-writes").tBodies[0];
  writes.textContent = "";
  for (const w of k.status_writes) {
    const tr = el("tr");
    tr.append(el("td", null, w.kind), el("td", { class: "num" }, w.ok),
      el("td", { class: w.failed ? "num warn" : "num" }, w.failed));
    writes.appendChild(tr);
  }
}

function renderEbpf(e) {
  const att = document.getElementById("ebpf-attachments").tBodies[0];
  att.textContent = "";
  if (e.attachments.length === 0) {
    const tr = el("tr");
    tr.appendChild(el("td", { colspan: 3, class: "muted" }, "no eBPF program loaded (--xdp off, or a build without the eBPF object)"));
    att.appendChild(tr);
  }
  for (const [program, target, attached] of e.attachments) {
    const tr = el("tr");
    tr.append(el("td", null, program), el("td", null, target),
      el("td", { class: attached ? "good" : "warn" }, attached ? "attached" : "not attached"));
    att.appendChild(tr);
  }
  const cnt = document.getElementById("ebpf-counters").tBodies[0];
  cnt.textContent = "";
  for (const [series, value] of e.counters) {
    const tr = el("tr");
    tr.append(el("td", { class: "series" }, series), el("td", { class: "num" }, value));
    cnt.appendChild(tr);
  }
  document.getElementById("ebpf-counters").hidden = e.counters.length === 0;
}

// ---- polling ----

async function poll() {
  try {
    const url = table ? `/status.json?have=${table.generation}` : "/status.json";
    const resp = await fetch(url, { cache: "no-store" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const s = await resp.json();
    if (s.table) {
      loadTable(s.table);
      table.instance = s.instance;
    }
    if (table && table.instance !== s.instance) {
      // Another rauta process (restarted): its generations are not ours.
      table = null;
      setTimeout(poll, 0);
      return;
    }
    if (table && s.generation === table.generation) applyLive(s);
  } catch (e) {
    const u = document.getElementById("updated");
    u.textContent = `cannot reach rauta: ${e.message}` + (live ? "; the figures below are stale" : "");
    u.className = "bad";
  }
  setTimeout(poll, POLL_MS);
}

// ---- explain ----

document.getElementById("explain-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = document.getElementById("explain-result");
  out.textContent = "…";
  const q = new URLSearchParams({
    host: document.getElementById("explain-host").value,
    path: document.getElementById("explain-path").value,
    method: document.getElementById("explain-method").value || "GET",
  });
  const header = document.getElementById("explain-header").value.trim();
  if (header) q.append("header", header);
  try {
    const resp = await fetch(`/debug/route?${q}`, { cache: "no-store" });
    const text = await resp.text();
    out.textContent = "";
    if (!resp.ok) {
      out.appendChild(el("p", { class: "bad" }, text));
      return;
    }
    const x = JSON.parse(text);
    out.appendChild(el("p", { id: "explain-why", class: "why" }, x.why));
    const facts = el("p", { class: "muted" },
      `host ${x.host} (${x.host_match} host rules), path ${x.path}: ${x.result}, generation ${x.generation}. ${x.method_note}.`);
    out.appendChild(facts);
    const t = el("table", { class: "data", id: "explain-candidates" });
    const head = el("tr");
    for (const h of ["", "Ingress", "host", "path", "type", "backend", "verdict"]) head.appendChild(el("th", null, h));
    t.appendChild(el("thead")).appendChild(head);
    const tb = t.appendChild(el("tbody"));
    const w = x.winner;
    for (const c of x.candidates) {
      const won = w && c.ingress === w.ingress && c.path === w.path && c.path_type === w.path_type && c.host === w.host;
      const tr = el("tr", { class: won ? "winner" : c.matches ? "" : "muted" });
      const object = c.kind && c.kind !== "Ingress" ? `${c.kind} ${c.ingress}` : c.ingress;
      tr.append(el("td", null, won ? "✔" : ""), el("td", null, object), el("td", null, c.host),
        el("td", null, c.path), el("td", null, c.path_type), el("td", null, c.backend), el("td", null, c.reason));
      tb.appendChild(tr);
    }
    out.appendChild(t);
    if (x.endpoints) {
      const list = x.endpoints.map((e) => `${e.address} (${e.ejected_shards ? "ejected" : e.state})`).join(", ");
      out.appendChild(el("p", null, `Endpoints of the winner: ${list || "none"}`));
    }
  } catch (e) {
    out.textContent = `cannot explain: ${e.message}`;
  }
});

poll();
