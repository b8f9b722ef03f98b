// Journeys through the thub web UI as people take them, in a real headless Chromium (Debian's,
// driven by playwright-core), with axe-core on every page visited. Run by tests/tests/web_journeys.rs
// against a hub it starts: THUB_URL=http://127.0.0.1:PORT node tests/web/journeys.mjs
//
// Journey 1 (script on): register, publish, find it in explore and search, a second user stars
// it, an organization with a member publishes, an API token is created, used and revoked.
// Journey 2 (script off): the same forms as plain posts: register (after a wrong try), star,
// create and revoke a token.
// Screenshots of every page go to tests/web/screenshots/ (git-ignored).
import { chromium } from "playwright-core";
import axe from "axe-core";
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const BASE = process.env.THUB_URL;
if (!BASE) throw new Error("set THUB_URL to the hub's address");
const HERE = dirname(fileURLToPath(import.meta.url));
const SHOTS = process.env.THUB_SCREENSHOTS || join(HERE, "screenshots");
rmSync(SHOTS, { recursive: true, force: true });
mkdirSync(SHOTS, { recursive: true });
const PASSWORD = "correct-horse-battery-1";

let shotNumber = 0;
let checkedPages = 0;
const problems = [];

/** axe on the current page: zero serious or critical violations; then a screenshot. Pages of
 * the script-less journey are the same templates axe already checked with script on (axe itself
 * needs script), so there only the screenshot is taken. */
async function check(page, name, { runAxe = true } = {}) {
  await page.waitForLoadState("load");
  if (!runAxe) {
    shotNumber += 1;
    await page.screenshot({ path: join(SHOTS, `${String(shotNumber).padStart(2, "0")}-${name}.png`), fullPage: true });
    return;
  }
  await page.evaluate(axe.source);
  const result = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ["violations"] }),
  );
  const bad = result.violations.filter((violation) => ["serious", "critical"].includes(violation.impact));
  for (const violation of bad) {
    problems.push(`${name} (${page.url()}): ${violation.id} [${violation.impact}] ${violation.help}: ` +
      violation.nodes.map((node) => node.target.join(" ")).join(", "));
  }
  shotNumber += 1;
  const file = join(SHOTS, `${String(shotNumber).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  checkedPages += 1;
  console.error(`checked ${name}`);
}

/** A browser context that records Content-Security-Policy violations as problems. */
async function person(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error" && /Content.Security.Policy/i.test(message.text())) {
      problems.push(`CSP violation on ${page.url()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`script error on ${page.url()}: ${error.message}`));
  return { context, page };
}

async function register(page, username, fullName) {
  await page.goto(`${BASE}/register`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Email").fill(`${username}@example.com`);
  await page.getByLabel("Full name").fill(fullName);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${BASE}/`, { timeout: 10000 }).catch(async (error) => {
    throw new Error(`registering ${username} failed: ${await page.locator("main").innerText()}`, { cause: error });
  });
  assert.equal(await page.locator("summary").first().textContent(), username, "signed in after registering");
}

async function publish(page, { owner, name, description, type, tags, readme }) {
  await page.goto(owner ? `${BASE}/new?owner=${owner}` : `${BASE}/new`);
  await check(page, `new-endpoint${owner ? "-" + owner : ""}`);
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Description").fill(description);
  await page.getByLabel("Type").selectOption(type);
  await page.getByLabel("Tags").fill(tags);
  await page.getByLabel("README").fill(readme);
  await page.getByRole("button", { name: "Publish endpoint" }).click();
  await page.waitForLoadState("load");
  assert.equal(await page.getByRole("heading", { level: 1 }).first().textContent().then((text) => text.includes(name)), true,
    `lands on the endpoint page of ${name}`);
}

async function starCount(page) {
  return Number(await page.locator("[data-star-count]").first().textContent());
}

async function apiMe(token) {
  const response = await fetch(`${BASE}/api/v1/auth/me`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: response.status, body: response.ok ? await response.json() : null };
}

async function journeyWithScript(browser) {
  const { context: aliceContext, page: alice } = await person(browser);

  await alice.goto(`${BASE}/`);
  await check(alice, "home-empty");
  // A form sent empty: the error summary and every field's message, checked by axe.
  await alice.goto(`${BASE}/register`);
  await check(alice, "register");
  await alice.getByRole("button", { name: "Create account" }).click();
  await alice.getByRole("heading", { name: "There is a problem" }).waitFor();
  assert.equal(await alice.locator(".error-message").count(), 4, "a message next to every field");
  await check(alice, "register-errors");
  await register(alice, "alice", "Alice Liddell");
  await check(alice, "home-signed-in");

  await publish(alice, {
    name: "Vision Net",
    description: "Labels photos of cats and dogs",
    type: "model",
    tags: "vision, pets",
    readme: "# Vision Net\n\nA small image classifier.\n\n```python\nprint('hello')\n```\n",
  });
  assert.equal(alice.url(), `${BASE}/alice/vision-net`);
  await check(alice, "endpoint-page");

  // Find it in explore (with a filter kept in the URL) and in search from the header box.
  await alice.goto(`${BASE}/explore`);
  await alice.getByLabel("Type").selectOption("model");
  await alice.getByRole("button", { name: "Apply" }).click();
  await alice.waitForURL(/type=model/);
  await alice.getByRole("link", { name: "Vision Net" }).waitFor();
  await check(alice, "explore");
  // With script on, the header box suggests as you type.
  await alice.getByLabel("Search endpoints", { exact: true }).pressSequentially("visi");
  await alice.locator("#search-suggestions a", { hasText: "alice/vision-net" }).waitFor();
  await alice.getByLabel("Search endpoints", { exact: true }).fill("vision");
  await alice.getByLabel("Search endpoints", { exact: true }).press("Enter");
  await alice.waitForURL(/\/search\?q=vision/);
  assert.equal(await alice.locator("mark", { hasText: "Vision" }).count() > 0, true, "matched words highlighted");
  await check(alice, "search");
  await alice.goto(`${BASE}/search?q=zzznothing`);
  await alice.getByText("No endpoint matches").waitFor();
  await check(alice, "search-empty");

  // A second user stars it: the count changes in place, and stays after a reload.
  const { context: bobContext, page: bob } = await person(browser);
  await register(bob, "bob", "Bob Builder");
  await bob.goto(`${BASE}/alice/vision-net`);
  assert.equal(await starCount(bob), 0);
  await bob.getByRole("button", { name: /Star/ }).click();
  await bob.locator("button[aria-pressed=true]").waitFor();
  assert.equal(await starCount(bob), 1, "the count changed in place");
  assert.equal(bob.url(), `${BASE}/alice/vision-net`, "no page load");
  await bob.reload();
  assert.equal(await starCount(bob), 1, "the star is stored");
  await check(bob, "endpoint-starred");

  // An organization: create it, add bob, meet the last-owner rule, publish under it.
  await alice.goto(`${BASE}/orgs/new`);
  await check(alice, "org-new");
  await alice.getByLabel("Name").fill("Acme Labs");
  await alice.getByLabel("Address").fill("acme-labs");
  await alice.getByLabel("Description").fill("Robots and rockets");
  await alice.getByRole("button", { name: "Create organization" }).click();
  await alice.waitForURL(/\/orgs\/acme-labs\/settings/);
  await alice.getByLabel("Username").fill("bob");
  await alice.getByRole("button", { name: "Add member" }).click();
  await alice.getByText("The member is added.").waitFor();
  await alice.getByLabel("Role of alice").selectOption("member");
  await alice.getByRole("button", { name: "Change role of alice" }).click();
  await alice.getByText("An organization needs at least one owner").waitFor();
  await check(alice, "org-settings");
  await publish(alice, {
    owner: "acme-labs",
    name: "Acme Agent",
    description: "Plans rocket launches",
    type: "agent",
    tags: "agents",
    readme: "Launch checklist agent.",
  });
  assert.equal(alice.url(), `${BASE}/acme-labs/acme-agent`);
  await alice.goto(`${BASE}/acme-labs`);
  await alice.getByRole("link", { name: "bob" }).waitFor();
  await check(alice, "organization-page");
  await alice.goto(`${BASE}/alice`);
  await check(alice, "user-page");

  // An API token: created (shown once), used against the API, revoked in place.
  await alice.goto(`${BASE}/settings/tokens`);
  await alice.getByLabel("Token name").fill("journey");
  await alice.getByRole("button", { name: "Create token" }).click();
  const token = (await alice.locator("#new-token").textContent()).trim();
  assert.match(token, /^syft_pat_/);
  await check(alice, "token-created");
  const me = await apiMe(token);
  assert.equal(me.status, 200);
  assert.equal(me.body.username, "alice");
  await alice.goto(`${BASE}/settings/tokens`);
  assert.equal(await alice.getByText(token).count(), 0, "the secret is shown once");
  await alice.getByRole("button", { name: "Revoke journey" }).click();
  await alice.locator("#revoke-status", { hasText: "Revoked." }).waitFor();
  assert.equal((await apiMe(token)).status, 401, "a revoked token no longer works");
  await check(alice, "tokens");

  for (const [path, name] of [["/settings/profile", "settings-profile"], ["/settings/password", "settings-password"],
    ["/settings/sessions", "settings-sessions"], ["/alice/vision-net/edit", "endpoint-edit"], ["/no-such-owner", "not-found"]]) {
    await alice.goto(`${BASE}${path}`);
    await check(alice, name);
  }
  assert.equal(await alice.getByRole("heading", { name: "Page not found" }).count(), 1);

  // Narrow screens: nothing scrolls sideways at 360 px.
  await alice.setViewportSize({ width: 360, height: 800 });
  for (const path of ["/", "/alice/vision-net", "/explore", "/settings/tokens"]) {
    await alice.goto(`${BASE}${path}`);
    const overflow = await alice.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${path} scrolls sideways at 360 px by ${overflow}px`);
  }
  await check(alice, "narrow-tokens");
  await aliceContext.close();

  // Dark mode (the system's preference): contrast holds there too.
  const { context: darkContext, page: dark } = await person(browser, { colorScheme: "dark" });
  for (const [path, name] of [["/", "home-dark"], ["/alice/vision-net", "endpoint-dark"], ["/register", "register-dark"]]) {
    await dark.goto(`${BASE}${path}`);
    await check(dark, name);
  }
  await darkContext.close();
  await bobContext.close();
}

async function journeyWithoutScript(browser) {
  const { context, page } = await person(browser, { javaScriptEnabled: false });
  // A wrong try first: every message shown, values kept.
  await page.goto(`${BASE}/register`);
  await page.getByLabel("Username").fill("x");
  await page.getByLabel("Email").fill("carol-at-example");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "There is a problem" }).waitFor();
  assert.equal(await page.locator(".error-message").count(), 4, "a message next to every field");
  assert.equal(await page.getByLabel("Email").inputValue(), "carol-at-example", "values kept");
  await check(page, "register-errors-no-script", { runAxe: false });
  await page.getByLabel("Username").fill("carol");
  await page.getByLabel("Email").fill("carol@example.com");
  await page.getByLabel("Full name").fill("Carol Danvers");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${BASE}/`);

  await page.goto(`${BASE}/alice/vision-net`);
  assert.equal(await starCount(page), 1);
  await page.getByRole("button", { name: /Star/ }).click();
  await page.waitForURL(`${BASE}/alice/vision-net`);
  assert.equal(await starCount(page), 2, "the form post starred it");
  await check(page, "endpoint-no-script", { runAxe: false });

  await page.goto(`${BASE}/settings/tokens`);
  await page.getByLabel("Token name").fill("no-script");
  await page.getByRole("button", { name: "Create token" }).click();
  const token = (await page.locator("#new-token").textContent()).trim();
  assert.equal((await apiMe(token)).status, 200);
  await page.getByRole("button", { name: "Revoke no-script" }).click();
  await page.getByText("The token is revoked.").waitFor();
  assert.equal((await apiMe(token)).status, 401);
  await check(page, "tokens-no-script", { runAxe: false });
  await context.close();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  await journeyWithScript(browser);
  await journeyWithoutScript(browser);
} finally {
  await browser.close();
}
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`journeys done: ${checkedPages} pages checked with axe, screenshots in ${SHOTS}`);
