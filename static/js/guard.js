// Forms that prevent waste: say before submitting what the server would refuse or regret.
// The remix form warns while its prompt is still the source's (the server asks again on
// submit); the batch form says when its jobs cost more than the budget left. Text only: the
// server decides (services/submit.py), this never blocks a submit.
(() => {
  "use strict";

  function norm(text) { return text.replace(/\r\n?/g, "\n").trim(); }

  function initUnchanged(form) {
    const prompt = form.querySelector("[name=prompt]");
    const warning = document.getElementById("unchanged-warning");
    const confirm = document.getElementById("submit-unchanged");
    const source = norm(form.dataset.sourcePrompt || "");
    function update() {
      const same = norm(prompt.value) === source;
      warning.hidden = !same;
      // The "Submit anyway" box appears with the warning, so one submit is enough.
      if (confirm) confirm.hidden = !same;
    }
    prompt.addEventListener("input", update);
    update();
  }

  function initBudget(form) {
    const unit = form.dataset.unit === "" ? null : parseFloat(form.dataset.unit);
    const left = form.dataset.left === "" || form.dataset.left === undefined ? null : parseFloat(form.dataset.left);
    const out = document.getElementById("over-budget");
    if (unit === null || left === null || !out) return;
    const prompts = form.querySelector("[name=prompts]");
    const variations = form.querySelector("[name=variations]");
    function update() {
      const lines = prompts.value.split(/\r\n?|\n/).filter((l) => l.trim() !== "").length;
      const n = Math.max(1, parseInt(variations.value || "1", 10) || 1);
      const jobs = Math.max(1, lines * n);
      const total = jobs * unit;
      const over = total > left + 1e-9;
      out.hidden = !over;
      if (over) {
        out.textContent = jobs + (jobs === 1 ? " job costs $" : " jobs cost $") + total.toFixed(2) +
          ", more than the $" + left.toFixed(2) + " left of your monthly budget: the batch will be refused.";
      }
    }
    prompts.addEventListener("input", update);
    variations.addEventListener("input", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-unchanged-guard]").forEach(initUnchanged);
    document.querySelectorAll("form[data-batch-cost][data-left]").forEach(initBudget);
  });
})();
