// Browser tests of the website tag (admin/static/t.js) in real headless Chromium: a Crosscast server on one origin,
// a shop's web pages on another, and the tag carrying page views and calls between them. Run with `make e2e`.
//
// Environment: CROSSCAST_BIN (default bin/crosscast, built with `make build` when missing), CHROMIUM (default
// /usr/bin/chromium), E2E_KEEP=1 to keep the temp dir (config, data, server log) after the run.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as acorn from "acorn";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = process.env.CROSSCAST_BIN || path.join(root, "bin", "crosscast");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TOKEN = "e2e-bootstrap-" + crypto.randomBytes(16).toString("hex");
const WRITE_KEY = "wk_test_e2e_" + crypto.randomBytes(8).toString("hex");
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

let tmp, server, serverLog = "", cc, site, siteServer, browser, snippet;

// until polls fn until it returns something truthy, or fails after ms with what it was waiting for.
async function until(what, fn, ms = 30000) {
  const end = Date.now() + ms;
  let last;
  for (let pause = 20; ; pause = Math.min(pause * 2, 250)) {
    try {
      const v = await fn();
      if (v) return v;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ": " + last.message : ""}`);
    await new Promise((r) => setTimeout(r, pause));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// api calls Crosscast's REST API with the bootstrap (owner) token.
async function api(p) {
  const r = await fetch(cc + p, { headers: { Authorization: "Bearer " + TOKEN } });
  const body = await r.text();
  if (!r.ok) throw new Error(`GET ${p}: ${r.status} ${body}`);
  return JSON.parse(body);
}

async function allPages(p) {
  const out = [];
  let cursor = "";
  do {
    const sep = p.includes("?") ? "&" : "?";
    const page = await api(p + (cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ""));
    out.push(...page.items);
    cursor = page.next;
  } while (cursor);
  return out;
}

async function startCrosscast() {
  if (!fs.existsSync(BIN)) {
    const b = spawnSync("make", ["build"], { cwd: root, stdio: "inherit" });
    assert.equal(b.status, 0, "make build failed");
  }
  const port = await freePort();
  cc = `http://127.0.0.1:${port}`;
  const config = path.join(tmp, "crosscast.hcl");
  fs.writeFileSync(config, `
server {
  listen     = "127.0.0.1:${port}"
  public_url = "${cc}"
}
storage {
  data_dir = "${path.join(tmp, "data")}"
  fsync    = false
}
log {
  level = "debug"
}
admin {
  bootstrap_token = "${TOKEN}"
}
workspace "shop" {
  name      = "Shop"
  write_key = "${WRITE_KEY}"
}
`);
  server = spawn(BIN, ["serve", "-config", config], { stdio: ["ignore", "pipe", "pipe"] });
  const logFile = fs.createWriteStream(path.join(tmp, "crosscast.log"));
  for (const s of [server.stdout, server.stderr]) {
    s.on("data", (b) => {
      serverLog += b;
      logFile.write(b);
    });
  }
  let exited = null;
  server.once("exit", (code, signal) => (exited = `exited with ${code ?? signal}`));
  await until("crosscast /readyz", async () => {
    if (exited) throw new Error(`crosscast ${exited}:\n${serverLog}`);
    return (await fetch(cc + "/readyz").catch(() => ({ ok: false }))).ok;
  }, 30000);
}

async function stopCrosscast() {
  if (!server || server.exitCode !== null) return;
  const done = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM");
  const timer = setTimeout(() => server.kill("SIGKILL"), 10000);
  await done;
  clearTimeout(timer);
}

// The shop: pages on another origin (http://localhost:PORT against Crosscast's http://127.0.0.1:PORT).
function page(title, head, bodyHTML) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>${head}</head>` +
    `<body><h1>${title}</h1>${bodyHTML}</body></html>`;
}

function startSite() {
  return new Promise((resolve) => {
    siteServer = http.createServer((req, res) => {
      const url = new URL(req.url, "http://x");
      const html = (body, headers = {}) => {
        res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", ...headers });
        res.end(body);
      };
      // Only this page's own scripts and Crosscast's: no inline code (so not the inline snippet).
      const strict = `default-src 'self'; script-src 'self' ${snippet.csp_script_src.split(" ")[0]}; ` +
        `connect-src 'self' ${snippet.csp_connect_src}; img-src 'self'; style-src 'self'; base-uri 'none'; object-src 'none'`;
      switch (url.pathname) {
        case "/":
        case "/shop":
          // The snippet, then calls made before t.js has loaded: they must be replayed, in order.
          return html(page("Shop", snippet.snippet +
            `<script>crosscast.track("Before Load", {step: 1}); crosscast.track("Before Load", {step: 2});</script>`,
          `<a href="/next">next</a>`));
        case "/next":
          return html(page("Next", snippet.snippet, ""));
        case "/csp":
          return html(page("Strict CSP", snippet.script_tag + `<script src="/app.js"></script>`, ""),
            { "Content-Security-Policy": strict });
        case "/csp-hash":
          return html(page("Strict CSP with the inline snippet", snippet.snippet, ""), {
            "Content-Security-Policy": `default-src 'self'; script-src 'self' ${snippet.csp_script_src}; ` +
              `connect-src 'self' ${snippet.csp_connect_src}; base-uri 'none'; object-src 'none'`,
          });
        case "/consent":
          return html(page("Consent first", snippet.script_tag.replace(" data-write-key", ` data-consent="pending" data-write-key`), ""),
            { "Content-Security-Policy": strict });
        case "/app.js":
          // A site's own script queueing a call without the stub (window.crosscast may not exist yet).
          res.writeHead(200, { "Content-Type": "application/javascript" });
          return res.end(`window.crosscast = window.crosscast || [];\n` +
            `window.crosscast.push(["track", "CSP Loaded", {via: "push"}]);\n`);
        case "/favicon.ico":
          res.writeHead(204);
          return res.end();
      }
      res.writeHead(404);
      res.end();
    });
    siteServer.listen(0, "127.0.0.1", () => {
      site = `http://localhost:${siteServer.address().port}`;
      resolve();
    });
  });
}

// watch records, for one browser context, what the tag sent and what went wrong.
function watch(ctx) {
  const w = { sent: [], accepted: new Map(), statuses: [], problems: [] };
  const batchURL = cc + "/v1/batch";
  ctx.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") w.problems.push(`console ${m.type()}: ${m.text()}`);
  });
  ctx.on("weberror", (e) => w.problems.push(`page error: ${e.error().message}`));
  ctx.on("requestfailed", (r) => w.problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  ctx.on("request", (r) => {
    if (r.url() !== batchURL) return;
    const body = JSON.parse(r.postData());
    w.sent.push({ body, type: r.resourceType() });
  });
  ctx.on("response", (r) => {
    if (r.status() >= 400) w.problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
    if (r.url() === batchURL) w.statuses.push(r.status());
  });
  // Accepted once the whole answer arrived (not at its headers): a test that then leaves the page cancels nothing.
  ctx.on("requestfinished", async (r) => {
    if (r.url() !== batchURL) return;
    const resp = await r.response();
    if (resp?.status() !== 200) return;
    for (const m of JSON.parse(r.postData()).batch) w.accepted.set(m.messageId, m);
  });
  // accepted finds the messages the server took (200) that match, in the order they were sent.
  w.find = (pred) => [...w.accepted.values()].filter(pred);
  w.one = async (what, pred) => (await until(what, () => w.find(pred).length > 0 && w.find(pred)))[0];
  return w;
}

async function newContext() {
  const ctx = await browser.newContext();
  // Any CSP violation, reported from inside the page: it must stay empty.
  await ctx.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return { ctx, w: watch(ctx) };
}

async function cookies(ctx) {
  return Object.fromEntries((await ctx.cookies(site)).map((c) => [c.name, c]));
}

const loaded = (p) => p.waitForFunction(() => window.crosscast && window.crosscast.__cc === true);

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "crosscast-e2e-"));
  await startCrosscast();
  snippet = await api("/api/v1/workspaces/shop/tracking-snippet");
  await startSite();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a fresh, empty profile (--user-data-dir) of its own.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  siteServer?.close();
  await stopCrosscast();
  if (process.env.E2E_KEEP) console.log(`kept ${tmp}`);
  else if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("GET /t.js serves the tag, which is ES2017 and has no code from strings", async () => {
  const r = await fetch(cc + "/t.js", { headers: { Origin: site } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "application/javascript; charset=utf-8");
  assert.equal(r.headers.get("cache-control"), "public, max-age=300");
  assert.equal(r.headers.get("access-control-allow-origin"), "*");
  const src = await r.text();
  assert.equal(src, fs.readFileSync(path.join(root, "admin", "static", "t.js"), "utf8"));
  acorn.parse(src, { ecmaVersion: 2017, sourceType: "script" }); // throws on newer syntax
  const again = await fetch(cc + "/t.js", { headers: { "If-None-Match": r.headers.get("etag") } });
  assert.equal(again.status, 304);
  // The snippet's inline stub too (without its <script> element).
  acorn.parse(snippet.snippet.replace(/^<script>|<\/script>$/g, ""), { ecmaVersion: 5, sourceType: "script" });
  assert.equal(snippet.write_key, WRITE_KEY);
  assert.equal(snippet.script_url, cc + "/t.js");
});

test("page view, identify and track from another origin reach one contact", { timeout: 90000 }, async () => {
  const { ctx, w } = await newContext();
  const p = await ctx.newPage();
  const ua = await p.evaluate(() => navigator.userAgent);
  await p.goto(`${site}/?utm_source=newsletter&utm_campaign=spring#top`);
  await loaded(p);

  // First-party anonymous id: a cookie of the shop's host, readable by the page, plus a localStorage copy.
  const jar = await cookies(ctx);
  const anon = jar.cc_anon?.value;
  assert.match(anon ?? "", UUID, "cc_anon cookie");
  assert.equal(jar.cc_anon.domain, "localhost");
  assert.equal(jar.cc_anon.path, "/");
  assert.equal(jar.cc_anon.sameSite, "Lax");
  assert.equal(jar.cc_anon.secure, false, "not Secure on http");
  const days = (jar.cc_anon.expires * 1000 - Date.now()) / 864e5;
  assert.ok(days > 364 && days <= 365.1, `cc_anon lasts ${days} days`);
  assert.equal(await p.evaluate(() => document.cookie.match(/(?:^|; )cc_anon=([^;]*)/)[1]), anon);
  assert.equal(await p.evaluate(() => localStorage.getItem("cc_anon")), anon);

  // The automatic page view, with the Segment fields.
  const view = await w.one("the automatic page view", (m) => m.type === "page" && !m.userId);
  assert.equal(view.anonymousId, anon);
  assert.match(view.messageId, UUID);
  for (const k of ["timestamp", "originalTimestamp", "sentAt"]) assert.match(view[k], ISO, k);
  const url = `${site}/?utm_source=newsletter&utm_campaign=spring`;
  assert.deepEqual(view.context.page, { path: "/", referrer: "", search: "?utm_source=newsletter&utm_campaign=spring", title: "Shop", url });
  assert.deepEqual(view.properties, view.context.page);
  assert.deepEqual(view.context.campaign, { source: "newsletter", name: "spring" });
  assert.deepEqual(view.context.library, { name: "crosscast.js", version: "1.0.0" });
  assert.equal(view.context.userAgent, ua);
  assert.ok(view.context.locale && view.context.timezone, "locale and timezone");
  const batch = w.sent.find((s) => s.body.batch.some((m) => m.messageId === view.messageId)).body;
  assert.equal(batch.writeKey, WRITE_KEY);

  // Calls made before t.js loaded were replayed in order.
  const early = await until("the replayed calls", () => {
    const f = w.find((m) => m.event === "Before Load");
    return f.length === 2 && f;
  });
  assert.deepEqual(early.map((m) => m.properties.step), [1, 2]);

  await p.evaluate(() => {
    crosscast.identify("user-42", { email: "ada@example.com", name: "Ada" });
    crosscast.track("Order Completed", { order_id: "o-1001", revenue: 42.5, currency: "EUR" });
  });
  const ident = await w.one("identify", (m) => m.type === "identify");
  assert.equal(ident.userId, "user-42");
  assert.equal(ident.anonymousId, anon);
  assert.deepEqual(ident.traits, { email: "ada@example.com", name: "Ada" });
  const order = await w.one("Order Completed", (m) => m.event === "Order Completed");
  assert.equal(order.userId, "user-42");
  assert.deepEqual(order.properties, { order_id: "o-1001", revenue: 42.5, currency: "EUR" });

  // After a reload: the same first-party cookie, the user remembered, a second page view from the known user.
  await p.reload();
  await loaded(p);
  const again = await cookies(ctx);
  assert.equal(again.cc_anon.value, anon, "same anonymous id after reload");
  assert.equal(again.cc_uid.value, "user-42");
  assert.equal(await p.evaluate(() => crosscast.user().anonymousId), anon);
  const view2 = await w.one("the page view after reload", (m) => m.type === "page" && m.userId === "user-42");
  assert.equal(view2.anonymousId, anon);

  // Crosscast resolved them all to one contact: the anonymous page view and the identified events.
  const list = await until("the contact of user-42", async () => {
    const l = await api("/api/v1/workspaces/shop/contacts?user_id=user-42");
    return l.items.length > 0 && l;
  });
  assert.equal(list.items.length, 1, "one contact for user-42");
  const contact = list.items[0];
  assert.equal(contact.email, "ada@example.com");
  assert.ok(contact.anonymous_ids.includes(anon), "the anonymous id belongs to the contact");
  const byEmail = await api("/api/v1/workspaces/shop/contacts?email=ada%40example.com");
  assert.deepEqual(byEmail.items.map((c) => c.id), [contact.id]);
  const want = [view, ...early, ident, order, view2].map((m) => m.messageId);
  const events = await until("the contact's events", async () => {
    const ev = await allPages(`/api/v1/workspaces/shop/contacts/${encodeURIComponent(contact.id)}/events`);
    const ids = new Set(ev.map((e) => e.message_id));
    return want.every((id) => ids.has(id)) && ev;
  });
  const byID = Object.fromEntries(events.map((e) => [e.message_id, e]));
  const first = byID[view.messageId];
  assert.equal(first.type, "page");
  assert.equal(first.anonymous_id, anon);
  assert.ok(!first.user_id, "the first page view was anonymous");
  assert.equal(first.context.page.url, url);
  assert.equal(first.context.userAgent, ua);
  assert.equal(byID[order.messageId].name, "Order Completed");
  assert.deepEqual(byID[order.messageId].properties, order.properties);
  assert.equal(byID[view2.messageId].user_id, "user-42");
  assert.ok(events.every((e) => e.contact_id === contact.id));

  assert.deepEqual(w.problems, [], "no console errors, failed requests or HTTP errors");
  assert.deepEqual(await p.evaluate(() => window.__violations), []);
  await ctx.close();
});

test("a track call right before leaving the page still arrives", async () => {
  const { ctx, w } = await newContext();
  const p = await ctx.newPage();
  await p.goto(site + "/next");
  await loaded(p);
  await p.evaluate(() => crosscast.identify("leaver-1"));
  await w.one("identify", (m) => m.type === "identify");
  // Hiding the page hands the queue to navigator.sendBeacon at once.
  await p.evaluate(() => {
    crosscast.track("Beaconed");
    window.dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false }));
  });
  const beaconed = await w.one("Beaconed", (m) => m.event === "Beaconed");
  const how = w.sent.filter((s) => s.body.batch.some((m) => m.messageId === beaconed.messageId)).map((s) => s.type);
  assert.deepEqual(how, ["ping"], "sent once, by sendBeacon");
  await Promise.all([
    p.waitForURL(site + "/shop"),
    p.evaluate(() => {
      crosscast.track("Clicked Out", { to: "/shop" });
      location.href = "/shop";
    }),
  ]);
  const contact = await until("the contact of leaver-1", async () =>
    (await api("/api/v1/workspaces/shop/contacts?user_id=leaver-1")).items[0]);
  await until("Clicked Out, stored", async () =>
    (await allPages(`/api/v1/workspaces/shop/contacts/${encodeURIComponent(contact.id)}/events`))
      .some((e) => e.name === "Clicked Out" && e.properties.to === "/shop"));
  const stored = await allPages(`/api/v1/workspaces/shop/contacts/${encodeURIComponent(contact.id)}/events`);
  assert.equal(stored.filter((e) => e.name === "Beaconed").length, 1);
  // A keepalive request still running when its page unloads is reported as cancelled to the page's tools, though
  // the browser completes it; the unload may also leave it in localStorage, so the next page sends it again and the
  // server stores it once (by messageId).
  assert.deepEqual(w.problems.filter((s) => !(s.includes("/v1/batch") && s.includes("net::ERR_ABORTED"))), []);
  await ctx.close();
});

test("retries with backoff when the server fails, and keeps unsent events for the next page", { timeout: 60000 }, async () => {
  const { ctx, w } = await newContext();
  const p = await ctx.newPage();
  await p.goto(site + "/next");
  await loaded(p);
  await w.one("the page view", (m) => m.type === "page");

  // 503: the tag retries, and the event arrives once the server is back.
  let refused = 0;
  await ctx.route(cc + "/v1/batch", (route) => {
    refused++;
    return route.fulfill({ status: 503, contentType: "application/json", body: '{"success":false}' });
  });
  await p.evaluate(() => crosscast.track("Retry Me"));
  await until("two refused attempts", () => refused >= 2);
  await ctx.unroute(cc + "/v1/batch");
  const retried = await w.one("Retry Me after the outage", (m) => m.event === "Retry Me");
  const sends = w.sent.filter((s) => s.body.batch.some((m) => m.messageId === retried.messageId));
  assert.ok(sends.length >= 3, `sent ${sends.length} times`);
  assert.equal(new Set(sends.map((s) => s.body.batch[0].sentAt)).size, sends.length, "sentAt is renewed per attempt");

  // Offline: the event waits in localStorage, and the next page (this one is closed meanwhile) sends it.
  let aborted = 0;
  await ctx.route(cc + "/v1/batch", (route) => {
    aborted++;
    return route.abort("internetdisconnected");
  });
  const id = await p.evaluate(() => {
    crosscast.track("Kept Offline");
    return Object.keys(localStorage).filter((k) => k.startsWith("cc_q_"))
      .flatMap((k) => JSON.parse(localStorage.getItem(k))).find((m) => m.event === "Kept Offline").messageId;
  });
  await until("a failed attempt", () => aborted >= 1);
  await p.close();
  await ctx.unroute(cc + "/v1/batch");
  const p2 = await ctx.newPage();
  await p2.goto(site + "/next");
  const kept = await w.one("Kept Offline, from the next page", (m) => m.event === "Kept Offline");
  assert.equal(kept.messageId, id);

  // What went wrong is only what the test did.
  const unexpected = w.problems.filter((s) => !s.includes("/v1/batch") && !/Failed to load resource/.test(s));
  assert.deepEqual(unexpected, []);
  assert.ok(w.statuses.includes(503));
  await ctx.close();
});

for (const [name, pathname] of [["a CSP that allows only itself and Crosscast (script tag, no inline code)", "/csp"],
  ["a CSP that allows the inline snippet by its hash", "/csp-hash"]]) {
  test(`works under ${name}`, async () => {
    const { ctx, w } = await newContext();
    const p = await ctx.newPage();
    await p.goto(site + pathname);
    await loaded(p);
    const view = await w.one("the page view", (m) => m.type === "page");
    assert.equal(view.context.page.url, site + pathname);
    if (pathname === "/csp") {
      const pushed = await w.one("the call queued by the page's own script", (m) => m.event === "CSP Loaded");
      assert.deepEqual(pushed.properties, { via: "push" });
    }
    assert.deepEqual(await p.evaluate(() => window.__violations), []);
    assert.deepEqual(w.problems, []);
    await ctx.close();
  });
}

test("consent: nothing is stored or sent before optIn, nothing after optOut", async () => {
  const { ctx, w } = await newContext();
  const p = await ctx.newPage();
  await p.goto(site + "/consent");
  await loaded(p);
  await p.evaluate(() => crosscast.track("Before Consent"));
  assert.equal((await cookies(ctx)).cc_anon, undefined, "no cookie before consent");
  assert.deepEqual(await p.evaluate(() => Object.keys(localStorage)), []);
  assert.equal(w.sent.length, 0);

  await p.evaluate(() => crosscast.optIn());
  const view = await w.one("the page view kept until consent", (m) => m.type === "page");
  await w.one("the call kept until consent", (m) => m.event === "Before Consent");
  assert.equal((await cookies(ctx)).cc_anon.value, view.anonymousId);
  assert.equal((await cookies(ctx)).cc_consent.value, "in");

  // Opting out deletes the ids and drops calls; opting in again starts a new anonymous id.
  await p.evaluate(() => { crosscast.optOut(); crosscast.track("While Out"); });
  const jar = await cookies(ctx);
  assert.equal(jar.cc_anon, undefined);
  assert.equal(jar.cc_consent.value, "out");
  await p.reload(); // the choice lasts: the page view of this load is dropped too
  await loaded(p);
  await p.evaluate(() => { crosscast.optIn(); crosscast.track("Back In"); });
  const back = await w.one("Back In", (m) => m.event === "Back In");
  assert.notEqual(back.anonymousId, view.anonymousId);
  assert.equal(w.find((m) => m.event === "While Out").length, 0);
  assert.equal(w.find((m) => m.type === "page").length, 1, "no page view while opted out");
  assert.deepEqual(w.problems, []);
  await ctx.close();
});
