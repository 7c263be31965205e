// The web demo (`xdm-connect demo --web`) driven in a real browser: Debian's Chromium through
// playwright-core. A scripted conversation asserted on both panes, then screenshots.
// Usage: XDM_OPERATOR_URL=… XDM_ADMIN_TOKEN=… XDM_SANDBOX_URL=… node demo.mjs <page URL> <screenshot dir>
// (scripts/e2e-browser.sh runs it with what `demo --web` printed)
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
await agentPane.getByText("✓✓ read by the customer").last().waitFor(WAIT);
step("the customer read it on X: the agent sees the read mark");
// Typing reaches the chat at most every few seconds (the page sends it every 3 s, the bridge
// relays one per 5 s per customer): keep typing until it shows.
const typing = agentPane.getByText("is typing…");
for (let i = 0; i < 15 && !(await typing.isVisible()); i++) {
  await page.locator("#customer-text").pressSequentially("Thanks ");
  await page.waitForTimeout(1000);
}
await typing.waitFor(WAIT);
step("the customer typing on X shows in the agent pane");
await page.fill("#customer-text", "");
await page.click("#agent-photo");
await agentPane.getByText("📎 parcel.png").last().waitFor(WAIT);
// A file of the agent's own, picked from disk: it reaches X as media.
await page.setInputFiles("#agent-file", { name: "label.gif", mimeType: "image/gif", buffer: Buffer.from("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;", "latin1") });
await agentPane.getByText("📎 label.gif").waitFor(WAIT);
await page.locator("#wire-log summary", { hasText: "media uploaded: image/gif" }).first().waitFor(WAIT);
step("the agent's own file went to X's media upload");

// The wire: X's webhook deliveries and the DMs sent to X are listed, each expandable.
await page.locator("#wire-log summary", { hasText: /webhook dm → 200 · [0-9.]+ ms/ }).first().waitFor(WAIT);
await page.locator("#wire-log summary", { hasText: /SNS → bridge\s+notification .* → 200 · [0-9.]+ ms/ }).first().waitFor(WAIT);
await page.locator("#wire-log summary", { hasText: "DM to @furiouscamper" }).first().waitFor(WAIT);
await page.locator("#wire-log summary", { hasText: /Connect\s+StartChatContact\s+PUT .* → 200 · [0-9.]+ ms/ }).first().waitFor(WAIT);
await page.locator("#wire-log summary", { hasText: /X\s+CreateDm\s+POST .* → 20[01] · [0-9.]+ ms/ }).first().waitFor(WAIT);
step("the wire pane lists Connect's and X's calls with status and timing");
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

// The operator page: a failed event, shown and re-driven. X refuses the next DM (the sandbox's
// fault control, the test's hand, not the page's): the agent's reply is parked as failed.
const operatorUrl = process.env.XDM_OPERATOR_URL, token = process.env.XDM_ADMIN_TOKEN;
const fault = await fetch(process.env.XDM_SANDBOX_URL + "/_sandbox/faults", {
  method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ op: "CreateDm", count: 1, fault: { status: 403 } }),
});
if (!fault.ok) throw new Error("the sandbox took no fault: " + fault.status);
await page.selectOption("#as", "support");
await page.fill("#customer-text", "One more thing: can I change the address?");
await page.click("#customer-form button[type=submit]");
await agentPane.getByText("One more thing: can I change the address?").waitFor(WAIT);
await page.fill("#agent-text", "Yes, the new address is saved.");
await page.click("#agent-form button[type=submit]");
await agentPane.getByText("Yes, the new address is saved.").waitFor(WAIT);

const operator = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const first = await operator.goto(operatorUrl);
if (first.status() !== 401) throw new Error("the operator page without a session answered " + first.status());
await operator.fill("#token", "not-the-token-0000");
await operator.click("#login button[type=submit]");
await operator.getByText("That is not the token.").waitFor(WAIT);
await operator.fill("#token", token);
await operator.click("#login button[type=submit]");
await operator.getByText("Failed events").waitFor(WAIT);
step("operator page: the login form refused a wrong token and took the right one");
const retryButton = operator.locator("#failed button", { hasText: "Retry" });
await retryButton.first().waitFor(WAIT);
await operator.locator("#failed").getByText("outbound").first().waitFor(WAIT);
await operator.screenshot({ path: join(shots, "operator.png") });
step("operator page: the failed reply is listed; screenshot " + join(shots, "operator.png"));
await retryButton.first().click();
await operator.getByText("1 event(s) put back in line").waitFor(WAIT);
await customerPane.getByText("Yes, the new address is saved.").waitFor(WAIT);
step("operator page: re-driven, the reply reached the customer on X");
await operator.click("#logout");
await operator.locator("#token").waitFor(WAIT);
step("operator page: logged out");

if (offPage.length) throw new Error("requests left the page's origin: " + offPage.join(", "));
if (errors.length) throw new Error("errors on the page: " + errors.join("; "));
await browser.close();
console.log("  browser: all checks passed");
