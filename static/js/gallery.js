// The gallery's hover-scrub: moving the pointer across a card (or pressing ← / → while its
// link has focus) shows the matching tile of the archived spritesheet in place of the
// thumbnail. Only CSSOM style properties are set (the CSP forbids style attributes in markup),
// and table.js keeps them across the poll's morphs.
(function () {
  "use strict";
  const sheets = new Map();  // sprite URL -> Promise of the loaded sheet
  const shown = new WeakMap();  // link -> frame index (not an attribute: a morph would drop it)

  // The grid recorded when the spritesheet was archived (always for one made here), from
  // data-grid="cols,rows,frames"; null when absent or not three positive whole numbers.
  function recorded(link) {
    const parts = (link.dataset.grid || "").split(",").map((n) => parseInt(n, 10));
    if (parts.length !== 3 || !parts.every((n) => n > 0 && n <= 4096)) return null;
    const [cols, rows, frames] = parts;
    return frames <= cols * rows ? { cols, rows, frames } : null;
  }

  // Otherwise the provider's grid is not written down, so it is read off the images: a tile has
  // the thumbnail's aspect, the sheet is cols × rows tiles, filled row by row with `frames`
  // tiles (one per clip second from our simulator; unknown elsewhere). The smallest column
  // count whose rows come out whole, and whose last row holds at least one frame, is the grid.
  function grid(sheetW, sheetH, aspect, frames) {
    for (let cols = 1; cols <= 64; cols++) {
      const rows = (sheetH * aspect * cols) / sheetW;
      const whole = Math.round(rows);
      if (whole < 1 || Math.abs(rows - whole) > 0.04 * whole) continue;
      if (frames && (cols * whole < frames || cols * (whole - 1) >= frames)) continue;
      return { cols, rows: whole, frames: Math.min(frames || cols * whole, cols * whole) };
    }
    return null;
  }

  function load(url, img, link) {
    if (!sheets.has(url)) {
      sheets.set(url, new Promise((resolve) => {
        const sheet = new Image();
        sheet.onload = () => resolve(sheet);
        sheet.onerror = () => resolve(null);
        sheet.src = url;
      }));
    }
    return sheets.get(url).then((sheet) => {
      if (!sheet) return null;
      const known = recorded(link);
      if (known) return known;
      if (!img.naturalWidth) return null;
      const frames = parseInt(img.closest("[data-frames]").dataset.frames, 10) || 0;
      return grid(sheet.naturalWidth, sheet.naturalHeight, img.naturalWidth / img.naturalHeight, frames);
    });
  }

  function show(link, index) {
    const img = link.querySelector(".frame img");
    if (!img) return;
    load(link.dataset.sprite, img, link).then((g) => {
      if (!g) return;
      const frame = link.querySelector(".frame");
      const i = Math.max(0, Math.min(g.frames - 1, index(g.frames)));
      shown.set(link, i);
      const col = i % g.cols, row = Math.floor(i / g.cols);
      frame.style.backgroundImage = 'url("' + link.dataset.sprite + '")';
      frame.style.backgroundSize = g.cols * 100 + "% " + g.rows * 100 + "%";
      frame.style.backgroundPosition =
        (g.cols > 1 ? (col / (g.cols - 1)) * 100 : 0) + "% " + (g.rows > 1 ? (row / (g.rows - 1)) * 100 : 0) + "%";
      img.style.opacity = "0";
    });
  }

  function reset(link) {
    const img = link.querySelector(".frame img");
    if (img) img.style.opacity = "";
    shown.delete(link);
  }

  const scrubber = (e) => e.target.closest && e.target.closest("a.scrub[data-sprite]");
  document.addEventListener("pointermove", (e) => {
    const link = scrubber(e);
    if (!link || e.pointerType === "touch") return;  // a finger scrolls the page instead
    const box = link.getBoundingClientRect();
    show(link, (n) => Math.floor(((e.clientX - box.left) / box.width) * n));
  });
  document.addEventListener("pointerout", (e) => {
    const link = scrubber(e);
    if (link && !link.contains(e.relatedTarget) && document.activeElement !== link) reset(link);
  });
  // By keyboard: ← and → step through the frames; Tab moves on as usual (nothing is trapped).
  document.addEventListener("keydown", (e) => {
    const link = scrubber(e);
    if (!link || (e.key !== "ArrowLeft" && e.key !== "ArrowRight")) return;
    e.preventDefault();  // the page would scroll sideways otherwise
    const current = shown.has(link) ? shown.get(link) : -1;
    show(link, () => (e.key === "ArrowRight" ? current + 1 : Math.max(0, current - 1)));
  });
  document.addEventListener("focusout", (e) => { const link = scrubber(e); if (link) reset(link); });
})();
