// oneshot demo page: support grid, drawing pad, calls to the JSON API (see oneshot/demo.py).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  const LINE_WIDTH = 9; // canvas pixels; 3 px at Omniglot's 105 px
  const TOP_K = 5;
  const state = { support: null, items: [], alphabets: [], drawing: false, ink: false, seq: 0 };

  function setStatus(text, isError = false) {
    $("status").textContent = text;
    $("status").classList.toggle("error", isError);
  }

  async function api(path, options = {}) {
    const res = await fetch(path, options);
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
    return body;
  }

  function resetPad() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    state.ink = false;
  }

  function clearResults() {
    state.seq += 1; // drop answers still on their way
    $("matches").replaceChildren();
    $("match-note").textContent = "";
    for (const fig of $("grid").children) {
      fig.classList.remove("match", "best");
      const badge = fig.querySelector(".badge");
      if (badge) badge.remove();
    }
  }

  function showSupport(data) {
    state.support = data.support;
    state.items = data.items;
    $("support-title").textContent = `Support set: ${data.title} (${data.items.length} classes)`;
    $("support-hint").textContent = data.support.startsWith("upload-")
      ? "One example per class: your images."
      : "One example per character, as one person drew it.";
    const figs = data.items.map((item) => {
      const fig = document.createElement("figure");
      fig.className = "item";
      fig.dataset.label = item.label;
      const img = document.createElement("img");
      img.src = item.image;
      img.alt = item.label;
      const cap = document.createElement("figcaption");
      cap.textContent = item.label;
      fig.append(img, cap);
      return fig;
    });
    $("grid").replaceChildren(...figs);
    clearResults();
    resetPad();
  }

  async function loadSupport(id) {
    setStatus("loading the support set…");
    try {
      showSupport(await api(`/api/support/${encodeURIComponent(id)}`));
      setStatus("draw a character");
    } catch (err) {
      setStatus(err.message, true);
    }
  }

  function showMatches(result) {
    clearResults();
    const thumbs = new Map(state.items.map((it) => [it.label, it.image]));
    const rows = result.top.map((m) => {
      const li = document.createElement("li");
      const img = document.createElement("img");
      img.src = thumbs.get(m.label) || "";
      img.alt = "";
      const mid = document.createElement("div");
      const name = document.createElement("div");
      name.className = "name";
      name.textContent = m.label;
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = `${(100 * m.share).toFixed(1)}%`;
      mid.append(name, bar);
      const prob = document.createElement("span");
      prob.className = "prob";
      prob.textContent = `${(100 * m.share).toFixed(0)}%`;
      prob.title = `same-class probability on its own: ${(100 * m.probability).toFixed(1)}%`;
      li.append(img, mid, prob);
      return li;
    });
    $("matches").replaceChildren(...rows);
    const share = "Share: how the model divides its belief among these characters.";
    $("match-note").textContent = result.close_match === null
      ? `${share} This model has no calibrated threshold, so it cannot tell when nothing matches.`
      : result.close_match
        ? share
        : "No close match: your drawing is unlike every character here (the best is only a guess).";
    result.top.forEach((m, rank) => {
      for (const fig of $("grid").children) {
        if (fig.dataset.label !== m.label) continue;
        fig.classList.add("match");
        if (rank === 0) fig.classList.add("best");
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = `${rank + 1}: ${(100 * m.share).toFixed(0)}%`;
        fig.append(badge);
      }
    });
  }

  async function classify() {
    if (!state.support) { setStatus("no support set: pick an alphabet or upload images", true); return; }
    const seq = ++state.seq;
    const t0 = performance.now();
    try {
      const result = await api("/api/classify", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ support: state.support, image: pad.toDataURL("image/png"), top_k: TOP_K }),
      });
      if (seq !== state.seq) return;
      showMatches(result);
      state.seq = seq;
      setStatus(`best: ${result.label} · ${result.elapsed_ms.toFixed(0)} ms on the server, ` +
                `${(performance.now() - t0).toFixed(0)} ms in all`);
    } catch (err) {
      if (seq === state.seq) setStatus(err.message, true);
    }
  }

  // Drawing: pointer events cover mouse, pen and touch.
  function point(ev) {
    const r = pad.getBoundingClientRect();
    return [(ev.clientX - r.left) * pad.width / r.width, (ev.clientY - r.top) * pad.height / r.height];
  }
  pad.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    pad.setPointerCapture(ev.pointerId);
    state.drawing = true;
    state.ink = true;
    const [x, y] = point(ev);
    ctx.strokeStyle = "#000";
    ctx.fillStyle = "#000";
    ctx.lineWidth = LINE_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.arc(x, y, LINE_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fill();
    ctx.beginPath();
    ctx.moveTo(x, y);
  });
  pad.addEventListener("pointermove", (ev) => {
    if (!state.drawing) return;
    const [x, y] = point(ev);
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  const release = () => {
    if (!state.drawing) return;
    state.drawing = false;
    classify();
  };
  pad.addEventListener("pointerup", release);
  pad.addEventListener("pointercancel", release);

  $("clear").addEventListener("click", () => {
    resetPad();
    clearResults();
    setStatus("draw a character");
  });

  $("alphabet").addEventListener("change", () => loadSupport($("alphabet").value));

  $("another").addEventListener("click", () => {
    const others = state.alphabets.filter((a) => a.name !== $("alphabet").value);
    if (!others.length) return;
    const pick = others[Math.floor(Math.random() * others.length)];
    $("alphabet").value = pick.name;
    loadSupport(pick.name);
  });

  $("upload").addEventListener("click", async () => {
    const files = $("files").files;
    if (!files.length) { setStatus("choose one image per class first", true); return; }
    const form = new FormData();
    for (const f of files) form.append("image", f, f.name);
    setStatus("uploading…");
    try {
      showSupport(await api("/api/support", { method: "POST", body: form }));
      $("alphabet").value = "";
      setStatus("draw a character");
    } catch (err) {
      setStatus(err.message, true);
    }
  });

  async function start() {
    resetPad();
    try {
      const info = await api("/api/info");
      const m = info.model;
      $("model").textContent = info.data === "folder"
        ? `The model compares ${info.input_size}×${info.input_size}-pixel views of your ` +
          `images with one example of each class (${info.split}).`
        : "The model learned from 30 other alphabets and never saw these ones; it compares " +
          `${info.input_size}×${info.input_size}-pixel views of the characters. Handwriting ` +
          "from the Omniglot dataset (Lake et al., 2015).";
    } catch (err) { /* the footer stays empty */ }
    try {
      const data = await api("/api/alphabets");
      state.alphabets = data.alphabets;
      const opts = data.alphabets.map((a) => {
        const o = document.createElement("option");
        o.value = a.name;
        o.textContent = `${a.name.replaceAll("_", " ")} (${a.characters})`;
        return o;
      });
      $("alphabet").replaceChildren(...opts);
      if (data.alphabets.length) await loadSupport(data.alphabets[0].name);
    } catch (err) {
      setStatus(`${err.message} (you can still use your own images)`, true);
    }
  }
  start();
})();
