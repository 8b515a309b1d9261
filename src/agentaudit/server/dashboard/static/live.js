// Live feed: events from /live/stream (Server-Sent Events) prepended to the table.
"use strict";
(function () {
  const MAX_ROWS = 500;
  const body = document.getElementById("feed");
  const state = document.getElementById("live-state");
  const pauseButton = document.getElementById("pause");
  const form = document.getElementById("live-filters");
  const ICON = { ok: "✔", error: "✖", warning: "⚠" };
  let source = null;
  let paused = false;
  let held = [];
  let received = 0;

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function ms(v) {
    if (v === null || v === undefined) return "—";
    return v >= 10000 ? (v / 1000).toFixed(1) + " s" : v >= 100 ? Math.round(v) + " ms" : v.toFixed(1) + " ms";
  }

  function row(ev) {
    const tr = document.createElement("tr");
    tr.className = "fresh";
    const time = document.createElement("td");
    const t = document.createElement("time");
    t.textContent = ev.timestamp;
    time.appendChild(t);
    tr.appendChild(time);
    tr.appendChild(cell(ev.agent));
    tr.appendChild(cell((ev.type || "").replace(/^agent\./, "")));
    tr.appendChild(cell(ev.action || ""));
    const st = document.createElement("td");
    const span = document.createElement("span");
    span.className = "status s-" + ev.status;
    span.textContent = (ICON[ev.status] || "•") + " " + ev.status;
    st.appendChild(span);
    tr.appendChild(st);
    const d = cell(ms(ev.duration));
    d.className = "n";
    tr.appendChild(d);
    const tc = document.createElement("td");
    if (ev.trace_id) {
      const a = document.createElement("a");
      a.href = "/traces/" + encodeURIComponent(ev.trace_id) + "#ev-" + encodeURIComponent(ev.event_id);
      a.textContent = ev.trace_id.length > 12 ? ev.trace_id.slice(0, 12) + "…" : ev.trace_id;
      tc.appendChild(a);
    }
    tr.appendChild(tc);
    return tr;
  }

  function show(ev) {
    body.insertBefore(row(ev), body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  }

  function status() {
    const what = paused ? "paused, " + held.length + " new event(s) held" : "● live";
    state.textContent = what + " · " + received + " received";
  }

  function connect() {
    if (source) source.close();
    const params = new URLSearchParams(new FormData(form));
    for (const [k, v] of Array.from(params.entries())) if (!v) params.delete(k);
    source = new EventSource("/live/stream?" + params.toString());
    source.onopen = status;
    source.onerror = function () { state.textContent = "✖ disconnected, retrying…"; };
    source.addEventListener("audit", function (msg) {
      received += 1;
      const ev = JSON.parse(msg.data);
      if (paused) { held.push(ev); if (held.length > MAX_ROWS) held.shift(); } else show(ev);
      status();
    });
  }

  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.setAttribute("aria-pressed", String(paused));
    pauseButton.textContent = paused ? "▶ Resume" : "Pause";
    if (!paused) { held.forEach(show); held = []; }
    status();
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const params = new URLSearchParams(new FormData(form));
    history.replaceState(null, "", "/live?" + params.toString());
    while (body.rows.length) body.deleteRow(0);
    connect();
  });
  connect();
})();
