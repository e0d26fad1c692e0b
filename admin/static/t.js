/*! crosscast.js: Crosscast's website tag (docs/tag.md). No dependencies, ES2017, no eval. */
(function (w, d, nav) {
  "use strict";
  var cc = w.crosscast;
  if (cc && cc.__cc) return; // loaded twice
  if (!Array.isArray(cc)) cc = [];
  var VERSION = "1.0.0", YEAR = 31536000, MAXQ = 200, MAXN = 50, MAXB = 30000;
  var el = d.currentScript || d.querySelector("script[data-write-key]") || { dataset: {} };
  var ds = el.dataset, src = el.src || "";
  var key = ds.writeKey;
  var base = ds.host || (src ? new URL(".", src).href : "");
  var endpoint = base ? new URL("v1/batch", base.replace(/\/?$/, "/")).href : "";
  var https = location.protocol === "https:";

  function ls(k, v) { // get (v undefined), set (string) or remove (null); never throws
    try {
      var s = w.localStorage;
      if (v === undefined) return s.getItem(k);
      if (v === null) s.removeItem(k); else s.setItem(k, v);
    } catch (e) { /* storage disabled */ }
    return null;
  }
  function cookie(n, v, age) {
    try {
      if (v === undefined) {
        var all = d.cookie.split("; ");
        for (var i = 0; i < all.length; i++) {
          if (all[i].indexOf(n + "=") === 0) return decodeURIComponent(all[i].slice(n.length + 1));
        }
        return null;
      }
      d.cookie = n + "=" + encodeURIComponent(v) + "; Max-Age=" + age + "; Path=/; SameSite=Lax" +
        (ds.cookieDomain ? "; Domain=" + ds.cookieDomain : "") + (https ? "; Secure" : "");
    } catch (e) { /* cookies disabled */ }
    return null;
  }
  function load(n) { return cookie(n) || ls(n); }
  function keep(n, v) { // first-party cookie plus a localStorage copy; null deletes both
    if (v === null) { cookie(n, "", 0); ls(n, null); } else if (allowed()) { cookie(n, v, YEAR); ls(n, v); }
  }

  // Consent: "out" after optOut(); with data-consent="pending" nothing is stored or sent until optIn().
  var consent = load("cc_consent");
  function choose(v) { consent = v; cookie("cc_consent", v, YEAR); ls("cc_consent", v); }
  function allowed() { return consent === "in" || (consent !== "out" && ds.consent !== "pending"); }

  function uuid() {
    var c = w.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16), i;
    if (c && c.getRandomValues) c.getRandomValues(b); else for (i = 0; i < 16; i++) b[i] = Math.random() * 256;
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.from(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  var anon = null, uid = load("cc_uid");
  function anonId() {
    if (!anon) anon = load("cc_anon") || uuid();
    keep("cc_anon", anon); // also slides the cookie's year
    return anon;
  }

  function pageProps() {
    return { path: location.pathname, referrer: d.referrer, search: location.search, title: d.title,
      url: location.href.split("#")[0] };
  }
  function context() {
    var c = { page: pageProps(), userAgent: nav.userAgent, locale: nav.language,
      library: { name: "crosscast.js", version: VERSION } }, camp = {}, n = 0;
    try { c.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* no Intl */ }
    new URLSearchParams(location.search).forEach(function (v, k) {
      if (k.indexOf("utm_") === 0 && k.length > 4) { camp[k === "utm_campaign" ? "name" : k.slice(4)] = v; n++; }
    });
    if (n) c.campaign = camp;
    return c;
  }

  // The queue: messages wait here, and in localStorage under this page's key, until the server accepted them.
  var qkey = "cc_q_" + uuid().slice(0, 8), q = [], sending = {}, tries = 0, timer = 0;
  function save() { if (allowed()) ls(qkey, q.length ? JSON.stringify(q) : null); }
  function adopt() { // messages earlier pages could not send (reload, offline, closed tab); the server dedupes
    try {
      var s = w.localStorage;
      for (var i = s.length - 1; i >= 0; i--) {
        var k = s.key(i);
        if (k && k.indexOf("cc_q_") === 0 && k !== qkey) {
          var old = JSON.parse(s.getItem(k) || "[]");
          s.removeItem(k);
          if (Array.isArray(old)) q = old.concat(q);
        }
      }
    } catch (e) { /* storage disabled or corrupt */ }
    q = q.slice(-MAXQ);
  }
  function enqueue(type, fields) {
    if (consent === "out") return;
    var now = new Date().toISOString();
    var m = Object.assign({ type: type, messageId: uuid(), anonymousId: anonId(), timestamp: now,
      originalTimestamp: now, context: context() }, fields);
    if (uid && !m.userId) m.userId = uid;
    try { JSON.stringify(m); } catch (e) { // a cycle or a BigInt in the properties: it could never be sent
      if (w.console) console.warn("crosscast: " + type + " dropped: " + e.message);
      return;
    }
    q.push(m);
    if (q.length > MAXQ) q.splice(0, q.length - MAXQ);
    save();
    schedule(0);
  }
  function schedule(ms) {
    if (!timer) timer = setTimeout(function () { timer = 0; flush(); }, ms);
  }
  function take() { // the next batch: up to MAXN messages and about MAXB bytes, not already in flight
    var out = [], size = 0, now = new Date().toISOString();
    for (var i = 0; i < q.length && out.length < MAXN; i++) {
      var m = q[i];
      if (sending[m.messageId]) continue;
      m.sentAt = now;
      var n = new Blob([JSON.stringify(m)]).size;
      if (out.length && size + n > MAXB) break;
      out.push(m);
      size += n;
    }
    return out;
  }
  function body(batch) {
    return JSON.stringify({ batch: batch, writeKey: key, sentAt: new Date().toISOString() });
  }
  function mark(batch, on) { batch.forEach(function (m) { if (on) sending[m.messageId] = 1; else delete sending[m.messageId]; }); }
  function sent(batch) {
    var ids = {};
    batch.forEach(function (m) { ids[m.messageId] = 1; });
    q = q.filter(function (m) { return !ids[m.messageId]; });
    save();
  }
  function flush() {
    if (!endpoint || !key || !allowed()) return;
    var batch = take();
    if (!batch.length) return;
    var b = body(batch);
    mark(batch, true);
    // text/plain keeps the request "simple": no CORS preflight. keepalive lets it finish after the page goes.
    fetch(endpoint, { method: "POST", body: b, headers: { "Content-Type": "text/plain" }, credentials: "omit",
      keepalive: new Blob([b]).size < 60000 })
      .then(function (r) {
        if (r.status >= 500 || r.status === 429) throw new Error("status " + r.status);
        if (!r.ok && w.console) console.warn("crosscast: events refused with status " + r.status);
        sent(batch); // accepted, or refused for good (4xx): either way not worth sending again
        tries = 0;
      })
      .then(function () { mark(batch, false); if (q.length) schedule(0); },
        function () { // network error or server trouble: back off, 1 s doubling to 1 min, jittered
          mark(batch, false);
          tries++;
          clearTimeout(timer);
          timer = 0;
          schedule(Math.min(60000, 1000 * Math.pow(2, tries - 1)) * (0.5 + Math.random() / 2));
        });
  }
  function beacon() { // the page is going away: hand what is left to the browser
    if (!endpoint || !key || !allowed() || tries || !nav.sendBeacon) return; // backing off: keep for next load
    for (var batch = take(); batch.length; batch = take()) {
      if (!nav.sendBeacon(endpoint, body(batch))) break;
      sent(batch);
    }
  }
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") beacon(); });
  w.addEventListener("pagehide", beacon);

  function obj(v) { return v && typeof v === "object" ? v : {}; }
  var api = {
    __cc: true,
    VERSION: VERSION,
    page: function (name, properties) {
      if (typeof name === "object") { properties = name; name = null; }
      var p = Object.assign(pageProps(), obj(properties)), f = { properties: p };
      if (name) { f.name = p.name = String(name); }
      enqueue("page", f);
    },
    track: function (event, properties) {
      if (event) enqueue("track", { event: String(event), properties: obj(properties) });
    },
    identify: function (userId, traits) {
      if (typeof userId === "object" && userId !== null) { traits = userId; userId = null; }
      if (userId !== null && userId !== undefined && userId !== "") { uid = String(userId); keep("cc_uid", uid); }
      enqueue("identify", { traits: obj(traits) });
    },
    alias: function (userId, previousId) {
      if (!userId) return;
      var prev = previousId ? String(previousId) : uid || anonId();
      uid = String(userId);
      keep("cc_uid", uid);
      enqueue("alias", { userId: uid, previousId: prev });
    },
    group: function (groupId, traits) {
      if (groupId) enqueue("group", { groupId: String(groupId), traits: obj(traits) });
    },
    reset: function () { uid = anon = null; keep("cc_uid", null); keep("cc_anon", null); },
    optOut: function () {
      choose("out");
      q = [];
      ls(qkey, null);
      api.reset();
    },
    optIn: function () {
      choose("in");
      if (anon) keep("cc_anon", anon);
      if (uid) keep("cc_uid", uid);
      save();
      schedule(0);
    },
    user: function () { return { anonymousId: anonId(), userId: uid }; },
    ready: function (fn) { if (typeof fn === "function") fn(w.crosscast); },
    push: function (call) { // ["track", "Signed Up", {...}]: for pages that queue without the snippet
      if (Array.isArray(call) && typeof api[call[0]] === "function" && call[0] !== "push") {
        try { api[call[0]].apply(api, call.slice(1)); } catch (e) { setTimeout(function () { throw e; }); }
      }
      return 0;
    }
  };

  if (!key && w.console) console.warn("crosscast: no data-write-key on the t.js script tag; nothing is sent");
  if (allowed()) adopt();
  var waiting = cc.splice(0, cc.length); // calls made before t.js loaded, replayed in order
  Object.keys(api).forEach(function (k) { cc[k] = api[k]; }); // keep the stub object: references to it stay live
  w.crosscast = cc;
  if (ds.autoPage !== "false") api.page();
  waiting.forEach(api.push);
  if (q.length) schedule(0);
})(window, document, navigator);
