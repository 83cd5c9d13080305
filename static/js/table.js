// The jobs list: how each poll is morphed in without disturbing the reader, filters and sorts
// that apply at once (with the URL kept in step), the auto-refresh switch, and copy-prompt.
// app.js sends the polls; idiomorph (static/vendor/idiomorph-ext.min.js) does the morphing.
(function () {
  "use strict";
  const PAUSE_KEY = "auto-refresh";  // "off" while paused; read by app.js on every tick

  // --- what a morph must leave alone ----------------------------------------------------
  // The server never sends style attributes (the CSP forbids them), so any style is ours:
  // progress widths, the gallery's scrub frame. `open` on <details> and the state of inputs
  // are the reader's. An element marked data-morph-keep (a "Copied" button) is skipped whole.
  if (window.Idiomorph) {
    const callbacks = Idiomorph.defaults.callbacks;
    callbacks.beforeAttributeUpdated = (name, el) => {
      if (name === "style") return false;
      if (name === "class" && el.classList.contains("settled")) return false;  // a bar of ours
      if (name === "open" && el.tagName === "DETAILS") return false;
      if ((name === "checked" || name === "value") && el.tagName === "INPUT" && el.type !== "hidden") return false;
      return true;
    };
    callbacks.beforeNodeMorphed = (old) => !(old.nodeType === 1 && old.hasAttribute("data-morph-keep"));
  }

  function bars(root) {
    (root || document).querySelectorAll(".bar[data-value]").forEach((bar) => {
      const fill = bar.firstElementChild;
      const width = Math.max(0, Math.min(100, parseFloat(bar.dataset.value) || 0)) + "%";
      if (fill && fill.style.width !== width) fill.style.width = width;
      // The first width is where the bar starts, not a change: only later ones glide.
      if (fill && !bar.classList.contains("settled")) requestAnimationFrame(() => bar.classList.add("settled"));
    });
  }

  // --- filters and sorting: apply as they change, with the address bar kept in step ------
  function cleanUrl(raw) {
    const url = new URL(raw, location.href);
    [...url.searchParams.keys()].forEach((key) => {
      if (key === "page" || key === "view" || !url.searchParams.get(key)) url.searchParams.delete(key);
    });
    // A sort only names itself when it is not the default.
    if (url.searchParams.get("sort") === "newest") url.searchParams.delete("sort");
    return url;
  }
  document.addEventListener("htmx:afterRequest", (e) => {
    const elt = e.detail.elt;
    if (!e.detail.successful || !elt || !elt.hasAttribute || !elt.hasAttribute("data-replace-url")) return;
    const url = cleanUrl(e.detail.xhr.responseURL || e.detail.pathInfo.finalRequestPath);
    history.replaceState(history.state, "", url.pathname + url.search);
    const form = document.getElementById("filters");
    if (form && elt !== form) {  // a header click: the sort menu says the same thing
      const sort = form.querySelector("select[name=sort]");
      if (sort) sort.value = url.searchParams.get("sort") || "newest";
    }
    const next = document.querySelector(".view-switch input[name=next]");
    if (next) next.value = url.pathname + url.search;  // switching view keeps the filters
  });

  // --- the auto-refresh switch --------------------------------------------------------------
  function pauseSwitch() {
    const button = document.getElementById("auto-refresh");
    if (!button) return;
    const show = () => button.setAttribute("aria-checked", String(localStorage.getItem(PAUSE_KEY) !== "off"));
    show();
    button.hidden = false;
    button.addEventListener("click", () => {
      const paused = localStorage.getItem(PAUSE_KEY) !== "off";
      if (paused) localStorage.setItem(PAUSE_KEY, "off"); else localStorage.removeItem(PAUSE_KEY);
      show();
      const table = document.querySelector("[data-pausable][data-poll]");
      if (!paused && table && window.htmx) htmx.trigger(table, "poll");  // catch up at once
    });
    window.addEventListener("storage", (e) => { if (e.key === PAUSE_KEY) show(); });  // other tabs
  }

  // --- copy a prompt --------------------------------------------------------------------------
  function confirm(text) {
    const list = document.getElementById("toasts");
    if (!list) return;
    const li = document.createElement("li");
    li.className = "toast success";
    li.textContent = text;
    list.appendChild(li);
    setTimeout(() => li.remove(), 4000);
  }
  document.addEventListener("click", async (e) => {
    const button = e.target.closest && e.target.closest("[data-copy-prompt]");
    if (!button) return;
    const holder = button.closest("td, li");
    const text = holder ? holder.querySelector(".prompt-text").textContent : "";
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {
      confirm("Could not copy: the browser refused access to the clipboard.");
      return;
    }
    button.setAttribute("data-morph-keep", "");  // the next tick must not undo the label
    button.textContent = "Copied";
    confirm("Prompt copied to the clipboard.");
    setTimeout(() => { button.textContent = "Copy prompt"; button.removeAttribute("data-morph-keep"); }, 2000);
  });

  document.addEventListener("DOMContentLoaded", () => { bars(document); pauseSwitch(); });
  document.addEventListener("htmx:afterSettle", (e) => bars(e.target));
})();
