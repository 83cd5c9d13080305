// New-video and batch-remix forms: check a reference image's dimensions before upload, and
// keep the batch form's job count and cost in step with its prompts.
(function () {
  "use strict";

  function money(value) { return "$" + value.toFixed(2); }

  // The menus and the cost come from the server (the #create-options partial, re-fetched by
  // htmx on every change); this only reads a chosen image's size before anything is uploaded.
  function initCreate(form) {
    const field = (name) => form.querySelector("[name=" + name + "]");
    const image = field("input_reference");
    const check = document.getElementById("reference-check");
    const maxBytes = parseInt(form.dataset.maxBytes || "10485760", 10);
    let imageSize = null;  // [width, height] of the chosen reference image, once read

    function offered(size) {
      return Array.from(field("size").options).some((o) => o.value === size);
    }

    function checkImage() {
      if (!check) return;
      check.classList.remove("bad", "ok");
      if (!imageSize) { check.textContent = ""; return; }
      const got = imageSize[0] + "x" + imageSize[1], size = field("size").value;
      const dims = imageSize[0] + "×" + imageSize[1];
      if (got === size) {
        check.textContent = "The image is " + dims + ": it matches the size.";
        check.classList.add("ok");
      } else {
        check.textContent = "The image is " + dims + ", but " + size + " needs exactly that size" +
          (offered(got) ? "." : "; " + field("model").value + " does not offer " + got + ".");
        check.classList.add("bad");
      }
    }

    function pickSize() {  // a chosen image decides the size when the model offers it
      const size = field("size"), wanted = imageSize && imageSize[0] + "x" + imageSize[1];
      if (wanted && offered(wanted) && size.value !== wanted) {
        size.value = wanted;
        size.dispatchEvent(new Event("change", { bubbles: true }));  // htmx re-fetches the menus
      }
      checkImage();
    }

    if (image && window.createImageBitmap) {
      // createImageBitmap needs no blob: URL, which the CSP's img-src would refuse.
      image.addEventListener("change", () => {
        imageSize = null;
        const file = image.files && image.files[0];
        if (!file) { checkImage(); return; }
        if (file.size > maxBytes) {
          check.textContent = "The image is larger than " + Math.floor(maxBytes / 1048576) +
            " MB; use a smaller one.";
          check.classList.add("bad");
          return;
        }
        createImageBitmap(file).then((bitmap) => {
          imageSize = [bitmap.width, bitmap.height];
          bitmap.close();
          pickSize();
        }).catch(() => {
          check.textContent = "This file is not an image the browser can read (use JPEG, PNG or WebP).";
          check.classList.add("bad");
        });
      });
    }
    form.addEventListener("htmx:afterSettle", pickSize);
  }

  function initBatch(form) {
    const unit = form.dataset.unit === "" ? null : parseFloat(form.dataset.unit);
    const max = parseInt(form.dataset.max || "20", 10);
    const prompts = form.querySelector("[name=prompts]");
    const variations = form.querySelector("[name=variations]");
    const out = document.getElementById("batch-cost");
    function update() {
      const lines = prompts.value.split(/\r\n?|\n/).filter((l) => l.trim() !== "").length;
      const n = Math.max(1, parseInt(variations.value || "1", 10) || 1);
      const jobs = lines * n;
      let text = jobs + " job" + (jobs === 1 ? "" : "s");
      text += unit === null ? ", price unknown" : " × " + money(unit) + " = " + money(jobs * unit);
      if (jobs > max) text += " (too many: at most " + max + ")";
      out.textContent = text;
      out.classList.toggle("bad", jobs > max || jobs === 0);
    }
    prompts.addEventListener("input", update);
    variations.addEventListener("input", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-create]").forEach(initCreate);
    document.querySelectorAll("form[data-batch-cost]").forEach(initBatch);
  });
})();
