// Remix dashboard front end: one poll per tab per tick, countdowns, character count, toasts.
// No inline scripts or eval (the CSP forbids both), so htmx triggers are plain custom events.
(function () {
  "use strict";
  const baseTitle = document.title;
  const pollMs = Math.max(500, parseFloat(document.body.dataset.pollSeconds || "2") * 1000);

  // Only elements marked data-poll (the whole table, or a detail panel) refresh: one request per
  // tick for the whole page. Hidden tabs skip ticks and catch up as soon as they are visible.
  // The jobs list's auto-refresh switch (table.js) pauses the elements marked data-pausable.
  function tick() {
    if (document.hidden || !window.htmx) return;
    const paused = localStorage.getItem("auto-refresh") === "off";
    document.querySelectorAll("[data-poll]").forEach((el) => {
      if (!(paused && el.hasAttribute("data-pausable"))) htmx.trigger(el, "poll");
    });
  }
  setInterval(tick, pollMs);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });

  // Conditional polls (jobs/views/polls.py): a polled element's data-version (the ETag of what
  // it shows) goes out as If-None-Match, so the server can answer 304 before rendering, or send
  // only the rows that changed. Set by hand, the header also keeps the browser's HTTP cache out
  // of it: a 304 reaches us as a 304 (nothing to swap), never as a replayed old answer.
  document.addEventListener("htmx:configRequest", (e) => {
    const elt = e.detail.elt;
    if (e.detail.verb === "get" && elt && elt.dataset && elt.dataset.version) {
      e.detail.headers["If-None-Match"] = elt.dataset.version;
    }
  });
  document.addEventListener("htmx:beforeSwap", (e) => {
    if (e.detail.xhr.status === 304) e.detail.shouldSwap = false;
  });
  document.addEventListener("htmx:afterRequest", (e) => {
    // A changed-rows answer leaves the element in place: it takes the new version from the
    // ETag (a whole answer morphs the same value in through data-version).
    const elt = e.detail.elt, xhr = e.detail.xhr;
    if (!elt || !elt.isConnected || !elt.hasAttribute || !elt.hasAttribute("data-version")) return;
    const etag = xhr && xhr.status === 200 ? xhr.getResponseHeader("ETag") : null;
    if (etag) elt.dataset.version = etag;
  });

  function countdowns(root) {
    const now = Date.now() / 1000;
    (root || document).querySelectorAll("time[data-expires]").forEach((el) => {
      const left = Math.round(parseFloat(el.dataset.expires) - now);
      if (left <= 0) { el.textContent = "links expired"; el.classList.add("bad"); return; }
      const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = "expires in " + (h ? h + "h " : "") + String(m).padStart(h ? 2 : 1, "0") + "m " + String(s).padStart(2, "0") + "s";
    });
  }
  setInterval(countdowns, 1000);

  const shown = new Set(JSON.parse(sessionStorage.getItem("toasts-shown") || "[]"));
  function toast(node, level) {
    const list = document.getElementById("toasts");
    const li = document.createElement("li");
    li.className = "toast " + (level || "info");
    li.appendChild(node);
    list.appendChild(li);
    setTimeout(() => li.remove(), 8000);
  }
  function notices(root) {
    (root || document).querySelectorAll("template[data-toast]").forEach((t) => {
      const id = t.dataset.toast;
      t.remove();
      if (shown.has(id)) return;
      shown.add(id);
      sessionStorage.setItem("toasts-shown", JSON.stringify([...shown].slice(-200)));
      toast(t.content.cloneNode(true), t.dataset.level);
    });
    const running = document.querySelector("[data-running]");
    const n = running ? parseInt(running.dataset.running || "0", 10) : 0;
    document.title = n > 0 ? "(" + n + ") " + baseTitle : baseTitle;
  }
  function fadeMessages() {
    document.querySelectorAll("#toasts > li").forEach((li) => setTimeout(() => li.remove(), 8000));
  }

  function counters() {
    document.querySelectorAll("[data-count-for]").forEach((out) => {
      const field = document.getElementById(out.dataset.countFor);
      if (!field || field.dataset.counted) return;
      field.dataset.counted = "1";
      const max = parseInt(field.dataset.maxlength || "32000", 10);
      const update = () => {
        const len = field.value.replace(/\r\n?/g, "\n").length;
        out.textContent = len.toLocaleString();
        out.classList.toggle("bad", len > max || field.value.trim() === "");
      };
      field.addEventListener("input", update);
      update();
    });
  }

  // Prevent a double click from posting twice; the idempotency key makes it harmless anyway.
  // (Not for htmx forms such as the table's filters: they send a GET each time they change.)
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (form.hasAttribute("hx-get")) return;
    if (form.dataset.submitted) { e.preventDefault(); return; }
    form.dataset.submitted = "1";
    setTimeout(() => delete form.dataset.submitted, 5000);
  });

  function init(root) { countdowns(root); notices(root); counters(); }
  document.addEventListener("DOMContentLoaded", () => { init(document); fadeMessages(); });
  document.addEventListener("htmx:afterSettle", (e) => init(e.target));
})();
