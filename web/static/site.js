// Qingfeng's one script. Every page works without it; it only enhances:
// the division picker fills the next level without a round trip, uploads show a
// progress bar, a proof of work the server asks for is solved in the browser, and an
// error summary takes the focus. It talks to this origin only.
(function () {
  "use strict";

  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  // Division picker: city → county → township from /report/divisions.
  var selects = { city: document.getElementById("f-city"), county: document.getElementById("f-county"), town: document.getElementById("f-town") };
  var refresh = document.getElementById("division-refresh");
  if (selects.city && selects.county && selects.town && window.fetch) {
    if (refresh) { refresh.hidden = true; }
    var fill = function (sel, parent, empty) {
      while (sel.options.length > 1) { sel.remove(1); }
      sel.options[0].textContent = parent ? "加载中…" : empty;
      if (!parent) { return Promise.resolve(); }
      return fetch("/report/divisions?parent=" + encodeURIComponent(parent), { credentials: "omit" })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (list) {
          list.forEach(function (d) { sel.add(new Option(d.name, d.code)); });
          sel.options[0].textContent = list.length ? (sel === selects.town ? "不确定或不选" : "请选择") : empty;
        })
        .catch(function () { if (refresh) { refresh.hidden = false; } });
    };
    selects.city.addEventListener("change", function () {
      fill(selects.county, selects.city.value, "请先选择市");
      fill(selects.town, "", "请先选择县（市、区）");
    });
    selects.county.addEventListener("change", function () {
      fill(selects.town, selects.county.value, "请先选择县（市、区）");
    });
  }
  // A province other than Zhejiang: its levels do not apply (the server ignores them).
  var province = document.getElementById("f-province"), levels = document.getElementById("zj-levels"), note = document.getElementById("outside-note");
  if (province && levels && note) {
    province.addEventListener("change", function () {
      levels.hidden = province.value !== "330000";
      note.hidden = !levels.hidden;
    });
  }

  // Conditional questions: only the subject chosen, and the identity only for a
  // real-name report. Without the script every question shows, and the server ignores
  // what does not apply.
  function reveal(name, sections) {
    var radios = document.querySelectorAll("input[name='" + name + "']");
    var update = function () {
      var chosen = document.querySelector("input[name='" + name + "']:checked");
      Object.keys(sections).forEach(function (value) {
        var el = document.getElementById(sections[value]);
        if (el) { el.hidden = !!chosen && chosen.value !== value; }
      });
    };
    Array.prototype.forEach.call(radios, function (r) { r.addEventListener("change", update); });
    if (radios.length) { update(); }
  }
  reveal("subject.kind", { organization: "sub-org", person: "sub-person" });
  reveal("anonymous", { "false": "sub-identity" });

  // Proof of work: SHA-256(challenge || counter) with the required leading zero bits.
  function zeroBits(buf) {
    var b = new Uint8Array(buf), n = 0;
    for (var i = 0; i < b.length; i++) {
      if (b[i] === 0) { n += 8; continue; }
      for (var m = 0x80; m && !(b[i] & m); m >>= 1) { n++; }
      break;
    }
    return n;
  }
  function solve(challenge, bits) {
    var enc = new TextEncoder(), counter = 0;
    var step = function () {
      var batch = [];
      for (var i = 0; i < 256; i++, counter++) {
        batch.push(crypto.subtle.digest("SHA-256", enc.encode(challenge + counter)));
      }
      var base = counter - 256;
      return Promise.all(batch).then(function (sums) {
        for (var j = 0; j < sums.length; j++) {
          if (zeroBits(sums[j]) >= bits) { return challenge + ":" + (base + j); }
        }
        return step();
      });
    };
    return step();
  }
  var pow = document.getElementById("f-pow");
  if (pow && pow.dataset.challenge && window.crypto && crypto.subtle) {
    var form = pow.form, button = form.querySelector("button.primary");
    if (button) { button.disabled = true; button.dataset.label = button.textContent; button.textContent = "正在完成计算验证…"; }
    solve(pow.dataset.challenge, parseInt(pow.dataset.difficulty, 10) || 0).then(function (s) {
      pow.value = s;
      if (button) { button.disabled = false; button.textContent = button.dataset.label; }
    });
  }

  // Upload progress: a form with chosen files is sent by XHR, and the answer replaces
  // the page, as the browser itself would show it.
  Array.prototype.forEach.call(document.querySelectorAll("form[enctype='multipart/form-data']"), function (form) {
    var input = form.querySelector("input[type=file]"), bar = form.querySelector("progress");
    if (!input || !bar || !window.FormData) { return; }
    form.addEventListener("submit", function (ev) {
      var submitter = ev.submitter;
      if (!input.files.length || (submitter && submitter.name === "_action")) { return; }
      ev.preventDefault();
      var data = new FormData(form);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      bar.hidden = false;
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); bar.textContent = bar.value + "%"; }
      };
      xhr.onload = function () {
        document.open();
        document.write(xhr.responseText);
        document.close();
      };
      xhr.onerror = function () { bar.hidden = true; form.submit(); };
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = true; });
      xhr.send(data);
    });
  });
})();
