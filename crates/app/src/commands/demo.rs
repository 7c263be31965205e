//! `xdm-connect demo`: the bridge and both sandboxes wired together in one process, with a
//! terminal in which a person plays the X customer and the Connect agent.
//!
//! The bridge here is the same `Application` as `serve`, configured through the public settings
//! only (see `sandbox_link`); the sandbox speaks the platforms' wire protocols.
// A terminal command: printing to stdout is its job.
#![allow(clippy::print_stdout)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use xdm_core::jobs::{JobQueue, JobState};
use xdm_core::ports::Store;
use xdm_sandbox::{
    ContactStatus, ContactView, DmSpec, ItemType, ParticipantRole, SandboxEvent, SandboxHandle,
};

use crate::commands::demo_chat_customer::ChatCustomer;
use crate::commands::demo_world::{
    BILLING_FLOW, BILLING_HANDLE, BILLING_ID, CHAT_CUSTOMER_HANDLE, CHAT_CUSTOMER_ID,
    CHAT_CUSTOMER_NAME, CUSTOMER_ID, World, world_accounts,
};
use crate::wiring::AppBridge;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The customer's X display name.
    #[arg(long, default_value = "Jordan Brinks")]
    pub customer_name: String,
    /// The customer's X handle (without @).
    #[arg(long, default_value = "furiouscamper")]
    pub customer_handle: String,
    /// The agent's name in Connect.
    #[arg(long, default_value = "Enrique")]
    pub agent_name: String,
    /// Read the conversation from this file instead of the terminal (one line per input, as typed).
    #[arg(long, conflicts_with = "web")]
    pub script: Option<PathBuf>,
    /// Play both sides in a browser instead: serve the demo page on loopback and print its URL.
    #[arg(long)]
    pub web: bool,
    /// Where `--web` serves its page: a loopback address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0", requires = "web")]
    pub web_listen: std::net::SocketAddr,
}

/// A terminal line starting with `@billing` is a DM to the second business account.
const BILLING_PREFIX: &str = "@billing";
/// A terminal line starting with `@chat` is written by the X Chat customer.
const CHAT_PREFIX: &str = "@chat";

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    crate::commands::demo_world::init_logs();
    let style = Style::new(std::io::stdout().is_terminal());

    let World {
        sandbox,
        running,
        store,
        dir: _dir,
        chat_customer,
    } = World::start(&args.customer_name, &args.customer_handle).await?;
    let base = running.base.clone();
    let bridge = Arc::clone(&running.bridge);

    let business = &sandbox.config().x.business;
    println!("{}", style.bold("xdm-connect demo"));
    println!("  bridge   {base}   (store: {store})");
    if let Some(admin) = &running.admin_base {
        println!(
            "  admin    {admin}/metrics, /healthz   (Authorization: Bearer {})",
            crate::sandbox_link::SANDBOX_ADMIN_TOKEN
        );
    }
    println!(
        "  sandbox  {}   (X API + Amazon Connect + SNS)",
        sandbox.base_url()
    );
    println!("  X webhook CRC passed; SNS subscription confirmed.");
    println!();
    println!(
        "You are {} (@{}) writing to @{} on X (or to @{BILLING_HANDLE}: start the line with {BILLING_PREFIX}; or {CHAT_CUSTOMER_NAME} on encrypted X Chat: {CHAT_PREFIX}), and {} answering in Amazon Connect.",
        args.customer_name, args.customer_handle, business.username, args.agent_name
    );
    print_help(&style);

    let accounts = world_accounts(&sandbox);
    let chat_reader = tokio::spawn({
        let customer = Arc::clone(&chat_customer);
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                show_chat_answers(&customer, style).await;
            }
        }
    });
    let printer = tokio::spawn(print_events(
        sandbox.clone(),
        style,
        accounts,
        args.customer_handle.clone(),
    ));
    let interactive = args.script.is_none() && std::io::stdin().is_terminal();
    let input: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match &args.script {
        Some(path) => Box::new(
            tokio::fs::File::open(path)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdin()),
    };
    let mut lines = BufReader::new(input).lines();
    let session = Demo {
        sandbox: sandbox.clone(),
        bridge,
        args,
        style,
        chat_customer,
        last_customer: std::sync::Mutex::new(CUSTOMER_ID),
    };
    loop {
        if interactive {
            print!("{}", style.dim("> "));
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
        let Some(line) = lines.next_line().await? else {
            break;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !interactive {
            println!("{} {line}", style.dim(">"));
        }
        match session.handle(line).await {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => break,
            Err(e) => println!("{} {e:#}", style.red("!")),
        }
        if !interactive {
            session.settle().await;
        }
    }
    session.settle().await;
    println!("{}", style.dim("bye"));
    printer.abort();
    chat_reader.abort();
    running.stop().await?;
    sandbox.shutdown();
    Ok(())
}

enum Flow {
    Continue,
    Quit,
}

struct Demo {
    sandbox: SandboxHandle,
    bridge: Arc<AppBridge>,
    args: DemoArgs,
    style: Style,
    chat_customer: Arc<tokio::sync::Mutex<ChatCustomer>>,
    /// Whose chat the agent's commands act on: the customer who wrote last.
    last_customer: std::sync::Mutex<&'static str>,
}

/// Prints the business's answers the X Chat customer's device opened since the last call.
async fn show_chat_answers(customer: &tokio::sync::Mutex<ChatCustomer>, style: Style) {
    let answers = customer.lock().await.new_answers().await;
    match answers {
        Ok(answers) => {
            for text in answers {
                println!(
                    "{}@{CHAT_CUSTOMER_HANDLE} receives on X Chat (signature checked, decrypted on her device): {text}",
                    style.magenta("📱 X Chat   ")
                );
            }
        }
        Err(e) => println!("{} the X Chat customer's device: {e:#}", style.red("!")),
    }
}

impl Demo {
    async fn handle(&self, line: &str) -> anyhow::Result<Flow> {
        let (cmd, rest) = match line.strip_prefix('/') {
            Some(c) => c.split_once(' ').map_or((c, ""), |(c, r)| (c, r.trim())),
            None => {
                if let Some(text) = line.strip_prefix(CHAT_PREFIX)
                    && text.starts_with(' ')
                {
                    self.chat_customer.lock().await.send(text.trim()).await?;
                    self.wrote(CHAT_CUSTOMER_ID);
                    return Ok(Flow::Continue);
                }
                self.wrote(CUSTOMER_ID);
                let spec = match line.strip_prefix(BILLING_PREFIX) {
                    Some(text) if text.starts_with(' ') => DmSpec {
                        recipient_id: Some(BILLING_ID.to_owned()),
                        ..DmSpec::text(CUSTOMER_ID, text.trim())
                    },
                    _ => DmSpec::text(CUSTOMER_ID, line),
                };
                let delivery = self.sandbox.deliver_dm(spec).await?;
                if delivery.status != Some(200) {
                    bail!("the bridge answered X with {:?}", delivery.status);
                }
                return Ok(Flow::Continue);
            }
        };
        match cmd {
            "a" | "agent" => {
                if rest.is_empty() {
                    bail!("usage: /agent <reply>");
                }
                let contact = self.open_contact()?;
                if contact.agent.is_none() {
                    self.sandbox
                        .agent_accept(&contact.contact_id, &self.args.agent_name)?;
                }
                self.sandbox
                    .agent_send(&contact.contact_id, rest, "text/markdown")?;
            }
            "accept" => {
                let contact = self.open_contact()?;
                self.sandbox
                    .agent_accept(&contact.contact_id, &self.args.agent_name)?;
            }
            "leave" => {
                self.sandbox.agent_leave(&self.open_contact()?.contact_id)?;
            }
            "flow" | "system" => {
                if rest.is_empty() {
                    bail!("usage: /flow <message from the contact flow>");
                }
                self.sandbox
                    .system_message(&self.open_contact()?.contact_id, rest)?;
            }
            "transfer" => {
                let after = self.sandbox.transfer(&self.open_contact()?.contact_id)?;
                println!(
                    "{} transferred: contact {} (initial {})",
                    self.style.cyan("🎧 Connect "),
                    short(&after.contact_id),
                    short(&after.initial_contact_id)
                );
            }
            "end" => {
                self.sandbox.end_chat(&self.open_contact()?.contact_id)?;
            }
            "status" => self.status().await?,
            "help" | "?" => print_help(&self.style),
            "quit" | "exit" | "q" => return Ok(Flow::Quit),
            other => bail!("unknown command /{other} (try /help)"),
        }
        Ok(Flow::Continue)
    }

    fn wrote(&self, customer: &'static str) {
        if let Ok(mut last) = self.last_customer.lock() {
            *last = customer;
        }
    }

    /// The open chat of the customer who wrote last.
    fn open_contact(&self) -> anyhow::Result<ContactView> {
        let customer = self.last_customer.lock().map_or(CUSTOMER_ID, |c| *c);
        self.sandbox
            .contacts()
            .into_iter()
            .rev()
            .find(|c| {
                c.status != ContactStatus::Ended
                    && c.attributes.get("customerId").map(String::as_str) == Some(customer)
            })
            .context("no open chat: write something as the customer first")
    }

    async fn status(&self) -> anyhow::Result<()> {
        for c in self.sandbox.contacts() {
            println!(
                "  chat {} ({:?}{}): {} items, agent {}",
                short(&c.initial_contact_id),
                c.status,
                if c.contact_id == c.initial_contact_id {
                    String::new()
                } else {
                    format!(", now contact {}", short(&c.contact_id))
                },
                c.transcript.len(),
                c.agent
                    .as_ref()
                    .map_or("none".to_owned(), |a| a.display_name.clone()),
            );
        }
        let store = self.bridge.store();
        for q in JobQueue::ALL {
            let mut counts = Vec::new();
            for s in [
                JobState::Pending,
                JobState::Processing,
                JobState::Done,
                JobState::Failed,
            ] {
                counts.push(format!(
                    "{} {}",
                    store.jobs(q, Some(s), 100_000).await?.len(),
                    s.as_str()
                ));
            }
            println!("  {} events: {}", q.as_str(), counts.join(", "));
        }
        Ok(())
    }

    /// Waits until the bridge has nothing left in hand and the sandbox has gone quiet.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut quiet_since = Instant::now();
        let mut last_seq = self.sandbox.event_log(0).last().map_or(0, |e| e.seq);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let seq = self
                .sandbox
                .event_log(last_seq)
                .last()
                .map_or(last_seq, |e| e.seq);
            let mut open = 0;
            for q in JobQueue::ALL {
                for s in [JobState::Pending, JobState::Processing] {
                    open += self
                        .bridge
                        .store()
                        .jobs(q, Some(s), 1)
                        .await
                        .map_or(1, |j| j.len());
                }
            }
            if seq != last_seq || open > 0 {
                last_seq = seq;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() > Duration::from_millis(400) {
                // What reached the X Chat customer is shown before the next line.
                show_chat_answers(&self.chat_customer, self.style).await;
                return;
            }
        }
    }
}

fn print_help(style: &Style) {
    println!();
    println!(
        "  {}            send a DM as the customer",
        style.bold("text")
    );
    println!(
        "  {}   send it to the second business account instead",
        style.bold("@billing text")
    );
    println!(
        "  {}      write as {CHAT_CUSTOMER_NAME} on X Chat (end-to-end encrypted)",
        style.bold("@chat text")
    );
    println!(
        "  {}   reply as the agent to whoever wrote last (markdown works: **bold**, [link](https://…))",
        style.bold("/agent text")
    );
    println!(
        "  {}  /leave  /flow text  /transfer  /end  /status  /help  /quit",
        style.bold("/accept")
    );
    println!();
}

/// Prints what each side sees as the sandbox reports it; `accounts` names the business
/// accounts by X user id.
async fn print_events(
    sandbox: SandboxHandle,
    style: Style,
    accounts: std::collections::BTreeMap<String, String>,
    handle: String,
) {
    let name_of = |id: Option<&String>| {
        id.and_then(|id| accounts.get(id))
            .map_or("?", String::as_str)
            .to_owned()
    };
    let mut events = sandbox.events();
    let customer = style.magenta("📱 X        ");
    let connect = style.cyan("🎧 Connect  ");
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        match event {
            SandboxEvent::ContactStarted { contact } => {
                let a = &contact.attributes;
                println!(
                    "{connect}new chat {} for {} (@{}, {} followers) to {} — queued for an agent",
                    short(&contact.initial_contact_id),
                    contact.display_name,
                    a.get("x_username").map_or("?", String::as_str),
                    a.get("x_followers_count").map_or("?", String::as_str),
                    name_of(a.get("x_business_account_id")),
                );
                if a.get("x_channel").map(String::as_str) == Some("chat") {
                    println!(
                        "{connect}  on X Chat: end-to-end encrypted between her device and the bridge"
                    );
                }
                if contact.contact_flow_id == BILLING_FLOW {
                    println!("{connect}  in the billing flow (queue: billing)");
                }
                if let Some(profile) = &contact.customer_id {
                    println!("{connect}  customer profile {}", short(profile));
                }
                if let Some(previous) = &contact.continued_from_contact_id {
                    println!(
                        "{connect}  continues chat {} (the agent sees its history)",
                        short(previous)
                    );
                }
            }
            SandboxEvent::ChatItem { item, .. } => {
                let i = &item.item;
                let who = i.display_name.clone().unwrap_or_default();
                match (i.item_type, i.participant_role) {
                    (ItemType::Message, Some(ParticipantRole::Customer)) => {
                        println!(
                            "{connect}agent sees  {}: {}",
                            who,
                            i.content.as_deref().unwrap_or("")
                        );
                    }
                    (ItemType::Message, Some(ParticipantRole::System)) => {
                        println!(
                            "{connect}flow says   {}",
                            i.content.as_deref().unwrap_or("")
                        );
                    }
                    (ItemType::Event, _) => {
                        let what = i.content_type.rsplit('.').take(2).collect::<Vec<_>>();
                        match what.as_slice() {
                            ["joined", "participant"]
                                if i.participant_role == Some(ParticipantRole::Agent) =>
                            {
                                println!("{connect}{who} joined the chat");
                            }
                            ["left", "participant"]
                                if i.participant_role == Some(ParticipantRole::Agent) =>
                            {
                                println!(
                                    "{connect}{who} left the chat (the chat goes on: flows can still write)"
                                );
                            }
                            ["ended", "chat"] => println!(
                                "{connect}chat ended — the customer's next DM opens a new one"
                            ),
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            SandboxEvent::DmSent { dm } if dm.recipient_id == CUSTOMER_ID => {
                println!(
                    "{customer}@{handle} receives from {}: {}",
                    name_of(Some(&dm.sender_id)),
                    dm.text.as_deref().unwrap_or("(media)")
                );
            }
            _ => {}
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[derive(Debug, Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn new(color: bool) -> Self {
        Self { color }
    }
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    fn cyan(&self, s: &str) -> String {
        self.paint("36", s)
    }
    fn magenta(&self, s: &str) -> String {
        self.paint("35", s)
    }
}
