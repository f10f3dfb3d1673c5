// マイナンバーカード read-in on the interview page: show a one-time code for the counter card bridge,
// wait until the bridge has posted the card, then reload; mark answers that came from a card or import.
(function () {
  const box = document.getElementById("card-read");
  if (!box) return;
  const caseId = box.dataset.case;
  const csrf = box.dataset.csrf;
  const codeBox = document.getElementById("card-code");
  const codeEl = document.getElementById("card-code-value");
  const ttlEl = document.getElementById("card-ttl");
  const resultEl = document.getElementById("card-result");
  let poll = null;

  function show(text, cls) {
    resultEl.hidden = false;
    resultEl.textContent = text;
    resultEl.className = "cardread-result " + (cls || "");
  }

  function minutes(seconds) {
    const m = Math.floor(seconds / 60), s = seconds % 60;
    return m + "分" + String(s).padStart(2, "0") + "秒";
  }

  async function watch(pairingId, expiresIn) {
    let left = expiresIn;
    clearInterval(poll);
    poll = setInterval(async () => {
      left -= 2;
      ttlEl.textContent = minutes(Math.max(0, left));
      let res;
      try {
        res = await fetch("/counter/visits/" + caseId + "/card-pairing/" + pairingId, {headers: {"Accept": "application/json"}});
      } catch (e) { return; }
      if (!res.ok) return;
      const st = await res.json();
      if (st.status === "used") {
        clearInterval(poll);
        codeBox.hidden = true;
        const warn = (st.warnings || []).join("　");
        show("カードを読み込みました（" + (st.fields || []).length + "項目）。" + (warn ? "要確認: " + warn : "") + " 画面を更新します…", "ok");
        setTimeout(() => location.reload(), 1500);
      } else if (st.status === "expired") {
        clearInterval(poll);
        codeBox.hidden = true;
        show("コードの有効期限が切れました。もう一度「読み取りコードを表示」を押してください。", "warn");
      }
    }, 2000);
  }

  document.getElementById("card-start").addEventListener("click", async () => {
    const member = document.getElementById("card-member").value || null;
    const res = await fetch("/counter/visits/" + caseId + "/card-pairing", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({member_id: member}),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { show(body.message || "コードを表示できませんでした", "warn"); return; }
    resultEl.hidden = true;
    codeEl.textContent = body.code;
    ttlEl.textContent = minutes(body.expires_in);
    codeBox.hidden = false;
    watch(body.pairing_id, body.expires_in);
  });

  // Marks: 「カード」「転入予約」 beside each answer that came from there and is not confirmed yet.
  let marks = {};
  try { marks = JSON.parse(document.getElementById("card-marks").textContent || "{}") || {}; } catch (e) { marks = {}; }
  for (const [path, label] of Object.entries(marks)) {
    const field = document.querySelector('.field[data-path="' + CSS.escape(path) + '"]');
    if (!field) continue;
    field.classList.add("from-source");
    const labelRow = field.querySelector(":scope > .label-row, :scope > fieldset > legend") || field;
    const badge = document.createElement("span");
    badge.className = "source-mark" + (label === "転入予約" ? " import" : label === "本人入力" ? " resident" : "");
    badge.textContent = label;
    labelRow.appendChild(badge);
  }
  const confirm = document.getElementById("card-marks-confirm");
  if (confirm) {
    confirm.addEventListener("click", async () => {
      const res = await fetch("/counter/visits/" + caseId + "/sources/confirm", {
        method: "POST", headers: {"Accept": "application/json", "X-CSRF-Token": csrf},
      });
      if (res.ok) {
        document.querySelectorAll(".source-mark").forEach((el) => el.remove());
        document.querySelectorAll(".from-source").forEach((el) => el.classList.remove("from-source"));
        document.getElementById("card-marks-notice").hidden = true;
      }
    });
  }
})();
