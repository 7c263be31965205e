// The web demo (`xdm-connect demo --web`) driven in a real browser: Debian's Chromium through
// playwright-core. A scripted conversation asserted on both panes, then screenshots.
// Usage: node demo.mjs <page URL> <screenshot dir>   (scripts/e2e-browser.sh runs it)
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [url, shots] = process.argv.slice(2);
if (!url || !shots) {
  console.error("usage: node demo.mjs <page URL> <screenshot dir>");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Chromium's own background traffic would be refused on a closed network: none of it.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1440, height: 860 } });
const offPage = [];
page.on("request", (r) => { if (!r.url().startsWith(url)) offPage.push(r.url()); });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));

const WAIT = { timeout: 15000 };
const step = (what) => console.log("  browser: " + what);
const timed = async (what, fn) => {
  const t0 = performance.now();
  await fn();
  step(`${what} (${Math.round(performance.now() - t0)} ms)`);
};
const agentPane = page.locator("#transcript");
const customerPane = page.locator("#thread");

await page.goto(url);
await page.locator("#as option").first().waitFor({ state: "attached", ...WAIT });
step("the page shows its three panes");

// The customer writes a DM: it appears in the agent's chat, with the X profile card.
await page.selectOption("#as", "support");
await page.fill("#customer-text", "Hi! My order #1234 has not arrived.");
await timed("the customer's DM appears in the agent pane", async () => {
  await page.click("#customer-form button[type=submit]");
  await agentPane.getByText("Hi! My order #1234 has not arrived.").waitFor(WAIT);
});
await page.locator("#card").getByText("@furiouscamper").waitFor(WAIT);
await page.locator("#card").getByText("followers").first().waitFor(WAIT);

// A photo: the built-in sample reaches the chat as an attachment.
await page.click("#customer-photo");
await agentPane.getByText("parcel.png").waitFor(WAIT);
step("the customer's photo reached the chat as an attachment");

// The agent accepts and answers in markdown: bold in Connect, plain text on X.
await page.click("#agent-tools button[data-action=accept]");
await page.locator("#card").getByText("agent Enrique").waitFor(WAIT);
await page.fill("#agent-text", "Sorry, **Jordan**. Tracking: [here](https://example.com/t/1234)");
await timed("the agent's markdown reply reaches the customer on X", async () => {
  await page.click("#agent-form button[type=submit]");
  await customerPane.getByText("Sorry, Jordan. Tracking: here (https://example.com/t/1234)").waitFor(WAIT);
});
await agentPane.locator("strong", { hasText: "Jordan" }).waitFor(WAIT);
step("the agent pane shows the markdown rendered");
await page.click("#agent-photo");
await agentPane.getByText("📎 parcel.png").last().waitFor(WAIT);

// The wire: X's webhook deliveries and the DMs sent to X are listed, each expandable.
await page.locator("#wire-log summary", { hasText: "webhook" }).first().waitFor(WAIT);
await page.locator("#wire-log summary", { hasText: "DM to @furiouscamper" }).first().waitFor(WAIT);
await page.screenshot({ path: join(shots, "demo-web.png") });
step("screenshot " + join(shots, "demo-web.png"));

// Transfer, then end the chat.
await page.click("#agent-tools button[data-action=transfer]");
await page.locator("#card").getByText("transferred: contact").waitFor(WAIT);
step("transferred");
await page.click("#agent-tools button[data-action=end]");
await page.locator("#contacts button", { hasText: "ended" }).waitFor(WAIT);
step("the chat ended");

// The customer on encrypted X Chat, answered through the bridge.
await page.selectOption("#as", "chat");
await page.fill("#customer-text", "Is this conversation private?");
await page.click("#customer-form button[type=submit]");
await agentPane.getByText("Is this conversation private?").waitFor(WAIT);
await page.locator("#card").getByText("X Chat (encrypted)").waitFor(WAIT);
await page.fill("#agent-text", "Yes, **end to end**.");
await page.click("#agent-form button[type=submit]");
await customerPane.getByText("Yes, end to end.").waitFor(WAIT);
await customerPane.getByText("decrypted on her device").first().waitFor(WAIT);
step("X Chat: the customer's device decrypted the agent's answer");

if (offPage.length) throw new Error("requests left the page's origin: " + offPage.join(", "));
if (errors.length) throw new Error("errors on the page: " + errors.join("; "));
await browser.close();
console.log("  browser: all checks passed");
