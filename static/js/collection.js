// "Play all" on a collection's page: its archived videos one after another in one player, the
// current title announced (aria-live), Previous / Next and every playlist entry as buttons.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    const root = document.querySelector("[data-playlist]");
    if (!root) return;
    const player = root.querySelector("video");
    const status = root.querySelector("#now-playing");
    const items = [...root.querySelectorAll("[data-playlist-item]")];
    let current = -1;

    function play(index) {
      if (index < 0 || index >= items.length) return;
      current = index;
      const item = items[index];
      items.forEach((el, i) => el.setAttribute("aria-current", String(i === index)));
      if (item.dataset.poster) player.poster = item.dataset.poster; else player.removeAttribute("poster");
      player.src = item.dataset.src;
      status.textContent = "Playing " + (index + 1) + " of " + items.length + ": " + item.dataset.title;
      const started = player.play();
      if (started && started.catch) {
        started.catch(() => { status.textContent = "Ready " + (index + 1) + " of " + items.length + ": " + item.dataset.title + " (press play)"; });
      }
    }

    player.addEventListener("ended", () => {
      if (current + 1 < items.length) play(current + 1);
      else status.textContent = "Played all " + items.length + " videos.";
    });
    player.addEventListener("error", () => {
      if (current < 0) return;
      status.textContent = "Could not play " + items[current].dataset.title + "; skipping it.";
      if (current + 1 < items.length) play(current + 1);
    });
    root.querySelector("[data-play-all]").addEventListener("click", () => play(0));
    root.querySelector("[data-play-prev]").addEventListener("click", () => play(Math.max(0, current - 1)));
    root.querySelector("[data-play-next]").addEventListener("click", () => play(Math.min(items.length - 1, current + 1)));
    items.forEach((item, i) => item.addEventListener("click", () => play(i)));
  });
})();
