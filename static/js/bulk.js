// The bulk bar (templates/jobs/_bulk_bar.html): counts the ticked rows and cards, selects a whole
// page, refuses an empty selection in words, and keeps the CSV export link on the current filters.
// The checkboxes belong to the bar's form through form="bulk", so polls morph the list freely.
(function () {
  "use strict";
  const boxes = () => [...document.querySelectorAll('input[type=checkbox][name=ids][form=bulk]')];

  function update() {
    const form = document.getElementById("bulk");
    if (!form) return;
    const all = boxes();
    const ticked = all.filter((b) => b.checked).length;
    const count = form.querySelector("[data-bulk-count]");
    const hint = form.querySelector("[data-bulk-hint]");
    count.textContent = ticked ? ticked + " selected" : "Tick videos";
    hint.hidden = ticked > 0;
    form.classList.toggle("has-selection", ticked > 0);
    document.querySelectorAll("[data-select-all-label]").forEach((label) => { label.hidden = all.length === 0; });
    document.querySelectorAll("[data-select-all]").forEach((toggle) => {
      toggle.hidden = false;
      toggle.checked = all.length > 0 && ticked === all.length;
      toggle.indeterminate = ticked > 0 && ticked < all.length;
    });
  }

  document.addEventListener("change", (e) => {
    const target = e.target;
    if (target.matches && target.matches("[data-select-all]")) {
      boxes().forEach((b) => { b.checked = target.checked; });
    }
    if (target.matches && target.matches("[data-select-all], input[name=ids][form=bulk]")) update();
  });

  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (form.id !== "bulk") return;
    if (!boxes().some((b) => b.checked)) {
      e.preventDefault();
      form.querySelector("[data-bulk-count]").textContent = "Select at least one video first.";
      return;
    }
    // Back to the list as it is now: its filters change the address without a reload.
    const next = form.querySelector("input[name=next]");
    if (next) next.value = location.pathname + location.search;
    // A zip is a download: the page stays, so app.js's double-submit guard must not block the
    // next action for its five seconds.
    if (e.submitter && e.submitter.hasAttribute("data-download")) {
      setTimeout(() => delete form.dataset.submitted, 0);
    }
  });

  // The table's filters change the address without a reload (table.js); the export follows it.
  document.addEventListener("click", (e) => {
    const link = e.target.closest && e.target.closest("a[data-export]");
    if (link) link.search = location.search;
  });

  document.addEventListener("DOMContentLoaded", update);
  document.addEventListener("htmx:afterSettle", update);  // a poll may add or drop rows
})();
