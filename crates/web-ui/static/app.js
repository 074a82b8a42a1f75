// updraft's web UI: the little JavaScript on top of server-rendered pages. Every page works
// without it; it adds writes through the public API (with the CSRF header), confirmations,
// keyboard shortcuts, the theme and time-zone choices, and live updates over /ui/events.
"use strict";
(function () {
  const doc = document;

  // ---- CSRF fetch helper -----------------------------------------------------------------
  function csrfToken() {
    const match = doc.cookie.match(/(?:^|;\s*)_csrf=([^;]*)/);
    if (match) return decodeURIComponent(match[1]);
    const meta = doc.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /** Calls the public API as the signed-in user; resolves to the parsed JSON (or null). */
  async function api(method, url, body) {
    const headers = { "X-CSRF-Token": csrfToken(), "Accept": "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
    if (!response.ok) {
      let detail = data && data.detail !== undefined ? data.detail : data;
      if (typeof detail !== "string") detail = JSON.stringify(detail);
      throw new Error(response.status + ": " + detail);
    }
    return data;
  }

  function toast(message, isError) {
    const el = doc.createElement("div");
    el.className = "toast" + (isError ? " error" : "");
    el.setAttribute("role", isError ? "alert" : "status");
    el.textContent = message;
    doc.body.appendChild(el);
    setTimeout(() => el.remove(), isError ? 8000 : 3000);
  }

  // ---- Confirmations -----------------------------------------------------------------------
  /** Asks before a destructive action; resolves to true when confirmed. */
  function confirmAction(message) {
    return new Promise((resolve) => {
      const dialog = doc.createElement("dialog");
      dialog.setAttribute("aria-labelledby", "confirm-text");
      const p = doc.createElement("p");
      p.id = "confirm-text";
      p.textContent = message;
      const form = doc.createElement("form");
      form.method = "dialog";
      form.className = "inline-form";
      const cancel = doc.createElement("button");
      cancel.value = "cancel";
      cancel.textContent = "Cancel";
      const ok = doc.createElement("button");
      ok.value = "ok";
      ok.className = "button danger";
      ok.textContent = "Confirm";
      form.append(cancel, ok);
      dialog.append(p, form);
      doc.body.appendChild(dialog);
      dialog.addEventListener("close", () => {
        resolve(dialog.returnValue === "ok");
        dialog.remove();
      });
      dialog.showModal();
      cancel.focus();
    });
  }

  // ---- Writes declared in the markup -------------------------------------------------------
  // <form data-api="PATCH /api/v2/variables/{key}" data-confirm="…" data-json-fields="value">
  // sends its fields as a JSON object; empty fields listed in data-omit-empty are left out.
  function formJson(form) {
    const body = {};
    const omitEmpty = (form.dataset.omitEmpty || "").split(/\s+/).filter(Boolean);
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.type === "submit") continue;
      let value = el.type === "checkbox" ? el.checked : el.value;
      if (el.dataset.type === "number") value = value === "" ? null : Number(value);
      if (omitEmpty.includes(el.name) && value === "") continue;
      body[el.name] = value;
    }
    return body;
  }

  doc.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    event.preventDefault();
    if (form.dataset.confirm && !(await confirmAction(form.dataset.confirm))) return;
    const [method, url] = form.dataset.api.split(" ");
    const body = method === "DELETE" ? undefined : formJson(form);
    try {
      await api(method, url, body);
      toast(form.dataset.done || "Saved");
      if (form.dataset.then === "reload" || !form.dataset.then) location.reload();
      else location.assign(form.dataset.then);
    } catch (e) {
      toast(e.message, true);
    }
  });

  // Pause switches: <input type="checkbox" data-pause="dag_id">.
  doc.addEventListener("change", async (event) => {
    const el = event.target;
    if (!(el instanceof HTMLInputElement) || el.dataset.pause === undefined) return;
    const dagId = el.dataset.pause;
    const paused = !el.checked;
    el.disabled = true;
    try {
      await api("PATCH", "/api/v2/dags/" + encodeURIComponent(dagId) + "?update_mask=is_paused",
        { is_paused: paused });
      const label = doc.querySelector('[data-pause-label="' + CSS.escape(dagId) + '"]');
      if (label) label.textContent = paused ? "paused" : "active";
      toast(dagId + (paused ? " paused" : " unpaused"));
    } catch (e) {
      el.checked = !el.checked;
      toast(e.message, true);
    } finally {
      el.disabled = false;
    }
  });

  // ---- Theme -------------------------------------------------------------------------------
  function applyTheme(theme) {
    if (theme) doc.documentElement.dataset.theme = theme;
    else delete doc.documentElement.dataset.theme;
  }
  function currentTheme() {
    const set = doc.documentElement.dataset.theme;
    if (set) return set;
    return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  doc.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-theme-toggle]");
    if (!button) return;
    const next = currentTheme() === "dark" ? "light" : "dark";
    applyTheme(next);
    try { localStorage.setItem("updraft.theme", next); } catch (e) { /* private mode */ }
  });

  // ---- Time zones --------------------------------------------------------------------------
  function tzChoice() {
    try { return localStorage.getItem("updraft.tz") || "UTC"; } catch (e) { return "UTC"; }
  }
  function formatIn(date, zone) {
    const options = {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23", timeZoneName: "short",
    };
    if (zone) options.timeZone = zone;
    try {
      return new Intl.DateTimeFormat("sv-SE", options).format(date);
    } catch (e) {
      return null;
    }
  }
  function applyTimeZone(root) {
    const choice = tzChoice();
    for (const el of (root || doc).querySelectorAll("time[datetime]")) {
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) continue;
      let zone = "UTC";
      if (choice === "browser") zone = undefined;
      else if (choice === "dag") zone = el.dataset.tz || "UTC";
      const text = formatIn(date, zone);
      if (text) el.textContent = text;
    }
    // Beside an instant shown in another zone, its UTC time too.
    for (const el of (root || doc).querySelectorAll(".utc-echo")) {
      el.hidden = choice === "UTC";
    }
  }
  doc.addEventListener("change", (event) => {
    const el = event.target;
    if (!(el instanceof HTMLSelectElement) || el.dataset.tzSelect === undefined) return;
    try { localStorage.setItem("updraft.tz", el.value); } catch (e) { /* private mode */ }
    applyTimeZone();
  });

  // ---- Keyboard shortcuts ------------------------------------------------------------------
  const goTo = { h: "/", d: "/dags", c: "/cluster", a: "/admin" };
  let pendingG = false;
  doc.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement ||
      target instanceof HTMLSelectElement || (target && target.isContentEditable);
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (pendingG) {
      pendingG = false;
      if (goTo[event.key]) { event.preventDefault(); location.assign(goTo[event.key]); }
      return;
    }
    if (event.key === "g") { pendingG = true; return; }
    if (event.key === "/") {
      const search = doc.querySelector("[data-search]");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    } else if (event.key === "?") {
      const footer = doc.querySelector(".footer");
      if (footer) { footer.scrollIntoView(); toast(footer.textContent.trim()); }
    }
  });

  // ---- Live updates ------------------------------------------------------------------------
  // Regions marked data-live="<fragment url>" (and data-live-runs="1 2 3" for the runs they
  // show) are re-fetched when /ui/events says that something they show changed.
  const live = () => Array.from(doc.querySelectorAll("[data-live]"));
  const inflight = new Map();

  async function refresh(region) {
    const url = region.dataset.live;
    if (inflight.get(url)) { inflight.set(url, "again"); return; }
    inflight.set(url, true);
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (response.status === 401) { location.reload(); return; }
      if (!response.ok) return;
      const html = await response.text();
      const focused = doc.activeElement && region.contains(doc.activeElement) ? doc.activeElement.id : null;
      const template = doc.createElement("template");
      template.innerHTML = html;
      const fresh = template.content.firstElementChild;
      if (fresh && fresh.dataset.live) {
        region.replaceWith(fresh);
        applyTimeZone(fresh);
        fresh.dispatchEvent(new CustomEvent("updraft:swapped", { bubbles: true }));
        if (focused) { const el = doc.getElementById(focused); if (el) el.focus(); }
      }
    } finally {
      const again = inflight.get(url) === "again";
      inflight.delete(url);
      if (again) { const current = live().find((r) => r.dataset.live === url); if (current) refresh(current); }
    }
  }

  function concerns(region, change) {
    if (change.everything) return true;
    const kinds = (region.dataset.liveOn || "runs").split(/\s+/);
    if (change.kind && !kinds.includes(change.kind) && !kinds.includes("any")) return false;
    if (change.kind === "runs" && region.dataset.liveRuns !== undefined) {
      const mine = region.dataset.liveRuns.split(/\s+/).filter(Boolean);
      if (mine.length === 0) return true;
      return (change.runs || []).some((id) => mine.includes(String(id)));
    }
    return true;
  }

  // Heartbeats arrive every few seconds from every process: a region that shows them is
  // re-fetched at most once a second for them, however many processes beat.
  const beatTimers = new Map();
  function refreshForBeats(region) {
    const url = region.dataset.live;
    if (beatTimers.has(url)) return;
    beatTimers.set(url, setTimeout(() => {
      beatTimers.delete(url);
      const current = live().find((r) => r.dataset.live === url);
      if (current) refresh(current);
    }, 1000));
  }

  function connect() {
    if (live().length === 0 || !window.EventSource) return;
    const source = new EventSource("/ui/events");
    window.updraft.live = source;
    source.addEventListener("change", (event) => {
      let change;
      try { change = JSON.parse(event.data); } catch (e) { return; }
      for (const region of live()) {
        if (!concerns(region, change)) continue;
        if (change.kind === "jobs") refreshForBeats(region);
        else refresh(region);
      }
    });
    source.addEventListener("error", () => {
      // The browser reconnects by itself after a dropped connection. It gives up only when
      // the server refuses the stream (the session ended): reloading then leads to the form.
      if (source.readyState === EventSource.CLOSED) setTimeout(() => location.reload(), 2000);
    });
  }

  window.updraft = { api, confirmAction, toast, refresh, applyTimeZone };

  function start() {
    const select = doc.querySelector("[data-tz-select]");
    if (select) select.value = tzChoice();
    applyTimeZone();
    connect();
  }
  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", start);
  else start();
})();
