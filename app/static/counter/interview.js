// The counter interview: collects the screen into one answers document, autosaves it with the case
// version, keeps unsaved input in localStorage (reloads and network hiccups lose nothing), shows
// field errors, shows/hides questions as the server decides, and helps while typing.
"use strict";
(function () {
  const root = document.getElementById("interview");
  if (!root) return;
  const form = document.getElementById("interview-form");
  const caseId = root.dataset.case;
  const csrf = root.dataset.csrf;
  const stateEl = document.getElementById("save-state");
  const conflictEl = document.getElementById("conflict");
  const storeKey = "kakanai:draft:" + caseId;
  let version = parseInt(root.dataset.version, 10);
  let editCount = 0;        // bumps on every edit; a save only clears "dirty" if nothing changed meanwhile
  let savedEdit = 0;
  let timer = null;
  let inflight = false;
  let again = false;
  let conflicted = false;
  let sendingToken = null;  // the id of the save on its way, if any
  const ownTokens = [];     // ids of saves this tablet sent (also the one on its way across a reload)
  let ownRetries = 0;
  let discarding = false;
  let retryDelay = 2000;

  // ---- reading and writing the screen -------------------------------------------------------------
  function setPath(doc, path, value) {
    const parts = path.split(".");
    let node = doc;
    for (let i = 0; i < parts.length - 1; i++) {
      if (typeof node[parts[i]] !== "object" || node[parts[i]] === null) node[parts[i]] = {};
      node = node[parts[i]];
    }
    node[parts[parts.length - 1]] = value;
  }
  function getPath(doc, path) {
    return path.split(".").reduce((n, k) => (n && typeof n === "object" ? n[k] : undefined), doc);
  }
  // ---- My Numbers: readable while the clerk reads them back, masked otherwise, never in storage --------
  // The typed digits live only in this page's memory; the input shows them grouped 4-4-4 while it has the
  // focus (or while 「表示」 is pressed) and ********9018 otherwise. The draft kept in localStorage holds the
  // mask only: after a reload an unsaved number must be typed again (the server then says so at the field).
  const myNumbers = new WeakMap();   // input -> the digits typed on this screen
  function digitsOf(text) { return (text || "").normalize("NFKC").replace(/[\s-]/g, ""); }
  function maskNumber(digits) { return digits.length > 4 ? "********" + digits.slice(-4) : "****"; }
  function groupNumber(digits) { return digits.replace(/(\d{4})(?=\d)/g, "$1 "); }
  function numberInput(el) { return el.querySelector("input:not([type=button])"); }
  function showNumber(el, reveal) {
    const input = numberInput(el);
    const digits = input && myNumbers.get(input);
    if (!digits) return;
    input.value = reveal ? groupNumber(digits) : maskNumber(digits);
    el.classList.toggle("revealed", reveal);
  }
  function typedNumber(el) {
    // The number as typed (or the stored mask, or the page's text when nothing was typed).
    const input = numberInput(el);
    if (!input) return "";
    if (myNumbers.has(input)) return myNumbers.get(input);
    return digitsOf(input.value);
  }
  function fieldValue(el, forStorage) {
    const kind = el.dataset.kind;
    if (kind === "my_number") {
      const v = typedNumber(el);
      if (!v) return undefined;
      return forStorage && !v.startsWith("*") ? maskNumber(v) : v;
    }
    if (kind === "choice") {
      const c = el.querySelector("input[type=radio]:checked");
      return c ? c.value : undefined;
    }
    if (kind === "bool") {
      const c = el.querySelector("input[type=radio]:checked");
      return c ? c.value === "true" : undefined;
    }
    if (kind === "multi_choice") {
      const vals = Array.from(el.querySelectorAll("input[type=checkbox]:checked")).map((c) => c.value);
      return vals.length ? vals : undefined;
    }
    if (kind === "address") {
      const out = {};
      el.querySelectorAll("input[data-part]").forEach((i) => { if (i.value.trim()) out[i.dataset.part] = i.value.trim(); });
      return Object.keys(out).length ? out : undefined;
    }
    const input = el.querySelector("input, textarea");
    if (!input) return undefined;
    if (kind === "list") {
      const lines = input.value.split("\n").map((s) => s.trim()).filter(Boolean);
      return lines.length ? lines : undefined;
    }
    const v = input.value.trim();
    return v === "" ? undefined : v;
  }
  function setFieldValue(el, value) {
    const kind = el.dataset.kind;
    if (kind === "choice" || kind === "bool") {
      el.querySelectorAll("input[type=radio]").forEach((r) => { r.checked = value !== undefined && String(value) === r.value; });
    } else if (kind === "multi_choice") {
      el.querySelectorAll("input[type=checkbox]").forEach((c) => { c.checked = Array.isArray(value) && value.includes(c.value); });
    } else if (kind === "address") {
      el.querySelectorAll("input[data-part]").forEach((i) => { i.value = (value && value[i.dataset.part]) || ""; });
    } else if (kind === "my_number") {
      const input = numberInput(el);
      const v = value === undefined || value === null ? "" : String(value);
      const digits = input && myNumbers.get(input);
      // The server's mask of the number typed here: keep the digits (focus shows them again).
      if (!(digits && (v === maskNumber(digits) || v === digits))) myNumbers.delete(input);
      if (input) { if (myNumbers.has(input)) showNumber(el, el.contains(document.activeElement)); else input.value = v; }
    } else {
      const input = el.querySelector("input, textarea");
      if (input) input.value = value === undefined || value === null ? "" : Array.isArray(value) ? value.join("\n") : String(value);
    }
    if (kind === "date") { partsFromText(el); showDatePreview(el); }
  }
  function topFields() {
    return Array.from(form.querySelectorAll(".field[data-path]")).filter((f) => !f.closest(".item") && !f.closest("template"));
  }
  function repeatSections() { return Array.from(form.querySelectorAll("section[data-repeat]")); }
  function items(section) { return Array.from(section.querySelectorAll(":scope .items > .item")); }

  function collect(forStorage) {
    const doc = {};
    topFields().forEach((el) => {
      const v = fieldValue(el, forStorage);
      if (v !== undefined) setPath(doc, el.dataset.path, v);
    });
    repeatSections().forEach((section) => {
      const list = items(section).map((item) => {
        const obj = {};
        item.querySelectorAll(".field[data-key]").forEach((el) => {
          const v = fieldValue(el, forStorage);
          if (v !== undefined) setPath(obj, el.dataset.key, v);
        });
        return obj;
      });
      setPath(doc, section.dataset.repeat, list);
    });
    return doc;
  }

  function apply(doc) {
    topFields().forEach((el) => setFieldValue(el, getPath(doc, el.dataset.path)));
    repeatSections().forEach((section) => {
      const list = getPath(doc, section.dataset.repeat) || [];
      while (items(section).length < list.length) addItem(section, false);
      while (items(section).length > list.length) items(section).pop().remove();
      items(section).forEach((item, i) => {
        item.querySelectorAll(".field[data-key]").forEach((el) => setFieldValue(el, getPath(list[i], el.dataset.key)));
      });
      renumber(section);
    });
  }

  // ---- household members --------------------------------------------------------------------------
  function renumber(section) {
    const label = section.dataset.itemLabel;
    items(section).forEach((item, i) => {
      item.dataset.index = String(i);
      item.querySelectorAll(".field[data-key]").forEach((el) => {
        el.dataset.path = section.dataset.repeat + "[" + i + "]." + el.dataset.key;
      });
      const fam = item.querySelector(".field[data-key=family_name] input");
      const giv = item.querySelector(".field[data-key=given_name] input");
      const name = [fam && fam.value.trim(), giv && giv.value.trim()].filter(Boolean).join(" ");
      item.querySelector(".item-title").textContent = label + " " + (i + 1) + (name ? "　" + name : "");
    });
  }
  function nextMemberId(section) {
    const used = new Set(items(section).map((it) => {
      const el = it.querySelector(".field[data-key=id] input");
      return el ? el.value : "";
    }));
    for (let n = 1; ; n++) if (!used.has("m" + n)) return "m" + n;
  }
  function addItem(section, focus) {
    const max = parseInt(section.dataset.max, 10);
    if (items(section).length >= max) { announce(section.dataset.itemLabel + "は" + max + "件までです"); return null; }
    const tpl = section.querySelector("template.item-template");
    const uid = "n" + Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
    const html = tpl.innerHTML.replace(/__i__/g, uid);
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const item = holder.firstElementChild;
    section.querySelector(".items").appendChild(item);
    const idInput = item.querySelector(".field[data-key=id] input");
    if (idInput) idInput.value = nextMemberId(section);
    // Most residents are Japanese nationals; staff change it when not.
    const nat = item.querySelector(".field[data-key=nationality] input");
    if (nat && !nat.value) nat.value = "JP";
    renumber(section);
    if (focus) {
      const first = item.querySelector(".field:not([hidden]) input:not([readonly]), .field:not([hidden]) textarea");
      if (first) first.focus();
    }
    return item;
  }

  // ---- saving -------------------------------------------------------------------------------------
  function remember() {
    try {
      localStorage.setItem(storeKey, JSON.stringify({ baseVersion: version, answers: collect(true), at: Date.now(),
                                                      sending: sendingToken }));
    } catch (e) { /* storage full or disabled: the server copy still holds the last save */ }
  }
  function newToken() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function forget() { try { localStorage.removeItem(storeKey); } catch (e) { /* ignore */ } }
  // Leaving the visit (logout, closing it) takes the unsaved draft with it: nothing personal stays behind.
  document.querySelectorAll("form[action='/logout'], form[action$='/close']").forEach((f) => f.addEventListener("submit", forget));
  function setState(text, cls) { stateEl.textContent = text; stateEl.className = "save-state " + (cls || ""); }
  function announce(text) { setState(text, "warn"); }

  function edited() {
    editCount++;
    remember();
    if (conflicted) return;
    setState("入力中…（自動保存します）", "pending");
    clearTimeout(timer);
    timer = setTimeout(save, 700);
  }

  async function save(overwrite) {
    if (conflicted && !overwrite) return;
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      await saveOnce();
    } finally {
      inflight = false;
      // Edits made while the request was on its way are saved next, whatever the outcome was.
      if (again && !conflicted) { again = false; clearTimeout(timer); timer = setTimeout(save, 50); }
    }
  }

  async function saveOnce() {
    const sentEdit = editCount;
    const answers = collect();
    // A random id for this save, remembered with the draft while it is on the way: after a reload the
    // page can tell its own save (the server keeps the id) from another tablet's.
    sendingToken = newToken();
    ownTokens.push(sendingToken);
    if (ownTokens.length > 20) ownTokens.shift();
    if (editCount !== savedEdit) remember();
    setState("保存中…", "pending");
    let res;
    try {
      res = await fetch("/counter/visits/" + caseId + "/answers", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ answers: answers, version: version, save_token: sendingToken }),
        credentials: "same-origin",
      });
    } catch (e) {
      setState("通信できません。入力はこの端末に保管しています。つながり次第保存します", "warn");
      setTimeout(save, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
      return;
    }
    retryDelay = 2000;
    if (res.status !== 409) ownRetries = 0;
    if (res.status === 401) {
      setState("ログインの有効期限が切れました。入力はこの端末に保管しています。ログインし直してください", "error");
      window.location.href = "/login?expired=1&next=" + encodeURIComponent(location.pathname);
      return;
    }
    if (res.status === 409) {
      let info = null;
      try { info = await res.json(); } catch (e) { info = null; }
      // The newer version was made by this tablet's own save (it landed after a reload, or its answer was
      // lost): not another tablet. Take that version and send this screen again, without asking.
      if (info && info.last_save_token && ownTokens.includes(info.last_save_token) &&
          Number.isInteger(info.current_version) && info.current_version > version && ownRetries < 5) {
        ownRetries++;
        version = info.current_version;
        root.dataset.version = String(version);
        again = true;
        return;
      }
      conflicted = true;
      conflictEl.hidden = false;
      setState("保存されていません（他の端末で更新済み）", "error");
      conflictEl.querySelector("button").focus();
      return;
    }
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok || !body) {
      const msg = body && body.message ? body.message : "保存できませんでした";
      if (body && body.errors) showErrors(body.errors);
      setState(msg + "（入力はこの端末に保管しています）", "error");
      if (res.status >= 500) setTimeout(save, retryDelay);
      return;
    }
    version = body.version;
    root.dataset.version = String(version);
    sendingToken = null;
    showErrors(body.errors);
    applyVisibility(body.visibility);
    applyNormalised(body.normalised, sentEdit);
    document.getElementById("panel").innerHTML = body.panel_html;
    applyNeeded(body.needed || {});
    if (sentEdit === editCount) {
      savedEdit = sentEdit;
      if (body.errors.length === 0) forget(); else remember();
    } else {
      remember();
    }
    const errs = body.errors.length;
    setState(errs ? "保存済み（版 " + version + "）。" + errs + "件の項目を確認してください（その入力はこの端末に保管）"
                  : "保存済み（版 " + version + "）", errs ? "warn" : "ok");
  }

  function fieldFor(path) {
    // The longest data-path that prefixes the error path (address parts report as address.postal_code).
    let best = null;
    form.querySelectorAll(".field[data-path]").forEach((el) => {
      if (el.closest("template")) return;
      const p = el.dataset.path;
      if ((path === p || path.startsWith(p + ".")) && (!best || p.length > best.dataset.path.length)) best = el;
    });
    return best;
  }
  function showErrors(errors) {
    form.querySelectorAll(".field.has-error").forEach((el) => {
      el.classList.remove("has-error");
      el.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
      const e = el.querySelector(".error"); if (e) e.textContent = "";
      delete el.dataset.serverError;
    });
    const general = [];
    (errors || []).forEach((err) => {
      const el = fieldFor(err.field);
      if (!el) { general.push(err.message); return; }
      el.hidden = false;
      el.classList.add("has-error");
      el.dataset.serverError = "1";  // the page's own checks never overwrite what the server said
      const msg = el.querySelector(".error");
      if (msg) msg.textContent = msg.textContent ? msg.textContent + " " + err.message : err.message;
      const part = err.field.slice(el.dataset.path.length + 1);
      const target = part ? el.querySelector("input[data-part=" + CSS.escape(part) + "]") : el.querySelector("input, textarea");
      if (target) target.setAttribute("aria-invalid", "true");
    });
    if (general.length) announce(general.join(" "));
    // Checks done in the browser (My Number check digit) stay visible for what was typed since.
    form.querySelectorAll(".field[data-kind=my_number]").forEach((el) => { if (!el.closest("template")) localCheck(el); });
  }
  function applyVisibility(vis) {
    if (!vis) return;
    form.querySelectorAll(".field[data-path]").forEach((el) => {
      if (el.closest("template")) return;
      const v = vis[el.dataset.path];
      if (!v) return;
      const hasValue = fieldValue(el) !== undefined;
      el.hidden = !(v.asked || hasValue || el.classList.contains("has-error"));
      const legend = el.querySelector(".label-row, legend");
      let req = legend && legend.querySelector(".req");
      if (v.required && legend && !req) {
        req = document.createElement("span"); req.className = "req"; req.textContent = "必須";
        req.setAttribute("aria-hidden", "true"); legend.appendChild(req);
      } else if (!v.required && req) req.remove();
    });
    form.querySelectorAll("section[data-section]").forEach((s) => {
      if (s.dataset.repeat) return;
      s.hidden = !Array.from(s.querySelectorAll(".field")).some((f) => !f.hidden);
      const link = document.querySelector('[data-nav="' + s.dataset.section + '"]');
      if (link) link.hidden = s.hidden;
    });
  }
  function applyNeeded(needed) {
    // 「○○で必要」 marks follow the determination: what an application still lacks is highlighted.
    form.querySelectorAll(".field.is-needed").forEach((el) => {
      el.classList.remove("is-needed");
      el.querySelectorAll(".needed").forEach((b) => b.remove());
    });
    Object.keys(needed).forEach((path) => {
      const el = form.querySelector('.field[data-path="' + CSS.escape(path) + '"]');
      if (!el) return;
      el.classList.add("is-needed");
      const row = el.querySelector(".label-row, legend");
      if (!row) return;
      const badge = document.createElement("span");
      badge.className = "needed";
      badge.setAttribute("aria-hidden", "true");
      badge.textContent = needed[path].join("・") + "で必要";
      row.appendChild(badge);
    });
  }
  function applyNormalised(values, sentEdit) {
    // Show カタカナ, codes and masked numbers as stored; never under the clerk's fingers.
    if (!values || sentEdit !== editCount) return;
    Object.keys(values).forEach((path) => {
      const el = form.querySelector('.field[data-path="' + CSS.escape(path) + '"]');
      if (!el || el.classList.contains("has-error") || el.contains(document.activeElement)) return;
      const kind = el.dataset.kind;
      if (["kana", "country", "phone", "postal_code", "my_number", "digits", "alphabet_name", "name"].includes(kind)) {
        setFieldValue(el, values[path]);
      }
      if (kind === "date") showDatePreview(el, values[path]);
    });
    repeatSections().forEach(renumber);
  }

  // ---- typing help --------------------------------------------------------------------------------
  function toKatakana(s) {
    // NFKC turns half-width ｶﾞ into ガ; hiragana are shifted into the katakana block.
    return s.normalize("NFKC").replace(/[\u3041-\u3096]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0x60));
  }
  function myNumberOk(v) {
    if (!/^\d{12}$/.test(v)) return false;
    const d = v.split("").map(Number);
    let sum = 0;
    for (let n = 1; n <= 11; n++) { const p = d[11 - n]; const q = n <= 6 ? n + 1 : n - 5; sum += p * q; }
    const r = sum % 11; const check = r <= 1 ? 0 : 11 - r;
    return check === d[11];
  }
  const ERAS = [["令和", "2019-05-01"], ["平成", "1989-01-08"], ["昭和", "1926-12-25"], ["大正", "1912-07-30"], ["明治", "1868-01-25"]];
  function wareki(iso) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
    if (!m) return "";
    for (const [era, start] of ERAS) {
      if (iso >= start) {
        const y = parseInt(m[1], 10) - parseInt(start.slice(0, 4), 10) + 1;
        return era + (y === 1 ? "元" : y) + "年" + parseInt(m[2], 10) + "月" + parseInt(m[3], 10) + "日";
      }
    }
    return "";
  }
  function showDatePreview(el, iso) {
    const out = el.querySelector("[data-preview]");
    if (!out) return;
    const input = el.querySelector("input");
    const read = input ? readDate(input.value) : null;
    const value = iso || (read && read.iso) || "";
    out.textContent = value ? "＝ " + wareki(value) + "（" + value + "）" : "";
  }

  // ---- dates on the numeric keypad: era buttons + 年・月・日 digits <-> the date text -------------------
  // The text input stays the value that is sent; the server reads it (app/forms/wareki.py) and reports a
  // field error for a date that does not exist or lies outside its era. This only mirrors the two ways in.
  const ERA_CODES = { "令和": "R", "令": "R", "R": "R", "平成": "H", "平": "H", "H": "H", "昭和": "S", "昭": "S",
                      "S": "S", "大正": "T", "大": "T", "T": "T", "明治": "M", "明": "M", "M": "M" };
  const ERA_NAMES = { R: "令和", H: "平成", S: "昭和", T: "大正", M: "明治" };
  const ERA_START = { R: "2019-05-01", H: "1989-01-08", S: "1926-12-25", T: "1912-07-30", M: "1868-10-23" };
  const ERA_END = { H: "2019-04-30", S: "1989-01-07", T: "1926-12-24", M: "1912-07-29" };
  function pad2(n) { return String(n).padStart(2, "0"); }
  function isoOf(y, m, d) {
    const date = new Date(Date.UTC(y, m - 1, d));
    if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return "";
    return String(y).padStart(4, "0") + "-" + pad2(m) + "-" + pad2(d);
  }
  function readDate(text) {
    // {era: "R"|"AD", y, m, d, iso} from what was typed; iso is "" for a date that does not exist.
    const t = (text || "").normalize("NFKC").replace(/\s+/g, "").toUpperCase();
    let m = /^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$/.exec(t) || /^(\d{4})(\d{2})(\d{2})$/.exec(t);
    if (m) {
      const y = +m[1], mo = +m[2], d = +m[3];
      return { era: "AD", y: y, m: mo, d: d, iso: isoOf(y, mo, d) };
    }
    m = /^(令和|平成|昭和|大正|明治|令|平|昭|大|明|R|H|S|T|M)(\d{1,2}|元)[-/.年](\d{1,2})[-/.月](\d{1,2})日?$/.exec(t);
    if (!m) return null;
    const era = ERA_CODES[m[1]];
    const ey = m[2] === "元" ? 1 : +m[2];
    const y = +ERA_START[era].slice(0, 4) + ey - 1, mo = +m[3], d = +m[4];
    let iso = ey >= 1 ? isoOf(y, mo, d) : "";
    if (iso && (iso < ERA_START[era] || (ERA_END[era] && iso > ERA_END[era]))) iso = "";
    return { era: era, y: ey, m: mo, d: d, iso: iso };
  }
  function dateParts(el) {
    const box = el.querySelector("[data-date-parts]");
    if (!box) return null;
    return { box: box, y: box.querySelector("[data-date-part=y]"), m: box.querySelector("[data-date-part=m]"),
             d: box.querySelector("[data-date-part=d]"),
             era: () => { const c = box.querySelector("[data-date-part=era]:checked"); return c ? c.value : "R"; },
             setEra: (code) => box.querySelectorAll("[data-date-part=era]").forEach((r) => { r.checked = r.value === code; }) };
  }
  function partsFromText(el) {
    // Typed (or restored) text -> era buttons and digits; a date in 明治 is shown in 西暦.
    const p = dateParts(el);
    const input = el.querySelector("input");
    if (!p || !input) return;
    const read = readDate(input.value);
    if (!read) { if (!input.value.trim()) { p.y.value = ""; p.m.value = ""; p.d.value = ""; } return; }
    if (read.era === "M" && read.iso) {
      p.setEra("AD"); p.y.value = read.iso.slice(0, 4);
    } else if (read.era === "AD" && read.iso && !p.box.dataset.touched) {
      // A stored ISO date is shown in the era the forms print (the clerk may switch to 西暦).
      const w = /^(\D+)(元|\d+)年/.exec(wareki(read.iso));
      const code = w ? ERA_CODES[w[1]] : "AD";
      if (code && code !== "M") { p.setEra(code); p.y.value = w[2] === "元" ? "1" : w[2]; } else { p.setEra("AD"); p.y.value = String(read.y); }
    } else {
      p.setEra(read.era); p.y.value = String(read.y);
    }
    p.m.value = String(read.m); p.d.value = String(read.d);
  }
  function textFromParts(el) {
    // Era buttons and digits -> the date text the server reads (令和8年4月6日 / 2026年4月6日).
    const p = dateParts(el);
    const input = el.querySelector("input");
    if (!p || !input) return;
    p.box.dataset.touched = "1";
    [p.y, p.m, p.d].forEach((i) => { i.value = i.value.normalize("NFKC").replace(/\D/g, ""); });
    const y = p.y.value, m = p.m.value, d = p.d.value;
    if (!y && !m && !d) { input.value = ""; return; }
    const era = p.era();
    input.value = (era === "AD" ? "" : ERA_NAMES[era]) + y + "年" + m + "月" + d + "日";
  }
  function localCheck(el) {
    const kind = el.dataset.kind;
    const input = el.querySelector("input");
    const msg = el.querySelector(".error");
    if (!input || !msg) return;
    if (kind === "my_number") {
      const v = typedNumber(el);
      if (v && !v.startsWith("*")) {
        const bad = v.length === 12 && !myNumberOk(v) ? "個人番号の検査用数字（最後の1桁）が正しくありません。番号を確かめてください"
          : v.length > 12 || /\D/.test(v) ? "個人番号は12桁の数字です" : "";
        if (!bad && el.dataset.serverError) return;  // keep the server's error until the server clears it
        msg.textContent = bad;
        el.classList.toggle("has-error", !!bad);
        if (bad) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
      }
    }
  }
  async function postalFill(el, input) {
    const digits = input.value.normalize("NFKC").replace(/[^\d]/g, "");
    if (digits.length !== 7) return;
    try {
      const res = await fetch("/counter/postal?code=" + digits, { headers: { "Accept": "application/json" }, credentials: "same-origin" });
      const body = await res.json();
      const msg = el.querySelector(".error");
      if (!body.found) { if (msg) msg.textContent = body.message; return; }
      input.value = body.postal_code;
      ["prefecture", "city", "town"].forEach((p) => {
        const i = el.querySelector("input[data-part=" + p + "]");
        if (i && body[p]) i.value = body[p];
      });
      if (msg) msg.textContent = "";
      const block = el.querySelector("input[data-part=" + (body.town ? "block" : "town") + "]");
      if (block) block.focus();
      edited();
    } catch (e) { /* offline: the clerk types the address by hand */ }
  }

  // ---- events -------------------------------------------------------------------------------------
  form.addEventListener("input", (ev) => {
    const el = ev.target.closest(".field");
    if (el && el.dataset.kind === "my_number" && ev.target === numberInput(el)) {
      const digits = digitsOf(ev.target.value);
      if (digits && !digits.includes("*")) {
        myNumbers.set(ev.target, digits);
        const atEnd = ev.target.selectionStart === ev.target.value.length;
        if (/^\d*$/.test(digits) && digits.length <= 12) {
          ev.target.value = groupNumber(digits);
          if (atEnd) ev.target.setSelectionRange(ev.target.value.length, ev.target.value.length);
        }
      } else {
        myNumbers.delete(ev.target);
      }
    }
    if (el) {
      localCheck(el);
      if (ev.target.classList.contains("postal")) postalFill(el, ev.target);
      if (el.dataset.kind === "date") {
        if (ev.target.dataset.datePart) textFromParts(el); else partsFromText(el);
        showDatePreview(el);
      }
    }
    if (!ev.isComposing) edited();
  });
  form.addEventListener("change", (ev) => {
    const el = ev.target.closest(".field");
    if (el && el.dataset.kind === "kana" && ev.target.value) ev.target.value = toKatakana(ev.target.value);
    edited();
  });
  form.addEventListener("focusin", (ev) => {
    const el = ev.target.closest(".field[data-kind=my_number]");
    if (el && ev.target === numberInput(el)) showNumber(el, true);
  });
  form.addEventListener("focusout", (ev) => {
    const el = ev.target.closest(".field[data-kind=my_number]");
    if (el && ev.target === numberInput(el) && !el.querySelector(".reveal[aria-pressed=true]")) showNumber(el, false);
  });
  form.addEventListener("focusout", () => { if (editCount !== savedEdit && !conflicted) { clearTimeout(timer); save(); } });
  form.addEventListener("click", (ev) => {
    const add = ev.target.closest(".add-item");
    if (add) { addItem(add.closest("section"), true); edited(); return; }
    const rm = ev.target.closest(".remove-item");
    if (rm) {
      const section = rm.closest("section");
      const item = rm.closest(".item");
      const title = item.querySelector(".item-title").textContent;
      if (!window.confirm(title + " を削除しますか？")) return;
      item.remove();
      renumber(section);
      edited();
    }
  });
  form.addEventListener("submit", (ev) => ev.preventDefault());
  document.getElementById("panel").addEventListener("click", (ev) => {
    const a = ev.target.closest("[data-goto]");
    if (!a) return;
    ev.preventDefault();
    const el = fieldFor(a.dataset.goto);
    if (el) { el.hidden = false; const i = el.querySelector("input:not([readonly]), textarea"); if (i) i.focus(); el.scrollIntoView({ block: "center" }); }
  });
  document.getElementById("conflict-reload").addEventListener("click", () => {
    discarding = true;  // the clerk chose the newer version: do not keep this screen's input
    forget();
    window.location.reload();
  });
  document.getElementById("conflict-overwrite").addEventListener("click", async () => {
    // Explicit choice by the clerk: take the newest version number and save this screen over it.
    const res = await fetch("/counter/visits/" + caseId + "/version", { headers: { "Accept": "application/json" }, credentials: "same-origin" });
    if (!res.ok) return;
    version = (await res.json()).version;
    conflicted = false;
    conflictEl.hidden = true;
    save(true);
  });
  async function flush() {
    // Save whatever is pending before leaving the screen (bounded: about ten seconds).
    clearTimeout(timer);
    for (let i = 0; i < 100 && !conflicted && (inflight || editCount !== savedEdit); i++) {
      if (!inflight) await save(); else await new Promise((r) => setTimeout(r, 100));
    }
  }
  document.getElementById("to-review").addEventListener("click", async (ev) => {
    if (editCount !== savedEdit || inflight) {
      ev.preventDefault();
      await flush();
      if (!conflicted) window.location.href = ev.target.href;
    }
  });
  window.addEventListener("online", () => { if (editCount !== savedEdit) save(); });
  window.addEventListener("beforeunload", () => { if (editCount !== savedEdit && !discarding) remember(); });

  // ---- 「世帯主と同じ」: copy the head's surname, furigana, insurance … into another member --------------
  const SAME_AS_HEAD = ["family_name", "family_name_kana", "nationality", "health_insurance", "honseki", "hittousha"];
  function headItem(item) {
    const items = Array.from(item.parentElement.querySelectorAll(":scope > .item"));
    return items.find((it) => it !== item && it.querySelector(".field[data-key=relationship] input[value=head]:checked"));
  }
  function addSameAsHead(item) {
    SAME_AS_HEAD.forEach((key) => {
      const el = item.querySelector(".field[data-key=" + key + "]");
      if (!el || el.querySelector(".same-as-head")) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button small secondary same-as-head";
      button.textContent = "世帯主と同じ";
      button.addEventListener("click", () => {
        const head = headItem(item);
        const from = head && head.querySelector(".field[data-key=" + key + "]");
        if (!from) { announce("先に世帯主を選んでください"); return; }
        setFieldValue(el, fieldValue(from));
        edited();
      });
      (el.querySelector(".label-row") || el.querySelector("legend") || el).appendChild(button);
    });
  }
  function addReveal(scope) {
    scope.querySelectorAll(".field[data-kind=my_number]").forEach((el) => {
      if (el.closest("template") || el.querySelector(".reveal")) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button small secondary reveal";
      button.textContent = "表示";
      button.setAttribute("aria-pressed", "false");
      button.setAttribute("aria-label", "個人番号を表示");
      button.addEventListener("click", () => {
        const on = button.getAttribute("aria-pressed") !== "true";
        button.setAttribute("aria-pressed", on ? "true" : "false");
        button.textContent = on ? "隠す" : "表示";
        showNumber(el, on);
      });
      (el.querySelector(".label-row") || el).appendChild(button);
    });
  }
  addReveal(form);
  form.querySelectorAll(".items > .item").forEach(addSameAsHead);
  new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((n) => {
    if (n.nodeType === 1 && n.classList.contains("item")) { addSameAsHead(n); addReveal(n); }
  }))).observe(form, { childList: true, subtree: true });

  // ---- start: restore what this tablet had not saved yet ------------------------------------------
  form.querySelectorAll(".field[data-kind=date]").forEach((el) => { if (!el.closest("template")) { partsFromText(el); showDatePreview(el); } });
  let draft = null;
  try { draft = JSON.parse(localStorage.getItem(storeKey) || "null"); } catch (e) { draft = null; }
  if (draft && draft.sending) ownTokens.push(draft.sending);
  if (draft && draft.answers) {
    const ownSave = draft.sending && draft.sending === root.dataset.lastSave && draft.baseVersion < version;
    if (draft.baseVersion === version || ownSave) {
      // Unsaved input of this tablet (the newer version, if any, is this tablet's own save that was on its way).
      apply(draft.answers);
      document.getElementById("restored").hidden = false;
      edited();
    } else if (draft.baseVersion < version) {
      // Someone saved after this tablet's unsaved input: never overwrite silently; ask.
      apply(draft.answers);
      document.getElementById("restored").hidden = false;
      conflicted = true;
      conflictEl.hidden = false;
      editCount++;
    } else {
      forget();
    }
  }
})();
