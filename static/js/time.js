// Dates from the `when` filter (jobs/templatetags/dates.py): shown in the viewer's own time
// zone, with "3 minutes ago" kept current. Re-run after htmx swaps in new markup.
(function () {
  "use strict";
  // The server's shape, "2 Dec 2026, 14:05:09 GMT+1", whatever the browser's locale.
  const parts = new Intl.DateTimeFormat("en-GB", {
    day: "numeric", month: "short", year: "numeric", hourCycle: "h23",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
  const stamp = {
    format(date) {
      const p = Object.fromEntries(parts.formatToParts(date).map((x) => [x.type, x.value]));
      return `${p.day} ${p.month} ${p.year}, ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName}`;
    },
  };
  const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
  const steps = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
    ["hour", 3600], ["minute", 60]];
  function ago(date) {
    const seconds = (date.getTime() - Date.now()) / 1000;
    if (Math.abs(seconds) < 60) return seconds <= 0 ? "just now" : "in under a minute";
    for (const [unit, size] of steps) {
      if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
    }
    return "just now";
  }
  function render(root) {
    (root || document).querySelectorAll("time[data-when]").forEach((el) => {
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      if (!el.dataset.server) el.dataset.server = el.textContent;
      el.textContent = stamp.format(date);
      el.title = "In your time zone; " + el.dataset.server + " on the server";
      const hint = el.nextElementSibling;
      if (hint && hint.hasAttribute("data-ago")) hint.textContent = "(" + ago(date) + ")";
    });
    // The table's "Created" cells: only how long ago. A poll answers 304 while the rows are
    // unchanged (jobs/table_version.py), so the words are kept current here, not by the server.
    (root || document).querySelectorAll("time[data-since]").forEach((el) => {
      const date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date.getTime())) el.textContent = ago(date);
    });
  }
  document.addEventListener("DOMContentLoaded", () => render(document));
  document.addEventListener("htmx:afterSettle", (e) => render(e.target));
  setInterval(() => render(document), 30000);
})();
