// The DAG views' interactions: graph zoom and pan, the trigger and backfill forms, run and
// task-instance actions, and a task's live log. Every write is a fetch to /api/v2 with the
// CSRF header, so the API checks permissions and records the audit row; pages work without
// this script.
"use strict";
(function () {
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // A JSON call to the public API: resolves to {ok, status, body}.
  function api(method, url, body) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf() },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      return r.text().then(function (text) {
        var parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = { detail: text }; }
        return { ok: r.ok, status: r.status, body: parsed };
      });
    });
  }

  // The reason an API answer gives, as text.
  function reason(answer) {
    var d = answer.body && answer.body.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) return d.map(function (e) { return e.msg || JSON.stringify(e); }).join("; ");
    return "The server answered " + answer.status;
  }

  // Asks before a destructive action: the shell's dialog when app.js is there.
  function confirmed(message) {
    if (window.updraft && window.updraft.confirmAction) return window.updraft.confirmAction(message);
    return Promise.resolve(window.confirm(message));
  }

  function say(el, text, isError) {
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  // ---- Graph: zoom with the wheel or buttons, pan by dragging; the view box survives live swaps.
  function setupGraph(box) {
    var view = null;
    function svg() { return box.querySelector("svg.graph"); }
    function current() {
      var s = svg();
      if (!s) return null;
      if (!view) {
        // The whole graph: the size the server laid it out at (width and height attributes).
        var w = Number(s.getAttribute("width")) || s.viewBox.baseVal.width;
        var h = Number(s.getAttribute("height")) || s.viewBox.baseVal.height;
        view = { x: 0, y: 0, w: w, h: h, w0: w, h0: h };
      }
      return s;
    }
    function apply() {
      var s = current();
      if (s && view) s.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" "));
    }
    function zoom(factor, cx, cy) {
      if (!current()) return;
      var nw = Math.min(Math.max(view.w * factor, view.w0 / 20), view.w0 * 4);
      var k = nw / view.w;
      view.x = cx - (cx - view.x) * k;
      view.y = cy - (cy - view.y) * k;
      view.w = nw;
      view.h = view.h * k;
      apply();
    }
    box.addEventListener("wheel", function (e) {
      var s = current();
      if (!s) return;
      e.preventDefault();
      var r = s.getBoundingClientRect();
      var cx = view.x + (e.clientX - r.left) / r.width * view.w;
      var cy = view.y + (e.clientY - r.top) / r.height * view.h;
      zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, cx, cy);
    }, { passive: false });
    var drag = null;
    box.addEventListener("pointerdown", function (e) {
      if (e.target.closest("a") || !current()) return;
      drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y };
      box.setPointerCapture(e.pointerId);
    });
    box.addEventListener("pointermove", function (e) {
      var s = svg();
      if (!drag || !s) return;
      var r = s.getBoundingClientRect();
      view.x = drag.vx - (e.clientX - drag.x) / r.width * view.w;
      view.y = drag.vy - (e.clientY - drag.y) / r.height * view.h;
      apply();
    });
    box.addEventListener("pointerup", function () { drag = null; });
    document.querySelectorAll("[data-graph-zoom]").forEach(function (b) {
      b.addEventListener("click", function () {
        if (!current()) return;
        var how = b.getAttribute("data-graph-zoom");
        if (how === "reset") {
          view = null;
          current();
          apply();
        } else {
          zoom(how === "in" ? 1 / 1.3 : 1.3, view.x + view.w / 2, view.y + view.h / 2);
        }
      });
    });
    // A live update replaces the SVG: keep the user's view.
    new MutationObserver(function () { if (view) apply(); }).observe(box, { childList: true, subtree: true });
  }

  // ---- Trigger form: fields generated from the params, or the conf as JSON.
  function fieldValue(input) {
    var type = input.getAttribute("data-type") || "";
    if (input.type === "checkbox") return input.checked;
    var raw = input.value;
    if (raw === "" && input.getAttribute("data-nullable") === "true") return null;
    if (raw === "" && !input.required) return undefined;
    if (type === "integer") return parseInt(raw, 10);
    if (type === "number") return Number(raw);
    if (type === "array" || type === "object" || type === "") {
      try { return JSON.parse(raw); } catch (e) {
        if (type === "") return raw;
        throw new Error(input.getAttribute("data-param") + ": not valid JSON (" + e.message + ")");
      }
    }
    if (input.getAttribute("data-format") === "date-time" && raw) {
      return new Date(raw).toISOString();
    }
    return raw;
  }

  function confFromFields(form) {
    var conf = {};
    form.querySelectorAll("[data-param]").forEach(function (input) {
      var v = fieldValue(input);
      if (v !== undefined) conf[input.getAttribute("data-param")] = v;
    });
    return conf;
  }

  function fieldsFromConf(form, conf) {
    form.querySelectorAll("[data-param]").forEach(function (input) {
      var name = input.getAttribute("data-param");
      if (!(name in conf)) return;
      var v = conf[name];
      if (input.type === "checkbox") input.checked = !!v;
      else if (v === null) input.value = "";
      else if (typeof v === "object" || input.getAttribute("data-type") === "") input.value = JSON.stringify(v);
      else if (input.getAttribute("data-format") === "date-time") input.value = String(v).slice(0, 16);
      else input.value = String(v);
    });
  }

  function setupTrigger(form) {
    var status = form.querySelector("[data-trigger-status]");
    var json = form.querySelector("[data-conf-json]");
    var toggle = form.querySelector("[data-conf-mode]");
    var fields = form.querySelector("[data-conf-fields]");
    function jsonMode() { return toggle && toggle.checked; }
    if (toggle) {
      toggle.addEventListener("change", function () {
        try {
          if (jsonMode()) {
            json.value = JSON.stringify(confFromFields(form), null, 2);
          } else {
            fieldsFromConf(form, JSON.parse(json.value || "{}"));
          }
          say(status, "", false);
        } catch (e) {
          say(status, e.message, true);
        }
        json.closest("[data-conf-editor]").hidden = !jsonMode();
        if (fields) fields.hidden = jsonMode();
        form.querySelectorAll("[data-param]").forEach(function (i) { i.disabled = jsonMode(); });
      });
    }
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var conf;
      try {
        if (jsonMode()) {
          conf = JSON.parse(json.value || "{}");
          if (conf === null || typeof conf !== "object" || Array.isArray(conf)) {
            throw new Error("The conf must be a JSON object");
          }
        } else {
          if (!form.reportValidity()) return;
          conf = confFromFields(form);
        }
      } catch (err) {
        say(status, err.message, true);
        return;
      }
      var body = { conf: conf };
      var runId = form.querySelector("[name=dag_run_id]");
      if (runId && runId.value.trim()) body.dag_run_id = runId.value.trim();
      var date = form.querySelector("[name=logical_date]");
      if (date && date.value) body.logical_date = new Date(date.value).toISOString();
      var note = form.querySelector("[name=note]");
      if (note && note.value.trim()) body.note = note.value;
      say(status, "Triggering…", false);
      api("POST", form.getAttribute("data-api"), body).then(function (a) {
        if (!a.ok) { say(status, reason(a), true); return; }
        window.location.href = form.getAttribute("data-after") + "/runs/" + encodeURIComponent(a.body.dag_run_id);
      }, function (err) { say(status, String(err), true); });
    });
  }

  // ---- Backfill form: a dry run lists the logical dates; creating one reloads the list.
  // A datetime-local value is read as UTC, as the form's labels say.
  function utcInstant(input, label) {
    var raw = input.value;
    if (!raw) throw new Error(label + " is required");
    var withSeconds = raw.length === 16 ? raw + ":00" : raw;
    var at = new Date(withSeconds + "Z");
    if (isNaN(at.getTime())) throw new Error(label + " is not a date and time: " + raw);
    return at.toISOString();
  }

  function backfillBody(form) {
    var field = function (n) { return form.querySelector("[name=" + n + "]"); };
    var conf = field("dag_run_conf").value.trim() || "{}";
    try { conf = JSON.parse(conf); } catch (e) {
      throw new Error("The conf is not valid JSON (" + e.message + ")");
    }
    if (conf === null || typeof conf !== "object" || Array.isArray(conf)) {
      throw new Error("The conf must be a JSON object");
    }
    var max = Number(field("max_active_runs").value);
    if (!Number.isInteger(max) || max < 1) throw new Error("Max active runs must be a whole number of at least 1");
    return {
      dag_id: form.getAttribute("data-dag-id"),
      from_date: utcInstant(field("from_date"), "From"),
      to_date: utcInstant(field("to_date"), "To"),
      reprocess_behavior: field("reprocess_behavior").value,
      max_active_runs: max,
      run_backwards: field("run_backwards").checked,
      dag_run_conf: conf,
    };
  }

  function setupBackfill(form) {
    var status = form.querySelector("[data-backfill-status]");
    var preview = form.querySelector("[data-backfill-preview]");
    function send(dryRun) {
      var body;
      try { body = backfillBody(form); } catch (err) { say(status, err.message, true); return; }
      preview.hidden = true;
      say(status, dryRun ? "Planning…" : "Creating…", false);
      // Not data-api: app.js sends every form that has one by itself.
      var url = form.getAttribute("data-backfill-api") + (dryRun ? "/dry_run" : "");
      api("POST", url, body).then(function (a) {
        if (!a.ok) { say(status, reason(a), true); return; }
        if (!dryRun) { window.location.reload(); return; }
        var dates = a.body.backfills || [];
        say(status, dates.length + " run" + (dates.length === 1 ? "" : "s") + " would be created.", false);
        preview.textContent = "";
        var ul = document.createElement("ul");
        dates.forEach(function (d) {
          var li = document.createElement("li");
          li.textContent = d.logical_date;
          ul.appendChild(li);
        });
        preview.appendChild(ul);
        preview.hidden = false;
      }, function (err) { say(status, String(err), true); });
    }
    form.querySelector("[data-backfill-dry-run]").addEventListener("click", function () { send(true); });
    form.addEventListener("submit", function (e) { e.preventDefault(); send(false); });
  }

  // ---- Run and task-instance actions: clear with a dry-run preview, mark, note.
  function clearBody(box, dryRun) {
    var opt = function (n) { var i = box.querySelector("[name=" + n + "]"); return !!(i && i.checked); };
    var body = {
      dry_run: dryRun,
      dag_run_id: box.getAttribute("data-run-id"),
      only_failed: opt("only_failed"),
      include_upstream: opt("include_upstream"),
      include_downstream: opt("include_downstream"),
    };
    var task = box.getAttribute("data-task-id");
    var mapIndex = box.getAttribute("data-map-index");
    // One instance of a mapped task: Airflow's [task_id, map_index].
    if (task) body.task_ids = mapIndex === null ? [task] : [[task, Number(mapIndex)]];
    return body;
  }

  function setupClear(box) {
    var out = box.querySelector("[data-clear-preview]");
    var status = box.querySelector("[data-action-status]");
    var confirmButton = box.querySelector("[data-clear-confirm]");
    box.querySelector("[data-clear-preview-button]").addEventListener("click", function () {
      api("POST", box.getAttribute("data-api"), clearBody(box, true)).then(function (a) {
        if (!a.ok) { say(status, reason(a), true); return; }
        out.textContent = "";
        var tis = a.body.task_instances || [];
        var head = document.createElement("p");
        head.textContent = tis.length + " task instance" + (tis.length === 1 ? "" : "s") + " will be cleared:";
        out.appendChild(head);
        var ul = document.createElement("ul");
        tis.forEach(function (ti) {
          var li = document.createElement("li");
          li.textContent = ti.task_id + " (" + (ti.state || "none") + ")";
          ul.appendChild(li);
        });
        out.appendChild(ul);
        out.hidden = false;
        confirmButton.hidden = tis.length === 0;
      });
    });
    confirmButton.addEventListener("click", function () {
      confirmed("Clear these task instances so that they run again?").then(function (ok) {
      if (!ok) return;
      api("POST", box.getAttribute("data-api"), clearBody(box, false)).then(function (a) {
        if (!a.ok) { say(status, reason(a), true); return; }
        say(status, "Cleared " + (a.body.task_instances || []).length + " task instance(s).", false);
        out.hidden = true;
        confirmButton.hidden = true;
      });
      });
    });
  }

  function setupActions() {
    document.querySelectorAll("[data-mark]").forEach(function (b) {
      b.addEventListener("click", function () {
        var state = b.getAttribute("data-mark");
        confirmed("Mark as " + state + "?").then(function (ok) {
        if (!ok) return;
        var body = b.hasAttribute("data-ti") ? { new_state: state } : { state: state };
        var status = document.querySelector("[data-action-status]");
        api("PATCH", b.getAttribute("data-api"), body).then(function (a) {
          if (!a.ok) { say(status, reason(a), true); return; }
          say(status, "Marked " + state + ".", false);
        });
        });
      });
    });
    document.querySelectorAll("form[data-note]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var status = form.querySelector("[data-note-status]");
        var note = form.querySelector("textarea").value;
        api("PATCH", form.getAttribute("data-api"), { note: note }).then(function (a) {
          say(status, a.ok ? "Saved." : reason(a), !a.ok);
        });
      });
    });
  }

  // ---- A task's log: line links, search, and following a running try (NDJSON stream).
  function logLine(number, text) {
    var line = document.createElement("span");
    line.className = "log-line";
    line.id = "L" + number;
    var a = document.createElement("a");
    a.href = "#L" + number;
    a.className = "line-number";
    a.textContent = String(number);
    a.setAttribute("aria-label", "Line " + number);
    line.appendChild(a);
    line.appendChild(document.createTextNode(text));
    return line;
  }

  function messageText(m) {
    var text = "";
    if (m.timestamp) text += "[" + m.timestamp + "] ";
    if (m.logger) text += "{" + m.logger + "} ";
    return text + (m.event || "");
  }

  function setupLog(box) {
    var pre = box.querySelector("[data-log-lines]");
    var search = box.querySelector("[data-log-search]");
    var counter = box.querySelector("[data-log-matches]");
    function filter() {
      if (!search) return;
      var q = search.value.toLowerCase();
      var n = 0;
      pre.querySelectorAll(".log-line").forEach(function (l) {
        var hit = !q || l.textContent.toLowerCase().indexOf(q) >= 0;
        l.classList.toggle("log-hit", !!q && hit);
        l.hidden = !!q && !hit;
        if (q && hit) n += 1;
      });
      if (counter) counter.textContent = q ? n + " matching line" + (n === 1 ? "" : "s") : "";
    }
    if (search) search.addEventListener("input", filter);
    var url = box.getAttribute("data-follow");
    if (url) { follow(url); return; }
    if (!box.hasAttribute("data-await-try")) return;
    // Opened before the try started: read its whole log (following it while the try runs)
    // once the live region says it has started.
    document.addEventListener("updraft:swapped", function started(e) {
      var from = e.target.getAttribute && e.target.getAttribute("data-follow-from-start");
      if (!from) return;
      document.removeEventListener("updraft:swapped", started);
      var empty = box.querySelector("[data-log-empty]");
      if (empty) empty.remove();
      box.setAttribute("data-follow", from);
      follow(from);
    });
    function follow(url) {
      var status = box.querySelector("[data-log-status]");
      say(status, "Following the log while the task runs…", false);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/x-ndjson" } }).then(function (r) {
        if (!r.ok || !r.body) { say(status, "The log cannot be followed (" + r.status + ")", true); return; }
        var reader = r.body.getReader();
        var decoder = new TextDecoder();
        var buffered = "";
        var number = pre.querySelectorAll(".log-line").length;
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) { say(status, "The try has ended.", false); filter(); return; }
            buffered += decoder.decode(chunk.value, { stream: true });
            var parts = buffered.split("\n");
            buffered = parts.pop();
            var atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
            parts.forEach(function (p) {
              if (!p) return;
              try {
                var m = JSON.parse(p);
                if (m.event && m.event.indexOf("::") === 0) return;
                number += 1;
                pre.appendChild(logLine(number, messageText(m)));
                pre.appendChild(document.createTextNode("\n"));
              } catch (e) { /* a partial line: ignore */ }
            });
            filter();
            if (atBottom) window.scrollTo(0, document.body.scrollHeight);
            return pump();
          });
        }
        return pump();
      }, function (err) { say(status, String(err), true); });
    }
  }

  // ---- Grid: cells are plain table cells (20,000 links would make a big grid slow); a cell's
  // task instance is its column's run prefix plus its row's task. Listeners sit on the document
  // so they survive the live swaps of the grid's region.
  function gridCell(target) {
    var td = target && target.closest ? target.closest("table.grid td") : null;
    return td && td.className ? td : null;
  }
  function cellParts(td) {
    var row = td.parentElement;
    var table = td.closest("table");
    var col = td.cellIndex;
    var head = table.tHead.rows[0].cells[col];
    var task = row.cells[0];
    return { run: head, task: task, href: head.getAttribute("data-cells") + task.getAttribute("data-task") };
  }
  function seconds(ms) {
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + "s";
    var whole = Math.round(s), h = Math.floor(whole / 3600), m = Math.floor(whole % 3600 / 60), r = whole % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return h > 0 ? h + "h " + pad(m) + "m " + pad(r) + "s" : m + "m " + pad(r) + "s";
  }
  function cellLabel(td) {
    var parts = cellParts(td);
    // A mapped task's cell names its instances: "3/4 success".
    var state = td.getAttribute("data-mapped") || td.className.replace(/^state-/, "").replace(/_/g, " ");
    var ms = (td.parentElement.getAttribute("data-ms") || "").split(",")[td.cellIndex - 1] || null;
    return parts.task.textContent.trim() + ", " + parts.run.getAttribute("data-run") + ": " + state + (ms !== null ? ", " + seconds(Number(ms)) : "");
  }
  function focusCell(table, td) {
    table.querySelectorAll("td[tabindex]").forEach(function (c) { c.removeAttribute("tabindex"); });
    td.setAttribute("tabindex", "0");
    td.setAttribute("aria-label", cellLabel(td));
    td.focus();
  }
  // A task group's rows fold under its summary row; which groups are folded survives the
  // live swaps of the region (and reloads of the tab).
  function foldedKey() { return "updraft-folded:" + location.pathname; }
  function folded() {
    try { return JSON.parse(sessionStorage.getItem(foldedKey()) || "[]"); } catch (e) { return []; }
  }
  function applyFolds(root) {
    var closed = folded();
    root.querySelectorAll("[data-group-toggle]").forEach(function (button) {
      var group = button.getAttribute("data-group-toggle");
      var open = closed.indexOf(group) < 0;
      button.setAttribute("aria-expanded", open ? "true" : "false");
      root.querySelectorAll("tr[data-in-group]").forEach(function (tr) {
        if (tr.getAttribute("data-in-group") === group) tr.hidden = !open;
      });
    });
  }
  function toggleGroup(button) {
    var group = button.getAttribute("data-group-toggle");
    var closed = folded().filter(function (g) { return g !== group; });
    if (button.getAttribute("aria-expanded") === "true") closed.push(group);
    try { sessionStorage.setItem(foldedKey(), JSON.stringify(closed)); } catch (e) { /* private mode */ }
    applyFolds(document);
  }
  function groupButton(td) {
    return td.parentElement.classList.contains("group-row") ? td.parentElement.querySelector("[data-group-toggle]") : null;
  }

  // Rows past the first screen arrive in a <template>: moved into the table a few at a time
  // once the page has been painted, so that a big grid shows its first screen at once.
  function fillGrid(root, done) {
    var templates = root.querySelectorAll("template[data-grid-rest]");
    if (!templates.length) { done(); return; }
    var pending = templates.length;
    templates.forEach(function (template) {
      var body = template.parentElement.querySelector("tbody");
      var rows = Array.prototype.slice.call(template.content.querySelectorAll("tr"));
      function step() {
        rows.splice(0, 40).forEach(function (tr) { body.appendChild(tr); });
        if (rows.length) { requestAnimationFrame(step); return; }
        template.remove();
        if (--pending === 0) done();
      }
      requestAnimationFrame(step);
    });
  }

  function setupGrid() {
    var filled = function () {
      applyFolds(document);
      if (document.querySelector("table.grid")) document.documentElement.setAttribute("data-grid-complete", String(Math.round(performance.now())));
    };
    if (document.readyState === "complete") fillGrid(document, filled);
    else window.addEventListener("load", function () { fillGrid(document, filled); });
    applyFolds(document);
    document.addEventListener("updraft:swapped", function (e) { if (e.target.querySelector) applyFolds(e.target); });
    document.addEventListener("mouseover", function (e) {
      var td = gridCell(e.target);
      if (td && !td.title) td.title = cellLabel(td);
    });
    document.addEventListener("click", function (e) {
      var toggle = e.target.closest ? e.target.closest("[data-group-toggle]") : null;
      if (toggle) { toggleGroup(toggle); return; }
      var td = gridCell(e.target);
      if (!td) return;
      if (groupButton(td)) { toggleGroup(groupButton(td)); return; }
      var href = cellParts(td).href;
      if (e.ctrlKey || e.metaKey) window.open(href, "_blank");
      else location.assign(href);
    });
    document.addEventListener("focusin", function (e) {
      // Tabbing into the grid lands on its first task instance.
      if (!e.target.matches || !e.target.matches("table.grid[data-grid]")) return;
      var first = e.target.querySelector("tbody td[class]");
      if (first) focusCell(e.target, first);
    });
    document.addEventListener("keydown", function (e) {
      var td = e.target && e.target.closest ? e.target.closest("table.grid tbody td") : null;
      if (!td) return;
      var table = td.closest("table");
      var row = td.parentElement, col = td.cellIndex, rows = table.tBodies[0].rows;
      var next = null;
      if (e.key === "Enter" || e.key === " ") {
        if (groupButton(td)) { e.preventDefault(); toggleGroup(groupButton(td)); return; }
        if (td.className) { e.preventDefault(); location.assign(cellParts(td).href); }
        return;
      }
      if (e.key === "ArrowRight") next = row.cells[col + 1];
      else if (e.key === "ArrowLeft" && col > 1) next = row.cells[col - 1];
      else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        var step = e.key === "ArrowDown" ? 1 : -1;
        for (var i = row.sectionRowIndex + step; i >= 0 && i < rows.length; i += step) {
          if (!rows[i].hidden) { next = rows[i].cells[col]; break; }
        }
      }
      if (next) { e.preventDefault(); focusCell(table, next); }
    });
  }

  // ---- Why a task instance is not running: the API's dependencies endpoint.
  function setupDeps(box) {
    var list = box.querySelector("[data-deps-list]");
    api("GET", box.getAttribute("data-deps")).then(function (a) {
      if (!a.ok || !list) return;
      list.textContent = "";
      var deps = (a.body && a.body.dependencies) || [];
      if (deps.length === 0) {
        var none = document.createElement("li");
        none.textContent = "Nothing holds it back.";
        list.appendChild(none);
      }
      deps.forEach(function (d) {
        var li = document.createElement("li");
        var name = document.createElement("strong");
        name.textContent = d.name + ": ";
        li.appendChild(name);
        li.appendChild(document.createTextNode(d.reason));
        list.appendChild(li);
      });
    });
  }

  document.querySelectorAll("[data-deps]").forEach(setupDeps);
  document.querySelectorAll("[data-graph]").forEach(setupGraph);
  document.querySelectorAll("form[data-trigger]").forEach(setupTrigger);
  document.querySelectorAll("form[data-backfill]").forEach(setupBackfill);
  document.querySelectorAll("[data-clear]").forEach(setupClear);
  document.querySelectorAll("[data-log]").forEach(setupLog);
  setupActions();
  setupGrid();
})();
