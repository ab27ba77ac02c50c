//! One module per resource; each handler parses its input, calls one service, shapes output.

pub mod audit;
pub mod auth;
pub mod bot_events;
pub mod bots;
pub mod breaches;
pub mod break_glass;
pub mod chat;
pub mod commands;
pub mod compliance;
pub mod docs;
pub mod files;
pub mod health;
pub mod interactions;
pub mod invitations;
pub mod keys;
pub mod policies;
pub mod processing_record;
pub mod restriction;
pub mod search;
pub mod setup;
pub mod sso;
pub mod subject_requests;
pub mod uploads;
pub mod users;
pub mod workspaces;
pub mod ws;
