// The trace page: recent traces from /api/traces (admin only) and the waterfall of one.
"use strict";

const $ = (selector) => document.querySelector(selector);
const REFRESH_MS = 5000;

// The storefront's cookie session (app.js): the access and refresh tokens are HttpOnly cookies this
// script never sees; the readable `msashop_csrf` cookie says a session exists and is echoed as
// X-CSRF-Token on every write. Logged in on the storefront, logged in here (same cookies).
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

function csrfToken() {
  const found = document.cookie.split("; ").find((pair) => pair.startsWith("msashop_csrf="));
  return found ? decodeURIComponent(found.slice("msashop_csrf=".length)) : null;
}

const loggedIn = () => Boolean(csrfToken());
let whoami = null;  // the session's user, for the header

function forgetSession() {
  // The HttpOnly cookies are the server's to clear (logout, a failed refresh); this one is ours.
  document.cookie = "msashop_csrf=; Max-Age=0; Path=/; Secure; SameSite=Strict";
  whoami = null;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, { body, auth = true, retried = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const csrf = csrfToken();
  if (csrf && UNSAFE.has(method)) headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "The platform cannot be reached right now.");
  }
  // An expired access cookie (the gateway then treats the call as anonymous): refresh once, repeat.
  if (response.status === 401 && auth && csrf && !retried && (await refreshOnce())) {
    return api(method, path, { body, auth, retried: true });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) throw new ApiError(response.status, data?.error?.message || `Request failed (${response.status})`);
  return data;
}

let refreshing = null;

// One refresh at a time: the refresh cookie is spent and the answer sets new cookies.
function refreshOnce() {
  refreshing ??= api("POST", "/api/auth/refresh", { body: { session: "cookie" }, auth: false })
    .then(() => true, () => { forgetSession(); return false; })
    .finally(() => { refreshing = null; });
  return refreshing;
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
async function showWho() {
  if (loggedIn() && !whoami) {
    try { whoami = await api("GET", "/api/users/me"); } catch { whoami = null; }
  }
  $("#who").textContent = loggedIn() ? whoami?.email || "" : "";
  $("#logout").hidden = !loggedIn();
}

function needLogin(message, kind = "error") {
  $("#browser").hidden = true;
  $("#login").hidden = false;
  show(message, kind);
  stopRefresh();
  showWho();
}

$("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = event.submitter;
  if (button) button.disabled = true;
  try {
    await api("POST", "/api/auth/login", {
      body: { email: $("#login-email").value.trim(), password: $("#login-password").value, session: "cookie" },
      auth: false,
    });
    whoami = null;  // maybe someone else now
    $("#login-password").value = "";
    show("");
    await ["access", "refresh"].forEach((key) => sessionStorage.removeItem(`msashop.${key}`));  // an older version's tokens
start();
  } catch (error) {
    show(error.status === 401 ? "Wrong email or password." : error.message);
  } finally {
    if (button) button.disabled = false;
  }
});

$("#logout").addEventListener("click", async () => {
  try {
    // The refresh cookie goes along; the answer clears the session cookies.
    if (loggedIn()) await api("POST", "/api/auth/logout", { body: {} });
  } catch {
    // whatever the server said, this page forgets the session
  }
  forgetSession();
  needLogin("Logged out.", "info");
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
    if (error.status === 401) {
      forgetSession();  // the session (if any) is over: refreshing it failed
      return needLogin("Log in as the admin to see traces.", "info");
    }
    if (error.status === 403) return needLogin("Traces are for admins only: log in as the admin.");
    if (error.status === 503) return show("The trace store is not running (is tracing sent to an external collector?).");
    return show(error.message);
  }
  show("");
  $("#browser").hidden = false;
  $("#login").hidden = true;
  showWho();
  const rows = data.traces.map((t) => el(
    "tr",
    { class: `${t.error ? "error" : ""} ${t.trace_id === selected ? "selected" : ""}`, dataset: { traceId: t.trace_id },
      onclick: () => { if (location.hash === `#${t.trace_id}`) loadTrace(t.trace_id); else location.hash = t.trace_id; } },
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
  $("#axis").replaceChildren(el("div", { class: "axis-scale" }, [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const tick = el("span", {}, f ? ms(total * f) : "0");
    tick.style.left = `${f * 100}%`;
    return tick;
  })));
  $("#span-detail").hidden = true;
  const rows = trace.spans.map((span) => {
    const label = el("div", { class: "span-label", title: `${span.service} (${span.instance}): ${span.name}` },
      el("span", { class: "dot" }), span.parent_found ? null : el("span", { class: "orphan", title: "its parent is not in this trace" }, "⤷ "),
      el("strong", {}, span.service), " ", span.name);
    // A checkout nests a dozen deep: a small step keeps the deepest names readable.
    label.style.paddingLeft = `${Math.min(span.depth, 20) * 0.55}rem`;
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
  box.scrollIntoView({ block: "nearest" });
}

// ---- start -------------------------------------------------------------------------------------
async function start() {
  if (!loggedIn()) return needLogin("Log in as the admin to see traces.", "info");
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

["access", "refresh"].forEach((key) => sessionStorage.removeItem(`msashop.${key}`));  // an older version's tokens
start();
