// Waiting-room board: live by Server-Sent Events, polling every 5 s if they fail. A new call (or a
// recall) plays a chime (Web Audio) and is spoken in Japanese (speechSynthesis).
(function () {
  "use strict";
  var root = document.getElementById("board");
  if (!root) { return; }
  var version = root.getAttribute("data-version");
  var pollTimer = null;
  var seen = {};
  var audio = null;
  var queue = [];
  var speaking = false;
  // What was announced, newest last (read by the browser tests; nothing personal is in it).
  window.boardAnnouncements = [];

  Array.prototype.forEach.call(document.querySelectorAll("#calling li[data-key]"), function (li) {
    seen[li.getAttribute("data-key")] = true;
  });

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function fill(id, items, build) {
    var list = document.getElementById(id);
    while (list.firstChild) { list.removeChild(list.firstChild); }
    items.forEach(function (item) { list.appendChild(build(item)); });
  }

  function context() {
    if (audio) { return audio; }
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) { return null; }
    try { audio = new Ctx(); } catch (e) { audio = null; }
    return audio;
  }
  function chime() {
    var ctx = context();
    if (!ctx || ctx.state !== "running") { return 0; }
    var start = ctx.currentTime + 0.05;
    // Two soft bell tones (ピンポーン), about 1.4 s.
    [[880, 0], [659.25, 0.45]].forEach(function (tone) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = tone[0];
      gain.gain.setValueAtTime(0.0001, start + tone[1]);
      gain.gain.exponentialRampToValueAtTime(0.35, start + tone[1] + 0.03);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + tone[1] + 0.9);
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(start + tone[1]); osc.stop(start + tone[1] + 1.0);
    });
    return 1400;
  }
  function speak(text, done) {
    if (!window.speechSynthesis || !window.SpeechSynthesisUtterance) { done(); return; }
    var u = new SpeechSynthesisUtterance(text);
    u.lang = "ja-JP";
    u.rate = 0.9;
    var voices = window.speechSynthesis.getVoices() || [];
    for (var i = 0; i < voices.length; i++) { if (/^ja/i.test(voices[i].lang)) { u.voice = voices[i]; break; } }
    var finished = false;
    var end = function () { if (!finished) { finished = true; done(); } };
    u.onend = end; u.onerror = end;
    window.setTimeout(end, 12000);  // never let a silent engine block the next call
    window.speechSynthesis.speak(u);
  }
  function next() {
    if (speaking || !queue.length) { return; }
    speaking = true;
    var text = queue.shift();
    window.boardAnnouncements.push(text);
    var wait = chime();
    window.setTimeout(function () {
      // Said twice, as the counters do, so someone who missed the start still hears it.
      speak(text, function () { speak(text, function () { speaking = false; next(); }); });
    }, wait);
  }
  function announce(text) { queue.push(text); next(); }

  var soundButton = document.getElementById("sound");
  function offerSound() {
    var ctx = context();
    if (soundButton && ctx && ctx.state !== "running") { soundButton.hidden = false; }
  }
  if (soundButton) {
    soundButton.addEventListener("click", function () {
      var ctx = context();
      if (ctx && ctx.resume) { ctx.resume(); }
      soundButton.hidden = true;
    });
  }
  offerSound();

  function render(b) {
    if (!b || b.version === version) { return; }
    version = b.version;
    var fresh = [];
    fill("calling", b.calling, function (item) {
      var key = item.number + ":" + item.call_count + ":" + item.queue;
      if (!seen[key]) { seen[key] = true; fresh.push(item.speech); }
      var li = el("li");
      li.setAttribute("data-key", key);
      li.appendChild(el("span", "num", item.label));
      var arrow = el("span", "arrow", "→"); arrow.setAttribute("aria-hidden", "true"); li.appendChild(arrow);
      var where = el("span", "where");
      where.appendChild(el("span", "counter", item.counter_text));
      where.appendChild(el("span", "queue", item.queue_name + (item.place ? "（" + item.place + "）" : "")));
      li.appendChild(where);
      return li;
    });
    fill("recent", b.recent, function (item) {
      var li = el("li");
      li.appendChild(el("span", "num", item.label));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "counter", item.queue_name + " " + item.counter_text));
      return li;
    });
    document.getElementById("none").hidden = b.calling.length > 0;
    document.getElementById("waiting").textContent = b.waiting_text;
    fresh.reverse().forEach(announce);  // oldest call first
  }
  function poll() {
    if (pollTimer) { return; }
    var url = root.getAttribute("data-json-url");
    var tick = function () {
      fetch(url, { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; }).then(render)
        .catch(function () { /* try again next tick */ });
    };
    tick();
    pollTimer = window.setInterval(tick, 5000);
  }
  if (!window.EventSource) { poll(); return; }
  var failures = 0;
  var source = new EventSource(root.getAttribute("data-events-url"));
  source.addEventListener("board", function (e) {
    failures = 0;
    try { render(JSON.parse(e.data)); } catch (err) { /* ignore */ }
  });
  source.onerror = function () {
    failures += 1;
    if (failures >= 3 || source.readyState === EventSource.CLOSED) { source.close(); poll(); }
  };
})();
