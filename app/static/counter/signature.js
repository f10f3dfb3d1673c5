// The signature pad: each signer signs once with a finger or pen; the PNG goes only on that person's forms.
"use strict";
(function () {
  const box = document.getElementById("sign");
  const canvas = document.getElementById("signature-pad");
  if (!box || !canvas) return;
  const ctx = canvas.getContext("2d");
  const saveBtn = document.getElementById("sign-save");
  const errorEl = document.getElementById("sign-error");
  let drawing = false;
  let strokes = 0;
  function reset() {
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#9aa5b1";
    ctx.setLineDash([8, 8]);
    ctx.beginPath(); ctx.moveTo(30, canvas.height - 50); ctx.lineTo(canvas.width - 30, canvas.height - 50); ctx.stroke();
    ctx.setLineDash([]);
    ctx.strokeStyle = "#111111";
    ctx.lineWidth = 4; ctx.lineCap = "round"; ctx.lineJoin = "round";
    strokes = 0;
    saveBtn.disabled = true;
  }
  function point(ev) {
    const r = canvas.getBoundingClientRect();
    return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
  }
  canvas.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    canvas.setPointerCapture(ev.pointerId);
    drawing = true;
    const [x, y] = point(ev);
    ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.1, y + 0.1); ctx.stroke();
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drawing) return;
    const [x, y] = point(ev);
    ctx.lineTo(x, y); ctx.stroke();
  });
  function end() { if (drawing) { drawing = false; strokes++; saveBtn.disabled = false; } }
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  document.getElementById("sign-clear").addEventListener("click", reset);
  saveBtn.addEventListener("click", () => {
    if (!strokes) { errorEl.textContent = "署名欄にお名前を書いてください"; return; }
    saveBtn.disabled = true;
    errorEl.textContent = "";
    canvas.toBlob(async (blob) => {
      try {
        const who = document.getElementById("sign-signer");
        const query = who && who.value ? "?signer=" + encodeURIComponent(who.value) : "";
        const res = await fetch("/counter/visits/" + box.dataset.case + "/signature" + query, {
          method: "POST", body: blob, credentials: "same-origin",
          headers: { "Content-Type": "image/png", "X-CSRF-Token": box.dataset.csrf, "Accept": "application/json" },
        });
        const body = await res.json();
        if (!res.ok) {
          errorEl.textContent = (body.errors && body.errors[0] && body.errors[0].message) || body.message || "署名を保存できませんでした";
          saveBtn.disabled = false;
          return;
        }
        // Back to the review for the next signer: a new query string makes it a real page load.
        window.location.href = body.next.replace("#sign", "?signed=" + Date.now() + "#sign");
      } catch (e) {
        errorEl.textContent = "通信できませんでした。もう一度「署名して申請書を作成する」を押してください";
        saveBtn.disabled = false;
      }
    }, "image/png");
  });
  reset();
})();
