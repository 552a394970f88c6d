// The trace page: recent traces from /api/traces (admin only) and the waterfall of one.
"use strict";

const $ = (selector) => document.querySelector(selector);
const REFRESH_MS = 5000;

// The storefront's session (same keys, sessionStorage): logged in there, logged in here.
const store = {
  get(key) { try { return JSON.parse(sessionStorage.getItem(`msashop.${key}`)); } catch { return null; } },
  set(key, value) {
    if (value === null || value === undefined) sessionStorage.removeItem(`msashop.${key}`);
    else sessionStorage.setItem(`msashop.${key}`, JSON.stringify(value));
  },
};

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, { body, auth = true, retried = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = auth ? store.get("access") : null;
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    // Cookies go along too (same origin), for a session kept in one.
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "The platform cannot be reached right now.");
  }
  if (response.status === 401 && token && !retried && (await refresh())) {
    return api(method, path, { body, auth, retried: true });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) throw new ApiError(response.status, data?.error?.message || `Request failed (${response.status})`);
  return data;
}

async function refresh() {
  const refreshToken = store.get("refresh");
  if (!refreshToken) return false;
  try {
    const pair = await api("POST", "/api/auth/refresh", { body: { refresh_token: refreshToken }, auth: false });
    store.set("access", pair.access_token);
    store.set("refresh", pair.refresh_token);
    return true;
  } catch {
    return false;
  }
}

// ---- helpers -----------------------------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function show(message, kind = "error") {
  const box = $("#message");
  box.textContent = message;
  box.className = `message ${kind === "info" ? "info" : ""}`;
  box.hidden = !message;
}

// One colour per service, the same on every load.
function colour(service) {
  let hash = 0;
  for (const ch of service) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360}, 55%, 48%)`;
}

function chip(service) {
  const node = el("span", { class: "chip" }, service);
  node.style.background = colour(service);
  return node;
}

function ms(value) {
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 10) return `${value.toFixed(0)} ms`;
  return `${value.toFixed(2)} ms`;
}

function when(ns) {
  return new Date(Number(BigInt(ns) / 1000000n)).toLocaleTimeString([], { hour12: false });
}

// ---- login -------------------------------------------------------------------------------------
function needLogin(message) {
  $("#browser").hidden = true;
  $("#login").hidden = false;
  $("#logout").hidden = !store.get("access");
  show(message);
  stopRefresh();
}

$("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const pair = await api("POST", "/api/auth/login", {
      body: { email: $("#login-email").value, password: $("#login-password").value }, auth: false,
    });
    store.set("access", pair.access_token);
    store.set("refresh", pair.refresh_token);
    $("#login-password").value = "";
    show("");
    await start();
  } catch (error) {
    show(error.status === 401 ? "Wrong email or password." : error.message);
  }
});

$("#logout").addEventListener("click", () => {
  ["access", "refresh", "user"].forEach((key) => store.set(key, null));
  needLogin("Logged out.");
});

// ---- the list ----------------------------------------------------------------------------------
let timer = null;
let selected = null;

function stopRefresh() {
  if (timer) clearInterval(timer);
  timer = null;
}

function query() {
  const params = new URLSearchParams({ limit: $("#filter-limit").value });
  const service = $("#filter-service").value.trim();
  if (service) params.set("service", service);
  const minMs = Number($("#filter-min-ms").value);
  if (minMs > 0) params.set("min_duration_ms", String(minMs));
  if ($("#filter-errors").checked) params.set("errors", "true");
  return params;
}

async function loadList() {
  let data;
  try {
    data = await api("GET", `/api/traces?${query()}`);
  } catch (error) {
    if (error.status === 401) return needLogin("Log in as the admin to see traces.");
    if (error.status === 403) return needLogin("Traces are for admins only: log in as the admin.");
    if (error.status === 503) return show("The trace store is not running (is tracing sent to an external collector?).");
    return show(error.message);
  }
  show("");
  $("#browser").hidden = false;
  $("#login").hidden = true;
  $("#logout").hidden = !store.get("access");
  const rows = data.traces.map((t) => el(
    "tr",
    { class: `${t.error ? "error" : ""} ${t.trace_id === selected ? "selected" : ""}`, dataset: { traceId: t.trace_id },
      onclick: () => { location.hash = t.trace_id; } },
    el("td", {}, when(t.start_ns)),
    el("td", {}, el("strong", {}, t.root_service), " ", t.root_name, t.error ? el("span", { class: "error-badge" }, "error") : null),
    el("td", { class: "num" }, ms(t.duration_ms)),
    el("td", { class: "num" }, t.span_count),
    el("td", {}, t.services.map(chip)),
  ));
  $("#trace-rows").replaceChildren(...rows);
  $("#empty").hidden = rows.length > 0;
}

$("#filters").addEventListener("submit", (event) => { event.preventDefault(); loadList(); });
$("#auto-refresh").addEventListener("change", () => { stopRefresh(); if ($("#auto-refresh").checked) schedule(); });

function schedule() {
  stopRefresh();
  timer = setInterval(() => { if (!document.hidden) loadList(); }, REFRESH_MS);
}

// ---- the waterfall -----------------------------------------------------------------------------
async function loadTrace(traceId) {
  selected = traceId;
  document.querySelectorAll("#trace-rows tr").forEach((row) => row.classList.toggle("selected", row.dataset.traceId === traceId));
  let trace;
  try {
    trace = await api("GET", `/api/traces/${encodeURIComponent(traceId)}`);
  } catch (error) {
    $("#trace").hidden = true;
    if (error.status === 401 || error.status === 403) return needLogin("Log in as the admin to see traces.");
    return show(error.message);
  }
  drawTrace(trace);
}

function drawTrace(trace) {
  const total = Math.max(trace.duration_ms, 0.001);
  $("#trace").hidden = false;
  $("#trace-title").textContent = `${trace.spans[0].service}: ${trace.spans[0].name}`;
  $("#trace-meta").textContent = `${ms(trace.duration_ms)} · ${trace.span_count} spans · ${trace.processes.length} processes · ${trace.trace_id}`;
  $("#legend").replaceChildren(...[...new Set(trace.processes.map((p) => p.service))].map(chip));
  $("#axis").replaceChildren(...[0, 0.25, 0.5, 0.75, 1].map((f) => {
    const tick = el("span", {}, ms(total * f));
    tick.style.left = `${f * 100}%`;
    return tick;
  }));
  $("#span-detail").hidden = true;
  const rows = trace.spans.map((span) => {
    const label = el("div", { class: "span-label", title: `${span.service} (${span.instance}): ${span.name}` },
      el("span", { class: "dot" }), span.parent_found ? null : el("span", { class: "orphan", title: "its parent is not in this trace" }, "⤷ "),
      el("strong", {}, span.service), " ", span.name);
    label.style.paddingLeft = `${span.depth * 0.9}rem`;
    label.querySelector(".dot").style.background = colour(span.service);
    const left = (span.offset_ms / total) * 100;
    const width = (span.duration_ms / total) * 100;
    const bar = el("div", { class: `span-bar ${span.status === "error" ? "error" : ""}` });
    bar.style.left = `${left}%`;
    bar.style.width = `${width}%`;
    bar.style.background = colour(span.service);
    const time = el("span", { class: "span-time" }, ms(span.duration_ms));
    // The duration beside the bar, on whichever side has room.
    if (left + width < 80) time.style.left = `calc(${left + width}% + 4px)`;
    else time.style.right = `calc(${100 - left}% + 4px)`;
    const row = el("div", { class: "span-row", dataset: { spanId: span.span_id }, onclick: () => detail(span, row) },
      label, el("div", { class: "span-track" }, bar, time));
    return row;
  });
  $("#waterfall").replaceChildren(...rows);
}

function detail(span, row) {
  document.querySelectorAll(".span-row.selected").forEach((r) => r.classList.remove("selected"));
  row.classList.add("selected");
  const facts = [
    ["service", `${span.service} (${span.instance || "?"})`], ["kind", span.kind],
    ["start", `+${ms(span.offset_ms)}`], ["duration", ms(span.duration_ms)],
    ["status", span.status_message ? `${span.status}: ${span.status_message}` : span.status],
    ["span id", span.span_id], ["parent", span.parent_span_id || "(root)"],
    ...Object.entries(span.attributes).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    ...span.events.map((e) => [`event: ${e.name}`, JSON.stringify(e.attributes)]),
    ...span.links.map((l) => ["link", `${l.trace_id} / ${l.span_id}`]),
  ];
  const box = $("#span-detail");
  box.replaceChildren(el("h3", {}, span.name),
    el("table", {}, el("tbody", {}, facts.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v))))));
  box.hidden = false;
}

// ---- start -------------------------------------------------------------------------------------
async function start() {
  await loadList();
  if (!$("#browser").hidden) {
    if ($("#auto-refresh").checked) schedule();
    const wanted = location.hash.slice(1);
    if (/^[0-9a-f]{32}$/i.test(wanted)) loadTrace(wanted.toLowerCase());
  }
}

window.addEventListener("hashchange", () => {
  const wanted = location.hash.slice(1);
  if (/^[0-9a-f]{32}$/i.test(wanted)) loadTrace(wanted.toLowerCase());
});

start();
