//! The clap types of the subcommands for the agent-facing tools around the page: `agnt
//! incidents` (`get_incidents`), `agnt channel reply` (`channel_reply`), `agnt browser ACTION`
//! (`browser`) and `agnt snapshot ACTION` (`snapshot`). As in the parent module, serializing one
//! yields exactly the tool's `arguments`; flags are named for humans (`--source`, `--headed`,
//! `--dismiss`, positional URLs, values and names) and renamed to the tool's parameters here.
//! Nothing here does IO.

use clap::{ArgAction, Args, Subcommand, builder::PossibleValuesParser};
use serde::{Serialize, Serializer};

use super::{Common, Timeout, is_false, parse_timeout};
use crate::host::incidents::SOURCES;

/// `agnt incidents`: what is broken now, newest first.
#[derive(Debug, Args, Serialize)]
pub struct IncidentsArgs {
    /// Only these severities, comma-separated (critical, error, warning, info).
    #[arg(long, value_delimiter = ',', value_parser = ["critical", "error", "warning", "info"])]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<String>,
    /// Only newer ones: the replay_cursor of an earlier answer, RFC 3339 or a duration (5m).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only these sources, comma-separated (browser_js, http_5xx, process_crash, ...).
    #[arg(long = "source", alias = "sources", value_delimiter = ',',
          value_parser = PossibleValuesParser::new(SOURCES.iter().copied()))]
    #[serde(rename = "sources", skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Only these incidents, by fingerprint (comma-separated or repeated).
    #[arg(long = "fingerprint", alias = "fingerprints", value_delimiter = ',')]
    #[serde(rename = "fingerprints", skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<String>,
    /// Only one proxy's.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_id: Option<String>,
    /// Only one process's.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_id: Option<String>,
    /// summary (default) or full (adds payloads).
    #[arg(long, value_parser = ["summary", "full"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Mark the incidents shown as read.
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    pub mark_read: bool,
    /// At most N incidents (1–100; default 20).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Same as --detail full.
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    pub raw: bool,
    /// Project directory (default: the current one's).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
}

/// `agnt channel …`: the `channel_reply` tool (its only action).
#[derive(Debug, Subcommand, Serialize)]
#[serde(untagged)]
pub enum ChannelAction {
    /// Show a message as a toast in the pages connected to the project's proxies (or to one);
    /// exits 1 when no page showed it.
    Reply(ReplyArgs),
}

impl ChannelAction {
    /// The CLI-only options.
    pub fn common(&self) -> &Common {
        match self {
            ChannelAction::Reply(a) => &a.common,
        }
    }
}

/// `agnt channel reply TEXT…`.
#[derive(Debug, Args, Serialize)]
pub struct ReplyArgs {
    /// The message (several words are joined with spaces).
    #[arg(required = true, num_args = 1.., value_name = "TEXT")]
    #[serde(rename = "content", serialize_with = "join_words")]
    pub content: Vec<String>,
    /// Only the pages of this proxy (default: every running proxy of the project).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_id: Option<String>,
    /// info (default), warning or error.
    #[arg(long, value_parser = ["info", "warning", "error"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The toast's title.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Project directory (default: the current one's).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
}

fn join_words<S: Serializer>(words: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&words.join(" "))
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Which browser (and project) an action is for.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct Pick {
    /// Browser id (start: the new browser's name; default: its proxy's id).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The browser on this proxy (start: the proxy to browse through).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_id: Option<String>,
    /// Project directory (default: the current one's).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The element an action needs: by CSS selector or by visible text.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[group(required = true, multiple = false)]
pub struct Element {
    /// The element by CSS selector, e.g. '#buy'.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The element by its visible text, e.g. 'Buy now'.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// An element an action may take (`press`, `wait-for`, `screenshot`).
#[derive(Debug, Clone, Default, Args, Serialize)]
#[group(required = false, multiple = false)]
pub struct MaybeElement {
    /// The element by CSS selector.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The element by its visible text.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `agnt browser …`: headless Chromium that agnt drives through a proxy. Page actions pick the
/// browser with --id or --proxy-id, or take the project's only one.
#[derive(Debug, Subcommand, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum BrowserAction {
    /// Start Chromium on a dev-server URL (a proxy is started in front of it if none covers
    /// it) or on a proxy (--proxy-id).
    #[command(visible_alias = "open")]
    Start {
        /// The page: a dev-server URL, or a path on --proxy-id's proxy.
        #[arg(long, required_unless_present = "proxy_id")]
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// Show the window (default: headless).
        #[arg(long = "headed", action = ArgAction::SetFalse)]
        #[serde(skip_serializing_if = "is_true")]
        headless: bool,
        /// The Chromium binary (default: found on PATH).
        #[arg(long, value_name = "PATH")]
        #[serde(skip_serializing_if = "Option::is_none")]
        binary_path: Option<String>,
        /// throwaway (default) or persistent (keeps logins between starts).
        #[arg(long, value_parser = ["throwaway", "persistent"])]
        #[serde(skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Close a browser.
    #[command(visible_alias = "close")]
    Stop {
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// A browser's state and its page.
    Status {
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// List browsers of this project (--global: all).
    List {
        #[arg(long)]
        #[serde(skip_serializing_if = "is_false")]
        global: bool,
        /// Project directory (default: the current one's).
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Load a URL, or a path on the browser's proxy.
    Navigate {
        /// e.g. /settings.
        url: String,
        /// Seconds (or 2m); default 30.
        #[arg(long, value_parser = parse_timeout)]
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout: Option<Timeout>,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Reload the page.
    Reload {
        /// Seconds (or 2m); default 30.
        #[arg(long, value_parser = parse_timeout)]
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout: Option<Timeout>,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Go back in the page's history.
    Back {
        /// Seconds (or 2m); default 30.
        #[arg(long, value_parser = parse_timeout)]
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout: Option<Timeout>,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Set the viewport: a preset (mobile, tablet, desktop) or --width and --height.
    Resize {
        #[arg(value_parser = ["mobile", "tablet", "desktop"],
              required_unless_present_all = ["width", "height"],
              conflicts_with_all = ["width", "height"])]
        #[serde(skip_serializing_if = "Option::is_none")]
        preset: Option<String>,
        /// CSS pixels.
        #[arg(long, requires = "height")]
        #[serde(skip_serializing_if = "Option::is_none")]
        width: Option<u32>,
        /// CSS pixels.
        #[arg(long, requires = "width")]
        #[serde(skip_serializing_if = "Option::is_none")]
        height: Option<u32>,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Click an element (real mouse events).
    Click {
        #[command(flatten)]
        #[serde(flatten)]
        element: Element,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Move the mouse over an element.
    Hover {
        #[command(flatten)]
        #[serde(flatten)]
        element: Element,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Type VALUE into a field (replacing its text).
    Fill {
        value: String,
        #[command(flatten)]
        #[serde(flatten)]
        element: Element,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Choose VALUE in a `<select>`.
    Select {
        value: String,
        #[command(flatten)]
        #[serde(flatten)]
        element: Element,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Press a key (KeyboardEvent.key, e.g. Enter), in an element or the focused one.
    Press {
        key: String,
        #[command(flatten)]
        #[serde(flatten)]
        element: MaybeElement,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Put files (paths relative to the project) into a file input.
    Upload {
        #[arg(required = true, num_args = 1.., value_name = "FILE")]
        files: Vec<String>,
        #[command(flatten)]
        #[serde(flatten)]
        element: Element,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Wait until an element is there (--selector/--text), the URL contains --url, or the
    /// network is idle.
    WaitFor {
        #[command(flatten)]
        #[serde(flatten)]
        element: MaybeElement,
        /// A substring of the page's URL.
        #[arg(long, conflicts_with_all = ["selector", "text"])]
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// No request in flight for a moment.
        #[arg(long, conflicts_with_all = ["selector", "text", "url"])]
        #[serde(skip_serializing_if = "is_false")]
        network_idle: bool,
        /// Seconds (or 2m); default 10.
        #[arg(long, value_parser = parse_timeout)]
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout: Option<Timeout>,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Save a PNG of the viewport, the full page or one element, and print its path.
    Screenshot {
        #[command(flatten)]
        #[serde(flatten)]
        element: MaybeElement,
        /// The whole scrollable page.
        #[arg(long, conflicts_with_all = ["selector", "text"])]
        #[serde(skip_serializing_if = "is_false")]
        full_page: bool,
        /// Include the PNG as base64 in the --json result.
        #[arg(long)]
        #[serde(skip_serializing_if = "is_false")]
        inline: bool,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// The page's console messages (--since: the cursor of an earlier read).
    Console {
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// How to answer the page's next alert/confirm/prompt (default: accept).
    Dialog {
        /// Dismiss it instead.
        #[arg(long = "dismiss", action = ArgAction::SetFalse)]
        #[serde(skip_serializing_if = "is_true")]
        accept: bool,
        /// prompt: the answer to type.
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
}

impl BrowserAction {
    /// The CLI-only options.
    pub fn common(&self) -> &Common {
        use BrowserAction as B;
        match self {
            B::Start { common, .. }
            | B::Stop { common, .. }
            | B::Status { common, .. }
            | B::List { common, .. }
            | B::Navigate { common, .. }
            | B::Reload { common, .. }
            | B::Back { common, .. }
            | B::Resize { common, .. }
            | B::Click { common, .. }
            | B::Hover { common, .. }
            | B::Fill { common, .. }
            | B::Select { common, .. }
            | B::Press { common, .. }
            | B::Upload { common, .. }
            | B::WaitFor { common, .. }
            | B::Screenshot { common, .. }
            | B::Console { common, .. }
            | B::Dialog { common, .. } => common,
        }
    }
}

/// `agnt snapshot …`: visual baselines of pages, compared pixel by pixel through a browser.
#[derive(Debug, Subcommand, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SnapshotAction {
    /// Capture pages (paths or URLs; default: the browser's current page) as baseline NAME.
    Baseline {
        name: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pages: Vec<String>,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Capture baseline NAME's pages again and compare; exits 1 when a page differs.
    Compare {
        #[serde(rename = "baseline")]
        name: String,
        /// Largest changed fraction that still passes, 0–1 (default 0.01).
        #[arg(long, value_parser = parse_fraction)]
        #[serde(skip_serializing_if = "Option::is_none")]
        diff_threshold: Option<f64>,
        #[command(flatten)]
        #[serde(flatten)]
        pick: Pick,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// List the project's baselines.
    List {
        /// Project directory (default: the current one's).
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// One baseline's pages and files.
    Get {
        name: String,
        /// Project directory (default: the current one's).
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Delete a baseline.
    Delete {
        name: String,
        /// Project directory (default: the current one's).
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
}

impl SnapshotAction {
    /// The CLI-only options.
    pub fn common(&self) -> &Common {
        use SnapshotAction as S;
        match self {
            S::Baseline { common, .. }
            | S::Compare { common, .. }
            | S::List { common, .. }
            | S::Get { common, .. }
            | S::Delete { common, .. } => common,
        }
    }
}

/// `--diff-threshold`: a fraction from 0 to 1.
fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!(
            "expected a fraction from 0 to 1, e.g. 0.01, got {s:?}"
        )),
    }
}
