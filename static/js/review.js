// Comments at a moment in the video (templates/jobs/review_panel.html). Writing pauses the player
// and the comment form carries the player's time; a strip under the <video> marks each comment's
// moment (native seek bars cannot be styled across browsers); clicking a comment's time, the
// comment itself or its marker seeks the player there. The player and the comment list are both
// swapped by htmx, so every listener is on the document and the markers are redrawn after swaps.
// No inline styles in markup (the CSP): the markers are placed through element.style.
(function () {
  "use strict";

  function player() { return document.getElementById("player"); }
  function commentForm() { return document.querySelector("[data-comment-form]"); }

  // The same reading as jobs/lib/timecodes.py: 0:07.5, 1:02, 1:02:03.
  function label(seconds) {
    const total = Math.round(Math.max(0, seconds) * 10);
    const tenths = total % 10, whole = Math.floor(total / 10);
    const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
    const clock = (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
    return tenths ? clock + "." + tenths : clock;
  }

  // The form's moment follows the player (when it plays, seeks or pauses), unless the comment
  // is on the whole video.
  function syncMoment() {
    const p = player(), form = commentForm();
    if (!p || !form) return;
    const input = form.querySelector("[data-timecode-input]");
    const whole = form.querySelector("[data-whole]");
    if (!input) return;
    input.disabled = Boolean(whole && whole.checked);
    const out = form.querySelector("[data-timecode-label]");
    if (input.disabled) { if (out) out.textContent = ""; return; }
    input.value = String(Math.round(p.currentTime * 1000) / 1000);
    if (out) out.textContent = label(p.currentTime);
  }

  function markers() {
    const p = player(), list = document.getElementById("comments");
    let strip = document.getElementById("comment-markers");
    if (!p || !list) { if (strip) strip.remove(); return; }
    if (!strip || strip.previousElementSibling !== p) {
      if (strip) strip.remove();
      strip = document.createElement("div");
      strip.id = "comment-markers";
      strip.className = "comment-markers";
      // The comment list offers the same seeking to the keyboard and screen readers.
      strip.setAttribute("aria-hidden", "true");
      p.insertAdjacentElement("afterend", strip);
    }
    const length = isFinite(p.duration) && p.duration > 0 ? p.duration : parseFloat(list.dataset.length || "0");
    strip.replaceChildren();
    if (!(length > 0)) return;
    list.querySelectorAll("article[data-timecode]").forEach((comment) => {
      const t = parseFloat(comment.dataset.timecode);
      if (!isFinite(t)) return;
      const body = comment.querySelector(".comment-body");
      const marker = document.createElement("button");
      marker.type = "button";
      marker.className = "marker";
      marker.tabIndex = -1;
      marker.dataset.seek = String(t);
      marker.dataset.comment = comment.id;
      marker.title = label(t) + (body ? ": " + body.textContent.trim().slice(0, 80) : "");
      marker.style.left = Math.min(100, (t / length) * 100) + "%";
      strip.appendChild(marker);
    });
  }

  function seek(seconds, commentId) {
    const p = player();
    if (!p || !isFinite(seconds)) return;
    p.pause();
    p.currentTime = seconds;
    document.querySelectorAll("article.comment.current").forEach((c) => c.classList.remove("current"));
    const comment = commentId && document.getElementById(commentId);
    if (comment) comment.classList.add("current");
    const box = p.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) p.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("click", (e) => {
    const target = e.target.closest("[data-seek], article.comment[data-timecode]");
    if (!target) return;
    // Inside a comment, its own controls (edit, delete, links) do what they say, not seek.
    if (!target.hasAttribute("data-seek") && e.target.closest("a, button, summary, details, form")) return;
    const article = target.closest("article.comment");
    seek(parseFloat(target.dataset.seek || target.dataset.timecode), target.dataset.comment || (article && article.id));
  });

  // Starting to write pauses the player, so the comment is about the frame on screen.
  document.addEventListener("focusin", (e) => {
    if (!e.target.matches("[data-comment-form] textarea")) return;
    const p = player();
    if (p && !p.paused) p.pause();
    syncMoment();
  });
  document.addEventListener("change", (e) => { if (e.target.matches("[data-whole]")) syncMoment(); });
  // Capture: media events do not bubble, and the player may be a newly swapped element.
  ["timeupdate", "seeked", "pause"].forEach((type) => document.addEventListener(type, (e) => {
    if (e.target === player()) syncMoment();
  }, true));
  document.addEventListener("loadedmetadata", (e) => { if (e.target === player()) markers(); }, true);
  document.addEventListener("submit", (e) => { if (e.target.matches("[data-comment-form]")) syncMoment(); }, true);

  function init() { syncMoment(); markers(); }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);
})();
