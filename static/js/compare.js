// Compare page: one control drives every <video>. Play/pause and seeking apply to all, and a
// clip that drifts more than a quarter second from the longest one is pulled back in step.
(function () {
  "use strict";
  const DRIFT = 0.25;

  function fmt(t) {
    if (!isFinite(t)) t = 0;
    const m = Math.floor(t / 60), s = Math.floor(t % 60);
    return m + ":" + String(s).padStart(2, "0");
  }

  function init(root) {
    const videos = Array.from(root.querySelectorAll("video"));
    const button = root.querySelector("[data-compare-play]");
    const seek = root.querySelector("[data-compare-seek]");
    const clock = root.querySelector("[data-compare-time]");
    if (!videos.length || !button || !seek) return;
    let seeking = false;

    // The longest clip leads: the others follow its clock.
    const lead = () => videos.reduce((a, b) => ((b.duration || 0) > (a.duration || 0) ? b : a));
    const playing = () => videos.some((v) => !v.paused && !v.ended);

    function render() {
      const l = lead();
      seek.max = String(l.duration || 0);
      if (!seeking) seek.value = String(l.currentTime);
      clock.textContent = fmt(l.currentTime) + " / " + fmt(l.duration);
      button.textContent = playing() ? "Pause" : "Play";
      root.dataset.state = playing() ? "playing" : "paused";
    }

    function resync() {
      const l = lead();
      if (l.paused) return;
      videos.forEach((v) => {
        if (v === l || v.paused || v.ended || l.currentTime >= (v.duration || 0)) return;
        if (Math.abs(v.currentTime - l.currentTime) > DRIFT) v.currentTime = l.currentTime;
      });
    }

    button.addEventListener("click", () => {
      if (playing()) {
        videos.forEach((v) => v.pause());
        return;
      }
      const l = lead();
      const from = l.ended || l.currentTime >= (l.duration || 0) ? 0 : l.currentTime;
      videos.forEach((v) => {
        v.currentTime = Math.min(from, v.duration || from);
        // One user gesture starts them all; a refusal (e.g. autoplay policy) is shown, not thrown.
        v.play().catch((err) => { clock.textContent = "Could not play: " + err.message; });
      });
    });

    seek.addEventListener("input", () => {
      seeking = true;
      const t = parseFloat(seek.value) || 0;
      videos.forEach((v) => { v.currentTime = Math.min(t, v.duration || t); });
    });
    seek.addEventListener("change", () => { seeking = false; render(); });

    videos.forEach((v) => {
      ["loadedmetadata", "play", "pause", "ended", "seeked"].forEach((e) => v.addEventListener(e, render));
      v.addEventListener("timeupdate", () => { if (v === lead()) { resync(); render(); } });
    });
    document.addEventListener("keydown", (e) => {
      if (e.code === "Space" && e.target === document.body) { e.preventDefault(); button.click(); }
    });
    render();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-compare]").forEach(init);
  });
})();
