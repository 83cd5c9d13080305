// Toasts and the "(n)" tab title on every page, not just the table. base.html's #notices
// element carries data-notify (and an htmx GET of /notifications/) only while I have running
// jobs. This ticks it, but never while the tab is hidden and never when the page already has a
// poll of its own (the table or a detail panel carry the same notices): an idle tab sends
// nothing at all. app.js shows the toasts and sets the title after each swap.
(function () {
  "use strict";
  const ms = 5000;  // a page without a poll of its own looks for news every 5 s

  function running() {
    const el = document.querySelector("[data-running]");  // the page's own panel first
    return el ? parseInt(el.dataset.running || "0", 10) : 0;
  }

  function tick() {
    if (document.hidden || !window.htmx) return;
    const el = document.querySelector("#notices[data-notify]");
    if (!el || running() <= 0 || document.querySelector("[data-poll]")) return;
    htmx.trigger(el, "notify");
  }

  setInterval(tick, ms);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
})();
