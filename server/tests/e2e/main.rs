//! End-to-end tests: each spawns the real server on port 0 with a fresh database and talks
//! to it over HTTP as a user would. Most run on both SQLite and PostgreSQL.

mod harness;

mod account_creation;
mod accounts;
mod audit_log;
mod audit_trail;
mod bad_input;
mod bot_commands;
mod bot_events;
mod bot_sdk;
mod bots;
mod chat;
mod cli;
mod client_contract;
mod decide_first;
mod docs;
mod durability;
mod encryption;
mod exposure;
mod files;
mod files_clients;
mod fuzz;
mod grants;
mod hipaa;
mod hub;
mod inventory;
mod keys;
mod operations;
mod outbox;
mod policy;
mod rbac;
mod retention;
mod route_coverage;
mod search;
mod search_bounds;
mod search_commits;
mod sessions;
mod sign_in_limits;
mod sso;
mod storage;
mod subject_access;
mod tokens;
mod uploads;
mod web_client;
mod yjs_clients;
