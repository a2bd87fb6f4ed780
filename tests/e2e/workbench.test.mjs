// The analysts' workbench end to end, in headless Chromium (Debian's package) driven by
// playwright-core: `cashmatch serve --demo` with a token config and TLS (the test certificate of
// fixtures/tls/: the workbench over HTTPS, gRPC over TLS), the demo remittances sent over
// gRPC, then items resolved through the pages (accept, correct, leave unapplied), bad input
// refused, and every change checked through the gRPC API (tests/e2e/grpc_api.py). Screenshots of
// the queue, an item and the dashboard go to docs/ui/.
//
// Run from the repository root after `cargo build`:  (cd tests/e2e && npm ci && npm test)
// CASHMATCH_BIN names the binary (default target/debug/cashmatch); CHROMIUM the browser
// (default /usr/bin/chromium).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const BIN = process.env.CASHMATCH_BIN || path.join(ROOT, "target", "debug", "cashmatch");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = path.join(ROOT, "docs", "ui");
const TLS = path.join(ROOT, "fixtures", "tls");
const CA = fs.readFileSync(path.join(TLS, "ca.crt"));
const TOKENS = { erp: "e2e-erp-token-7f3a9c", alice: "e2e-alice-token-41d2e8", ops: "e2e-ops-token-9b0c55" };

// ---- exact decimals for the checks: BigInt hundred-millionths, never floating point ----
const SCALE = 8n;
function dec(s) {
  const t = String(s).trim().replace(/,/g, "");
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(t);
  assert.ok(m, `not a decimal: ${s}`);
  const frac = (m[3] || "").padEnd(Number(SCALE), "0");
  assert.ok(frac.length === Number(SCALE), `too many decimals: ${s}`);
  const v = BigInt(m[2] + frac);
  return m[1] ? -v : v;
}
function str(v, places = 2) {
  const neg = v < 0n;
  const s = (neg ? -v : v).toString().padStart(Number(SCALE) + 1, "0");
  const int = s.slice(0, s.length - Number(SCALE));
  const frac = s.slice(s.length - Number(SCALE)).slice(0, places);
  return (neg ? "-" : "") + int + (places ? "." + frac : "");
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The status of a GET over HTTPS, trusting only the test CA. */
function httpsStatus(url) {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca: CA }, (r) => {
        r.resume();
        resolve(r.statusCode);
      })
      .on("error", reject);
  });
}

let tmp, server, serverExit, grpcAddr, base, browser, env;

function api(...args) {
  const out = execFileSync("python3", [path.join(HERE, "grpc_api.py"), ...args], {
    env,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  return JSON.parse(out);
}

/** What the service holds about a payment and some invoices, through gRPC. */
function state(paymentId, ...invoices) {
  return api("state", grpcAddr, paymentId, ...invoices);
}

async function newPage(options = {}) {
  // The test CA is not in Chromium's store; the server is checked against it by httpsStatus above.
  const context = await browser.newContext({
    viewport: { width: 1400, height: 900 },
    ignoreHTTPSErrors: true,
    ...options,
  });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.jsErrors = errors;
  return page;
}

async function signIn(page, token) {
  await page.goto(base + "/queue");
  assert.match(page.url(), /\/login\?next=/);
  await page.fill("#token", token);
  await page.click("form[action='/login'] button[type=submit]");
}

/** The rows of an item's allocation table: invoice id, open amount, typed cash. */
async function allocationRows(page) {
  return page.$$eval("table[data-alloc] tr[data-row]", (rows) =>
    rows.map((r) => ({
      key: r.querySelector("input[name^='amt.']").name.slice(4),
      invoice: (r.querySelector("input[name^='inv.']") || {}).value || "",
      open: r.getAttribute("data-open"),
      amount: r.querySelector("input[name^='amt.']").value,
      suggested: r.classList.contains("suggested"),
    })),
  );
}

function itemId(url) {
  return decodeURIComponent(new URL(url).pathname.split("/").pop());
}

describe("the analysts' workbench in Chromium", () => {
  const started = Date.now();
  let reviewIds = [];
  let resolved = [];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cashmatch-e2e-"));
    const config = path.join(tmp, "cashmatch.toml");
    // The config holds only each token's SHA-256, as `cashmatch token new` prints it.
    const entry = (name, role) =>
      `[[tokens]]\nname = "${name}"\n` +
      `token_sha256 = "${createHash("sha256").update(TOKENS[name]).digest("hex")}"\n` +
      `roles = ["${role}"]\n\n`;
    const tls = `[tls]\ncert = "${path.join(TLS, "server.crt")}"\nkey = "${path.join(TLS, "server.key")}"\n\n`;
    // One analyst works the queue here, so no resolution may wait for a second one (four eyes
    // have their own tests: src/web/tests.rs, tests/service/four_eyes.rs).
    const fourEyes = `[four_eyes]\nabove = "1000000000.00"\n\n`;
    fs.writeFileSync(config, tls + fourEyes + entry("erp", "ar_system") + entry("alice", "analyst") + entry("ops", "admin"));
    const [gp, up] = [await freePort(), await freePort()];
    grpcAddr = `127.0.0.1:${gp}`;
    base = `https://127.0.0.1:${up}`;
    const log = fs.openSync(path.join(tmp, "server.log"), "w");
    server = spawn(
      BIN,
      // --demo-feed 0: the test sends the demo remittances itself, and counts what they decide.
      ["serve", "--demo", "--demo-feed", "0", "--data-dir", path.join(tmp, "data"), "--config", config, "--addr", grpcAddr, "--ui-addr", `127.0.0.1:${up}`],
      { stdio: ["ignore", log, log] },
    );
    serverExit = new Promise((resolve) => server.on("exit", (code, signal) => resolve({ code, signal })));
    env = {
      ...process.env,
      STUBS_DIR: path.join(tmp, "stubs"),
      ERP_TOKEN: TOKENS.erp,
      ANALYST_TOKEN: TOKENS.alice,
    };
    const deadline = Date.now() + 180_000;
    for (;;) {
      try {
        if ((await httpsStatus(base + "/login")) === 200) break;
      } catch {}
      if (server.exitCode !== null || Date.now() > deadline) {
        throw new Error("cashmatch serve did not come up; see " + path.join(tmp, "server.log"));
      }
      await sleep(200);
    }
    const sent = api("send", grpcAddr, path.join(tmp, "data", "demo", "remittances.csv"));
    assert.deepEqual(sent.errors, []);
    reviewIds = sent.results.filter((r) => r.status === "DECISION_STATUS_REVIEW").map((r) => r.payment_id);
    assert.ok(reviewIds.length >= 5, `the demo sends ${reviewIds.length} payments to review`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      // Playwright gives every launch a fresh temporary profile (--user-data-dir) of its own.
    });
    fs.mkdirSync(SHOTS, { recursive: true });
  });

  after(async () => {
    if (browser) await browser.close();
    if (server && server.exitCode === null) {
      server.kill("SIGKILL");
      await serverExit;
    }
    console.log(`# e2e took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (tmp && !process.env.KEEP_E2E) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("refuses a token without the analyst role", async () => {
    const page = await newPage();
    for (const token of [TOKENS.erp, TOKENS.ops]) {
      await signIn(page, token);
      await page.waitForSelector("p.error");
      assert.match(await page.textContent("p.error"), /does not have the analyst role/);
      assert.match(page.url(), /\/login$/);
    }
    const cookies = await page.context().cookies();
    assert.equal(cookies.filter((c) => c.name === "cashmatch_session").length, 0);
    await page.context().close();
  });

  it("shows the queue, highest priority first, with counts and cash", async () => {
    const page = await newPage();
    await signIn(page, TOKENS.alice);
    await page.waitForURL(/\/queue$/);
    // Over HTTPS the session cookie is sent back over TLS only.
    const session = (await page.context().cookies()).filter((c) => c.name === "cashmatch_session");
    assert.equal(session.length, 1);
    assert.equal(session[0].secure, true);
    const ids = await page.$$eval("table[data-queue] tbody tr td:nth-child(2) a", (as) => as.map((a) => a.textContent));
    assert.deepEqual([...ids].sort(), [...reviewIds].sort());
    const open = await page.textContent(".stat .value");
    assert.equal(Number(open), reviewIds.length);
    // Filtered by reason: the tab's count is what the table then lists.
    const tab = page.locator("nav.tabs a", { hasText: "ambiguous" });
    const count = Number(await tab.locator(".count").textContent());
    await tab.click();
    assert.equal(await page.locator("table[data-queue] tbody tr").count(), count);
    await page.goto(base + "/queue");
    await page.screenshot({ path: path.join(SHOTS, "queue.png"), fullPage: true });
    assert.deepEqual(page.jsErrors, []);
    await page.context().close();
  });

  it("accepts the top suggestion with the keyboard, and the API shows the ledger, decision and audit trail changed", async () => {
    const page = await newPage();
    await signIn(page, TOKENS.alice);
    await page.waitForURL(/\/queue$/);
    await page.keyboard.press("o"); // opens the selected (first) row
    await page.waitForURL(/\/items\//);
    const pid = itemId(page.url());
    await page.screenshot({ path: path.join(SHOTS, "item.png"), fullPage: true });
    const rows = (await allocationRows(page)).filter((r) => r.amount !== "");
    assert.ok(rows.length > 0, "the top suggestion fills the allocation table");
    const invoices = rows.map((r) => r.invoice);
    const before_ = state(pid, ...invoices);
    assert.equal(before_.state, "REVIEW_STATE_OPEN");
    assert.equal(before_.decision_status, "DECISION_STATUS_REVIEW");
    assert.match(await page.textContent("[data-balance]"), /✓/);

    await page.keyboard.press("a");
    await page.waitForURL((u) => !u.pathname.endsWith("/" + encodeURIComponent(pid)));
    assert.match(await page.textContent(".banner.ok"), new RegExp(`Resolved ${pid}: accepted suggestion #1`));

    const after_ = state(pid, ...invoices);
    assert.equal(after_.state, "REVIEW_STATE_RESOLVED");
    assert.equal(after_.resolution.analyst, "alice");
    assert.equal(after_.resolution.action, "RESOLUTION_ACTION_ACCEPT_SUGGESTION");
    for (const r of rows) {
      const a = after_.resolution.allocations.find((x) => x.invoice_id === r.invoice);
      assert.ok(a, `allocation to ${r.invoice}`);
      assert.equal(dec(a.amount), dec(r.amount));
      const relieved = dec(a.amount) + dec(a.discount || "0") + dec(a.deduction || "0");
      assert.equal(dec(after_.invoices[r.invoice]), dec(before_.invoices[r.invoice]) - relieved, r.invoice);
    }
    assert.equal(after_.audit.length, 1);
    const ev = after_.audit[0];
    assert.deepEqual([ev.actor, ev.action, ev.before.state, ev.after.state], ["alice", "resolve", "open", "resolved"]);
    for (const r of rows) {
      assert.equal(dec(ev.before.open_amounts[r.invoice]), dec(before_.invoices[r.invoice]));
      assert.equal(dec(ev.after.open_amounts[r.invoice]), dec(after_.invoices[r.invoice]));
    }
    // The item shows its history: who, and the open amounts before and after.
    await page.goto(base + "/items/" + encodeURIComponent(pid));
    const history = await page.textContent("#history");
    assert.match(history, /alice/);
    assert.match(history, /accepted suggestion #1/);
    resolved.push(pid);
    assert.deepEqual(page.jsErrors, []);
    await page.context().close();
  });

  it("corrects an allocation: the live check refuses over-application, then a partial application balances", async () => {
    const page = await newPage();
    await signIn(page, TOKENS.alice);
    await page.waitForURL(/\/queue$/);
    await page.goto(base + "/next");
    const pid = itemId(page.url());
    assert.ok(!resolved.includes(pid));
    const payment = dec(await page.getAttribute("table[data-alloc]", "data-payment"));
    const rows = await allocationRows(page);
    // Clear what the engine filled in; pick the invoice with the most open.
    for (const r of rows) await page.fill(`input[name='amt.${r.key}']`, "");
    const candidates = rows.filter((r) => r.open && dec(r.open) > 0n);
    assert.ok(candidates.length > 0, "the customer has open invoices");
    const target = candidates.reduce((a, b) => (dec(b.open) > dec(a.open) ? b : a));
    const open = dec(target.open);

    // More than the invoice has open: the row says so and the form is not sent.
    await page.fill(`input[name='amt.${target.key}']`, str(open + dec("1.00")));
    const check = await page.textContent(`input[name='amt.${target.key}'] >> xpath=ancestor::tr >> [data-check]`);
    assert.match(check, /over the open/);
    await page.click("[data-allocate]");
    await sleep(300);
    assert.equal(itemId(page.url()), pid, "the page stayed");
    assert.equal(state(pid).state, "REVIEW_STATE_OPEN");

    // Half of what fits, to the cent; the rest stays unapplied, and the page says it balances.
    const fits = open < payment ? open : payment;
    const part = (fits / 2n / 1000000n) * 1000000n;
    await page.fill(`input[name='amt.${target.key}']`, str(part));
    assert.equal(dec(await page.inputValue("#unapplied")), payment - part);
    assert.match(await page.textContent("[data-balance]"), /✓/);
    await page.fill("#note", "customer confirmed a part payment of this invoice");
    const before_ = state(pid, target.invoice);
    await page.click("[data-allocate]");
    await page.waitForURL((u) => !u.pathname.endsWith("/" + encodeURIComponent(pid)));

    const after_ = state(pid, target.invoice);
    assert.equal(after_.state, "REVIEW_STATE_RESOLVED");
    assert.equal(after_.resolution.action, "RESOLUTION_ACTION_APPLY_ALLOCATION");
    assert.equal(after_.resolution.analyst, "alice");
    assert.equal(after_.resolution.note, "customer confirmed a part payment of this invoice");
    assert.deepEqual(after_.resolution.allocations.map((a) => [a.invoice_id, dec(a.amount)]), [[target.invoice, part]]);
    assert.equal(dec(after_.resolution.unapplied), payment - part);
    assert.equal(dec(after_.invoices[target.invoice]), dec(before_.invoices[target.invoice]) - part);
    assert.equal(after_.audit.length, 1);
    assert.equal(dec(after_.audit[0].after.open_amounts[target.invoice]), dec(after_.invoices[target.invoice]));
    resolved.push(pid);
    assert.deepEqual(page.jsErrors, []);
    await page.context().close();
  });

  it("leaves a payment unapplied, asking for a note first", async () => {
    const page = await newPage();
    await signIn(page, TOKENS.alice);
    await page.waitForURL(/\/queue$/);
    await page.goto(base + "/next");
    const pid = itemId(page.url());
    const hasSuggestion = (await page.locator("[data-accept-top]").count()) > 0;
    if (hasSuggestion) {
      await page.click("[data-leave]");
      await page.waitForSelector("#resolve-error");
      assert.match(await page.textContent("#resolve-error"), /Note: is required/);
      assert.equal(state(pid).state, "REVIEW_STATE_OPEN");
    }
    await page.fill("#note", "no invoice matches; asked the customer for remittance");
    await page.click("[data-leave]");
    await page.waitForURL((u) => !u.pathname.endsWith("/" + encodeURIComponent(pid)));
    const after_ = state(pid);
    assert.equal(after_.resolution.action, "RESOLUTION_ACTION_LEAVE_UNAPPLIED");
    assert.deepEqual(after_.resolution.allocations, []);
    assert.equal(after_.audit.length, 1);
    assert.equal(after_.audit[0].actor, "alice");
    resolved.push(pid);
    await page.context().close();
  });

  it("without JavaScript: unbalanced amounts, over-application, a forged post and a missing token are refused and change nothing", async () => {
    const page = await newPage({ javaScriptEnabled: false });
    await signIn(page, TOKENS.alice);
    await page.waitForURL(/\/queue$/);
    await page.goto(base + "/next");
    const pid = itemId(page.url());
    const rows = await allocationRows(page);
    const target = rows.find((r) => r.open && dec(r.open) > dec("2.00"));
    assert.ok(target, "an open invoice to allocate to");
    for (const r of rows) await page.fill(`input[name='amt.${r.key}']`, "");
    const ids = rows.filter((r) => r.invoice && r.open).map((r) => r.invoice);
    const before_ = state(pid, ...ids);
    const unchanged = () => {
      const now = state(pid, ...ids);
      assert.equal(now.state, "REVIEW_STATE_OPEN");
      assert.deepEqual(now.invoices, before_.invoices);
      assert.equal(now.audit.length, 0);
    };

    // Cash of 1.00 with 0.50 said to stay unapplied does not add up to the payment.
    await page.fill(`input[name='amt.${target.key}']`, "1.00");
    await page.fill("#unapplied", "0.50");
    await page.fill("#note", "testing");
    await Promise.all([page.waitForNavigation(), page.click("[data-allocate]")]);
    assert.match(await page.textContent("#resolve-error"), /do not balance.*Nothing was changed/s);
    unchanged();
    // The form came back as typed.
    assert.equal(await page.inputValue(`input[name='amt.${target.key}']`), "1.00");

    // More than the invoice has open (as a discount, so the cash itself fits the payment).
    await page.fill(`input[name='amt.${target.key}']`, "1.00");
    await page.fill(`input[name='disc.${target.key}']`, str(dec(target.open)));
    await page.fill("#unapplied", "");
    await Promise.all([page.waitForNavigation(), page.click("[data-allocate]")]);
    assert.match(await page.textContent("#resolve-error"), new RegExp(`has ${target.open.replace(".", "\\.")} open.*Nothing was changed`, "s"));
    unchanged();

    // A post that acts as another analyst, and one without this session's token.
    const csrf = await page.getAttribute("input[name=csrf]", "value");
    const url = base + "/items/" + encodeURIComponent(pid) + "/resolve";
    const forged = await page.request.post(url, {
      form: { csrf, analyst: "bob", action: "unapplied", note: "as bob" },
      headers: { origin: base },
      maxRedirects: 0,
    });
    assert.equal(forged.status(), 403);
    assert.match(await forged.text(), /acts as bob/);
    const tokenless = await page.request.post(url, {
      form: { action: "unapplied", note: "no token" },
      headers: { origin: base },
      maxRedirects: 0,
    });
    assert.equal(tokenless.status(), 403);
    assert.match(await tokenless.text(), /security token/);
    unchanged();
    await page.context().close();
  });

  it("shows the day's figures on the dashboard", async () => {
    const page = await newPage();
    await signIn(page, TOKENS.alice);
    await page.waitForURL(/\/queue$/);
    await page.keyboard.press("d");
    await page.waitForURL(/\/dashboard/);
    const kpis = await page.$$eval(".kpi", (ks) => ks.map((k) => k.textContent.replace(/\s+/g, " ")));
    assert.ok(kpis.some((k) => /Queue depth\s*\d+/.test(k) && k.includes(String(reviewIds.length - resolved.length))), kpis.join(" | "));
    assert.ok(kpis.some((k) => /Top suggestion accepted/.test(k) && /\b1 of [23]\b/.test(k)), kpis.join(" | "));
    assert.equal(await page.locator("svg.chart").count(), 5);
    await page.screenshot({ path: path.join(SHOTS, "dashboard.png"), fullPage: true });
    await page.context().close();
  });

  it("stops cleanly on SIGTERM", async () => {
    server.kill("SIGTERM");
    const { code } = await serverExit;
    assert.equal(code, 0);
  });
});
