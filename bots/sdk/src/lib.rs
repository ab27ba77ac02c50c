//! Concord's bot SDK: what a Rust program needs to be a bot in a Concord (or Slack) workspace.
//!
//! - [`WebClient`] calls the Web API (`/api/slack/{method}`) with a bot token: typed methods
//!   for posting, editing, listing, reacting and looking people up, cursors followed by the
//!   `all_*` helpers, Slack's `{"ok": false, "error": ...}` answers as [`Error::Api`] and
//!   `429 Retry-After` waited out (or returned as [`Error::RateLimited`]).
//! - [`Webhook`] posts to an incoming webhook URL.
//! - [`Receiver`] is the bot's HTTP endpoint: it checks Slack's request signature
//!   ([`verify`]), answers `url_verification`, and hands events, slash commands and button
//!   presses to the callbacks it was given; [`respond`] answers through a `response_url`.
//! - [`blocks`] builds Block Kit JSON.
//! - [`notify`] runs a command and reports how it went through a webhook (the `notify`
//!   example's logic).
//!
//! The SDK does no logging of its own and never panics on what it receives.

pub mod blocks;
mod error;
pub mod notify;
mod receiver;
mod signing;
mod web;
mod webhook;

pub use error::Error;
pub use receiver::{respond, Action, Event, Interaction, Receiver, SlashCommand};
pub use signing::{signature, verify, verify_headers, VerifyError, MAX_AGE_SECONDS};
pub use web::{AuthTest, Channel, Message, Page, Posted, User, WebClient};
pub use webhook::Webhook;
