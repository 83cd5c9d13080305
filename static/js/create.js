// New-video and batch-remix forms: offer only the sizes and lengths the chosen model allows,
// check a reference image's dimensions before upload, and keep the cost estimates in step.
// The catalog comes from the form's data-catalog attribute (the CSP forbids inline scripts).
(function () {
  "use strict";

  function money(value) { return "$" + value.toFixed(2); }

  function setOptions(select, values, label) {
    const current = select.value;
    select.replaceChildren(...values.map((value) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = label ? label(value) : value;
      return option;
    }));
    select.value = values.includes(current) ? current : (values[0] || "");
    select.disabled = values.length === 0;
  }

  function initCreate(form) {
    const catalog = JSON.parse(form.dataset.catalog || "{}");
    const field = (name) => form.querySelector("[name=" + name + "]");
    const provider = field("provider"), model = field("model"), size = field("size");
    const seconds = field("seconds"), image = field("input_reference");
    const cost = document.getElementById("create-cost");
    const check = document.getElementById("reference-check");
    let imageSize = null;  // [width, height] of the chosen reference image, once read

    const models = () => (catalog[provider.value] || {}).models || {};
    const sizes = () => models()[model.value] || {};

    function update() {
      setOptions(model, Object.keys(models()).sort());
      setOptions(size, Object.keys(sizes()));
      if (imageSize) {  // a chosen image decides the size when the model offers it
        const wanted = imageSize[0] + "x" + imageSize[1];
        if (wanted in sizes()) size.value = wanted;
      }
      const spec = sizes()[size.value] || { seconds: [], price: null };
      setOptions(seconds, spec.seconds, (s) => s + " s");
      if (spec.price !== null && spec.price !== undefined && seconds.value) {
        const price = parseFloat(spec.price);
        cost.textContent = money(price * parseInt(seconds.value, 10)) + " (" + seconds.value +
          " s of " + model.value + " at " + size.value + ", " + money(price) + " a second)";
      } else {
        cost.textContent = "unknown (not in the provider's price table)";
      }
      checkImage();
    }

    function checkImage() {
      if (!check) return;
      check.classList.remove("bad", "ok");
      if (!imageSize) { check.textContent = ""; return; }
      const got = imageSize[0] + "x" + imageSize[1];
      if (got === size.value) {
        check.textContent = "The image is " + imageSize[0] + "×" + imageSize[1] + ": it matches the size.";
        check.classList.add("ok");
      } else {
        check.textContent = "The image is " + imageSize[0] + "×" + imageSize[1] + ", but " + size.value +
          " needs exactly that size" + (got in sizes() ? "." : "; " + model.value + " does not offer " + got + ".");
        check.classList.add("bad");
      }
    }

    if (image && window.createImageBitmap) {
      // createImageBitmap needs no blob: URL, which the CSP's img-src would refuse.
      image.addEventListener("change", () => {
        imageSize = null;
        const file = image.files && image.files[0];
        if (!file) { update(); return; }
        if (file.size > 10 * 1024 * 1024) {
          check.textContent = "The image is larger than 10 MB; use a smaller one.";
          check.classList.add("bad");
          return;
        }
        createImageBitmap(file).then((bitmap) => {
          imageSize = [bitmap.width, bitmap.height];
          bitmap.close();
          update();
        }).catch(() => {
          check.textContent = "This file is not an image the browser can read (use JPEG, PNG or WebP).";
          check.classList.add("bad");
        });
      });
    }
    [provider, model, size, seconds].forEach((el) => el && el.addEventListener("change", update));
    update();
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
    document.querySelectorAll("form[data-catalog]").forEach(initCreate);
    document.querySelectorAll("form[data-batch-cost]").forEach(initBatch);
  });
})();
