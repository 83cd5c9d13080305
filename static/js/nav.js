// The site menu on a phone: the links fold behind a "Menu" button (CSS hides them below 760 px
// once this script has run, so without JS they simply wrap). Escape closes it again.
(function () {
  "use strict";
  function init() {
    const button = document.querySelector(".menu-toggle");
    const nav = button && document.getElementById(button.getAttribute("aria-controls"));
    if (!nav) return;
    const topbar = button.closest(".topbar");
    topbar.classList.add("collapsible");
    button.hidden = false;
    const set = (open) => {
      button.setAttribute("aria-expanded", String(open));
      topbar.classList.toggle("menu-open", open);
    };
    button.addEventListener("click", () => set(button.getAttribute("aria-expanded") !== "true"));
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && topbar.classList.contains("menu-open")) { set(false); button.focus(); }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
