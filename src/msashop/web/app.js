// The msashop storefront: plain JavaScript against the gateway's /api endpoints.
"use strict";

const $ = (selector) => document.querySelector(selector);
const PAGE_SIZE = 12;
const POLL_EVERY_MS = 1000;
const POLL_FOR_MS = 90000;

// ---- session -------------------------------------------------------------------------------------
// A cookie session: the access and refresh tokens are HttpOnly cookies this script never sees
// (an injected script cannot steal them); the gateway reads them. The readable `msashop_csrf`
// cookie says a session exists and is echoed as X-CSRF-Token on every write (double submit).
// sessionStorage keeps the cart and the user's name and email for display only.
const store = {
  get(key) { try { return JSON.parse(sessionStorage.getItem(`msashop.${key}`)); } catch { return null; } },
  set(key, value) {
    if (value === null || value === undefined) sessionStorage.removeItem(`msashop.${key}`);
    else sessionStorage.setItem(`msashop.${key}`, JSON.stringify(value));
  },
};
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

function csrfToken() {
  const found = document.cookie.split("; ").find((pair) => pair.startsWith("msashop_csrf="));
  return found ? decodeURIComponent(found.slice("msashop_csrf=".length)) : null;
}

const loggedIn = () => Boolean(csrfToken());

function clearSession() {
  store.set("user", null);
  // The HttpOnly cookies are the server's to clear (logout, a failed refresh); this one is ours.
  document.cookie = "msashop_csrf=; Max-Age=0; Path=/; Secure; SameSite=Strict";
  renderAccount();
}

// ---- API calls ---------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function readJson(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  try { return text ? JSON.parse(text) : null; } catch { return null; }
}

let refreshing = null;

// One refresh at a time, however many calls saw the 401 together: the refresh cookie is spent
// and the answer sets new cookies.
function refreshOnce() {
  if (!loggedIn()) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      await api("POST", "/api/auth/refresh", { body: { session: "cookie" }, auth: false });
      return true;
    } catch {
      clearSession();
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function api(method, path, { body, headers = {}, auth = true, retried = false } = {}) {
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const csrf = csrfToken();
  if (csrf && UNSAFE.has(method)) sent["X-CSRF-Token"] = csrf;
  const session = auth && Boolean(csrf);
  let response;
  try {
    response = await fetch(path, {
      method, headers: sent, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network_error", "The shop cannot be reached right now. Please try again.");
  }
  // An expired access cookie: refresh once and repeat the call (same Idempotency-Key included).
  if (response.status === 401 && session && !retried && (await refreshOnce())) {
    return api(method, path, { body, headers, auth, retried: true });
  }
  const data = await readJson(response);
  if (!response.ok) {
    if (response.status === 401 && session) clearSession();
    const message = data?.error?.message || `Request failed (${response.status})`;
    throw new ApiError(response.status, data?.error?.code || "error", message);
  }
  return data;
}

function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Plain-http pages outside localhost have no randomUUID; same randomness, same shape.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---- small DOM helpers -------------------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function money(amount, currency = "USD") {
  try { return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount); } catch {
    return `${Number(amount).toFixed(2)} ${currency}`;
  }
}

function showMessage(text, kind = "error") {
  const box = $("#message");
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = false;
}

function hideMessage() { $("#message").hidden = true; }

// Runs an action, shows its API error to the user, and keeps the button disabled meanwhile.
function guard(action) {
  return async (event) => {
    event?.preventDefault?.();
    const button = event?.submitter || (event?.currentTarget instanceof HTMLButtonElement ? event.currentTarget : null);
    if (button) button.disabled = true;
    try {
      await action(event);
    } catch (error) {
      showMessage(error.message || "Something went wrong.");
    } finally {
      if (button) button.disabled = false;
    }
  };
}

// ---- navigation --------------------------------------------------------------------------------
let pendingInfo = null;
let afterLogin = "#/shop";

function go(hash, info = null) {
  pendingInfo = info;
  if (location.hash === hash) route();
  else location.hash = hash;
}

function show(view) {
  document.querySelectorAll("[data-view]").forEach((section) => { section.hidden = section.dataset.view !== view; });
  document.querySelectorAll("[data-view-link]").forEach((link) => {
    link.classList.toggle("active", link.dataset.viewLink === view);
  });
}

async function route() {
  hideMessage();
  if (pendingInfo) showMessage(pendingInfo, "info");
  pendingInfo = null;
  const [name, arg] = location.hash.replace(/^#\/?/, "").split("/");
  const needsLogin = ["orders", "notifications"].includes(name);
  if (needsLogin && !loggedIn()) {
    afterLogin = location.hash;
    show("login");
    showMessage("Please log in first.", "info");
    return;
  }
  try {
    if (name === "product" && arg) { show("product"); await loadProduct(decodeURIComponent(arg)); }
    else if (name === "login") show("login");
    else if (name === "cart") { show("cart"); renderCart(); }
    else if (name === "orders") { show("orders"); await loadOrders(); }
    else if (name === "notifications") { show("notifications"); await loadNotifications(); }
    else { show("shop"); await loadProducts(); }
  } catch (error) {
    showMessage(error.message || "Something went wrong.");
  }
}

// ---- account -----------------------------------------------------------------------------------
function renderAccount() {
  const user = store.get("user");
  const inSession = loggedIn();
  $("#user-email").textContent = user?.email || "";
  $("#user-email").hidden = !inSession;
  $("#logout").hidden = !inSession;
  $("#nav-login").hidden = inSession;
  document.querySelectorAll("[data-needs-login]").forEach((link) => { link.hidden = !inSession; });
  $("#checkout-login-hint").hidden = inSession;
}

// A session from another tab (the cookies are shared, sessionStorage is not): who is it?
async function loadUser() {
  if (!loggedIn() || store.get("user")) return;
  try {
    store.set("user", await api("GET", "/api/users/me"));
  } catch {
    // a dead session was cleared on the way (api's 401 handling)
  }
  renderAccount();
}

async function logIn(email, password) {
  await api("POST", "/api/auth/login", { body: { email, password, session: "cookie" }, auth: false });
  store.set("user", await api("GET", "/api/users/me"));
  renderAccount();
  const target = afterLogin;
  afterLogin = "#/shop";
  go(target, `Welcome, ${store.get("user")?.name || email}.`);
}

async function onLogin() {
  await logIn($("#login-email").value.trim(), $("#login-password").value);
  $("#login-password").value = "";
}

async function onRegister() {
  const email = $("#register-email").value.trim();
  const password = $("#register-password").value;
  await api("POST", "/api/auth/register", { body: { email, password, name: $("#register-name").value.trim() }, auth: false });
  $("#register-password").value = "";
  await logIn(email, password);
}

async function onLogout() {
  try {
    // The refresh cookie goes along; the answer clears the session cookies.
    if (loggedIn()) await api("POST", "/api/auth/logout", { body: {} });
  } finally {
    clearSession();  // whatever the server said, this tab forgets the session
    go("#/shop", "You are logged out.");
  }
}

// ---- catalog -----------------------------------------------------------------------------------
const shop = { q: "", category: "", page: 1 };
let categoriesLoaded = false;

async function loadCategories() {
  if (categoriesLoaded) return;
  // The catalog has no category endpoint: collect them from the (small) product list.
  const found = new Set();
  for (let page = 1; page <= 5; page += 1) {
    const data = await api("GET", `/api/products?page=${page}&page_size=100`);
    data.items.forEach((p) => found.add(p.category));
    if (page * 100 >= data.total) break;
  }
  const select = $("#category-select");
  [...found].sort().forEach((category) => select.append(el("option", { value: category, text: category })));
  categoriesLoaded = true;
}

async function loadProducts() {
  loadCategories().catch(() => {});  // the filter is a nicety; the grid must not wait for it
  const params = new URLSearchParams({ page: shop.page, page_size: PAGE_SIZE });
  if (shop.q) params.set("q", shop.q);
  if (shop.category) params.set("category", shop.category);
  const data = await api("GET", `/api/products?${params}`);
  const grid = $("#product-grid");
  grid.replaceChildren(...data.items.map(productCard));
  if (!data.items.length) grid.append(el("p", { class: "muted", text: "No products match." }));
  const pages = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
  $("#page-info").textContent = `Page ${data.page} of ${pages} · ${data.total} products`;
  $("#page-prev").disabled = data.page <= 1;
  $("#page-next").disabled = data.page >= pages;
}

function productCard(product) {
  const href = `#/product/${encodeURIComponent(product.id)}`;
  return el("article", { class: "card product", "data-testid": "product-card", "data-product-id": product.id },
    el("p", { class: "category", text: product.category }),
    el("h3", {}, el("a", { href, "data-testid": "product-link", text: product.name })),
    el("p", { class: "muted", text: product.description }),
    el("div", { class: "actions" },
      el("span", { class: "price", text: money(product.price, product.currency) }),
      el("button", { type: "button", "data-testid": "add-to-cart", onclick: () => addToCart(product, 1) }, "Add to cart")));
}

let detailProduct = null;

async function loadProduct(id) {
  const [product, stock] = await Promise.allSettled([
    api("GET", `/api/products/${encodeURIComponent(id)}`),
    api("GET", `/api/inventory/${encodeURIComponent(id)}`),
  ]);
  if (product.status === "rejected") throw product.reason;
  detailProduct = product.value;
  $("#detail-category").textContent = detailProduct.category;
  $("#detail-name").textContent = detailProduct.name;
  $("#detail-description").textContent = detailProduct.description;
  $("#detail-price").textContent = money(detailProduct.price, detailProduct.currency);
  const stockLine = $("#detail-stock");
  const available = stock.status === "fulfilled" ? stock.value.available : null;
  stockLine.textContent = available === null ? "Stock unknown right now"
    : available > 0 ? `${available} in stock` : "Out of stock";
  stockLine.classList.toggle("out", !(available > 0));
  $("#detail-quantity").value = 1;
}

// ---- cart --------------------------------------------------------------------------------------
const cart = () => store.get("cart") || [];

function saveCart(lines) {
  store.set("cart", lines);
  $("#cart-count").textContent = lines.reduce((n, line) => n + line.quantity, 0);
}

function addToCart(product, quantity) {
  const lines = cart();
  const line = lines.find((l) => l.product_id === product.id);
  if (line) line.quantity = Math.min(100, line.quantity + quantity);
  else lines.push({ product_id: product.id, name: product.name, price: product.price, currency: product.currency, quantity });
  saveCart(lines);
  showMessage(`${product.name} added to the cart.`, "info");
}

function setQuantity(productId, quantity) {
  const lines = cart()
    .map((l) => (l.product_id === productId ? { ...l, quantity: Math.min(100, quantity) } : l))
    .filter((l) => l.quantity > 0);
  saveCart(lines);
  renderCart();
}

function renderCart() {
  const lines = cart();
  $("#cart-empty").hidden = lines.length > 0;
  $("#cart-table").hidden = lines.length === 0;
  $("#checkout-form").hidden = lines.length === 0;
  // Whole cents, so the total does not drift the way float sums do.
  const cents = lines.reduce((sum, l) => sum + Math.round(l.price * 100) * l.quantity, 0);
  $("#cart-total").textContent = money(cents / 100, lines[0]?.currency);
  $("#cart-lines").replaceChildren(...lines.map((line) => el("tr", { "data-testid": "cart-line", "data-product-id": line.product_id },
    el("td", { text: line.name }),
    el("td", { text: money(line.price, line.currency) }),
    el("td", {}, el("input", {
      type: "number", min: "0", max: "100", value: String(line.quantity), "aria-label": "Quantity", "data-testid": "cart-quantity",
      onchange: (event) => setQuantity(line.product_id, Math.max(0, parseInt(event.target.value, 10) || 0)),
    })),
    el("td", { text: money((Math.round(line.price * 100) * line.quantity) / 100, line.currency) }),
    el("td", {}, el("button", { type: "button", class: "ghost", "data-testid": "remove-from-cart", onclick: () => setQuantity(line.product_id, 0) }, "Remove")))));
}

async function onCheckout() {
  if (!loggedIn()) {
    afterLogin = "#/cart";
    go("#/login", "Please log in to check out.");
    return;
  }
  const value = (id) => $(id).value.trim();
  const address = {
    name: value("#ship-name"), line1: value("#ship-line1"), city: value("#ship-city"),
    postal_code: value("#ship-postal-code"), country: value("#ship-country").toUpperCase(),
  };
  if (value("#ship-line2")) address.line2 = value("#ship-line2");
  const order = await api("POST", "/api/orders", {
    body: {
      items: cart().map((l) => ({ product_id: l.product_id, quantity: l.quantity })),
      payment: { token: $("#payment-token").value },
      shipping_address: address,
    },
    // A fresh key per attempt; the automatic retry after a token refresh reuses it.
    headers: { "Idempotency-Key": newIdempotencyKey() },
  });
  saveCart([]);
  go("#/orders", `Order placed (${order.status}). We will update its status here.`);
}

// ---- orders ------------------------------------------------------------------------------------
let orders = [];
const polling = new Set();

async function loadOrders() {
  const data = await api("GET", "/api/orders?page=1&page_size=50");
  orders = data.items;
  renderOrders();
  orders.filter((o) => o.status === "PENDING").forEach((o) => pollOrder(o.id, (x) => x.status !== "PENDING"));
}

function replaceOrder(order) {
  const index = orders.findIndex((o) => o.id === order.id);
  if (index >= 0) orders[index] = order;
  else orders.unshift(order);
  renderOrders();
}

// Asks for the order every second until `done(order)` or the time is up.
async function pollOrder(id, done) {
  if (polling.has(id)) return;
  polling.add(id);
  const deadline = Date.now() + POLL_FOR_MS;
  try {
    while (Date.now() < deadline && loggedIn()) {
      await new Promise((resolve) => setTimeout(resolve, POLL_EVERY_MS));
      const order = await api("GET", `/api/orders/${encodeURIComponent(id)}`);
      replaceOrder(order);
      if (done(order)) return;
    }
  } catch (error) {
    showMessage(error.message);
  } finally {
    polling.delete(id);
  }
}

async function cancelOrder(order) {
  await api("POST", `/api/orders/${encodeURIComponent(order.id)}/cancel`);
  showMessage("Cancellation requested.", "info");
  await pollOrder(order.id, (o) => o.status === "CANCELLED");
}

function orderRow(order) {
  const cancellable = order.status === "PENDING" || order.status === "CONFIRMED";
  const when = order.created_at ? new Date(order.created_at).toLocaleString() : "";
  return el("article", { class: "card", "data-testid": "order-row", "data-order-id": order.id },
    el("div", { class: "order-head" },
      el("span", { class: `status ${order.status}`, "data-testid": "order-status", text: order.status }),
      el("span", { class: "reason", "data-testid": "order-status-reason", text: order.status_reason || "" }),
      el("span", { class: "grow" }),
      el("span", { class: "price", text: money(order.total, order.currency) }),
      cancellable ? el("button", { type: "button", class: "danger", "data-testid": "cancel-order", onclick: guard(() => cancelOrder(order)) }, "Cancel") : null),
    el("div", { class: "order-head" },
      el("span", { class: "id", text: `Order ${order.id}` }),
      el("span", { class: "muted", text: when })),
    el("ul", { class: "order-items" }, ...(order.items || []).map((item) => el("li", {
      text: `${item.quantity} × ${item.name || item.product_id}${item.unit_price !== undefined ? ` at ${money(item.unit_price, order.currency)}` : ""}`,
    }))));
}

function renderOrders() {
  $("#orders-empty").hidden = orders.length > 0;
  $("#order-list").replaceChildren(...orders.map(orderRow));
}

// ---- notifications -----------------------------------------------------------------------------
async function loadNotifications() {
  const data = await api("GET", "/api/notifications");
  const items = Array.isArray(data) ? data : data?.items || [];
  $("#notifications-empty").hidden = items.length > 0;
  $("#notification-list").replaceChildren(...items.map((n) => el("li", { class: "card", "data-testid": "notification-item", "data-type": n.type },
    el("div", { text: n.message }),
    el("div", { class: "note-time", text: `${n.type} · ${n.created_at ? new Date(n.created_at).toLocaleString() : ""}` }))));
}

// ---- wiring ------------------------------------------------------------------------------------
function start() {
  $("#search-form").addEventListener("submit", guard(async () => {
    Object.assign(shop, { q: $("#search-input").value.trim(), category: $("#category-select").value, page: 1 });
    if (location.hash.startsWith("#/shop") || !location.hash) await loadProducts();
    else go("#/shop");
  }));
  $("#category-select").addEventListener("change", () => $("#search-form").requestSubmit());
  $("#page-prev").addEventListener("click", guard(async () => { shop.page = Math.max(1, shop.page - 1); await loadProducts(); }));
  $("#page-next").addEventListener("click", guard(async () => { shop.page += 1; await loadProducts(); }));
  $("#detail-add").addEventListener("click", () => {
    if (detailProduct) addToCart(detailProduct, Math.max(1, parseInt($("#detail-quantity").value, 10) || 1));
  });
  $("#login-form").addEventListener("submit", guard(onLogin));
  $("#register-form").addEventListener("submit", guard(onRegister));
  $("#logout").addEventListener("click", guard(onLogout));
  $("#checkout-form").addEventListener("submit", guard(onCheckout));
  $("#orders-refresh").addEventListener("click", guard(loadOrders));
  $("#notifications-refresh").addEventListener("click", guard(loadNotifications));
  window.addEventListener("hashchange", route);
  ["access", "refresh"].forEach((key) => store.set(key, null));  // tokens an older version kept here
  saveCart(cart());
  renderAccount();
  loadUser();
  route();
}

document.addEventListener("DOMContentLoaded", start);
