//! Command-line parsing and the subcommands. Errors end as one line on stderr and a non-zero
//! exit code.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use concord::accounts::NewAccount;
use concord::config::{Config, Mode, Overrides};
use concord::domain::{DisplayName, Email, Password};
use concord::rbac::Actor;
use concord::App;

#[derive(Parser)]
#[command(
    name = "concord",
    version,
    about = "Concord: team collaboration with a compliance layer"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// TOML config file (default: ./concord.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database URL: sqlite:PATH or postgres://... (default: SQLite in the data dir).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Data directory (default: ./data).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Production mode: refuse to generate missing keys.
    #[arg(long, global = true)]
    production: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Administer accounts.
    #[command(subcommand)]
    Admin(Admin),
    /// Durable consumers of committed events (the outbox).
    #[command(subcommand)]
    Events(EventsCmd),
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Encryption keys: status and rotation.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// The audit log: verification and the checkpoint verification key.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The search index.
    #[command(subcommand)]
    Search(SearchCmd),
    /// Compliance policy modules and workspace overrides.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Compliance records: the record of processing activities (GDPR Art. 30).
    #[command(subcommand)]
    Compliance(ComplianceCmd),
    /// The retention job.
    #[command(subcommand)]
    Retention(RetentionCmd),
    /// eDiscovery: exports of a workspace's content, and the daily export.
    #[command(subcommand)]
    Ediscovery(EdiscoveryCmd),
    /// Deploy workflow processes, start and follow instances, handle incidents, export the
    /// event log.
    #[command(subcommand, alias = "workflows")]
    Workflow(WorkflowCmd),
    /// The learned task router.
    #[command(subcommand)]
    Routing(RoutingCmd),
    /// Decide with a decision table file (DMN, YAML or CSV), without a server: prints the
    /// rules that matched, why, and the result; or, with --test, runs the table's test cases.
    Decide {
        /// The table's file (.dmn, .yaml, .yml or .csv).
        table: PathBuf,
        /// The variables to decide on: a JSON file holding an object (`-` reads standard input).
        #[arg(long, value_name = "FILE", required_unless_present = "test")]
        input: Option<PathBuf>,
        /// The decision to use when the file holds several (a DMN file may).
        #[arg(long, value_name = "ID")]
        decision: Option<String>,
        /// Run the table's own test cases instead; exits non-zero if one fails.
        #[arg(long)]
        test: bool,
        /// Print the decision as JSON (result, matched rules, inputs) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the HTTP API's OpenAPI document (JSON), as served at /api/v1/openapi.json.
    Openapi,
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Validate the enabled policy modules (`policy.modules`, `policy.dir`) and every
    /// workspace's stored override, refuse what HIPAA mode would refuse at start, and print
    /// the effective policy of the deployment and of each workspace with where each value
    /// comes from. Every invalid stored override is one line on stderr (and the exit code is
    /// non-zero). Writes nothing.
    Check,
    /// Return a workspace to the modules by clearing its override (stored as a new, empty
    /// version and audited as a system action). Works on the database alone, with or without
    /// a server running: the way out when an override the modules no longer allow stops the
    /// server at start.
    ClearOverride {
        /// The workspace's id.
        #[arg(long, value_name = "ID")]
        workspace: String,
    },
}

#[derive(Subcommand)]
enum ComplianceCmd {
    /// Print the record of processing activities (GDPR Art. 30), generated from the enabled
    /// policy modules, every workspace's effective policy, the data inventory and what is
    /// installed, as `GET /api/v1/compliance/processing-record` answers it; audited as a
    /// system action.
    Record {
        /// `json` (default) or `markdown`.
        #[arg(long, value_name = "FORMAT", default_value = "json")]
        format: String,
    },
}

#[derive(Subcommand)]
enum RetentionCmd {
    /// Run one retention pass now and print its report as JSON: every workspace's periods
    /// (messages, files, document history, under legal holds), then the deployment's
    /// (session records, the audit log cut at a signed checkpoint, both kept while any legal
    /// hold is in force); with `--workspace`, that workspace's only. Run it with the server
    /// stopped: a running server's search index and connected clients do not learn what the
    /// pass destroys (the running server's own retention task does the same work while it
    /// runs). Exits non-zero if any part failed.
    Run {
        /// Only this workspace (its id).
        #[arg(long, value_name = "ID")]
        workspace: Option<String>,
        /// Apply the workspaces' periods as if at this time (RFC 3339), to rehearse a policy;
        /// only where `retention.allow_explicit_now` is set. The deployment's periods
        /// (session records, the audit log) always apply at the present time.
        #[arg(long, value_name = "TIME", hide = true)]
        now: Option<String>,
    },
}

#[derive(Subcommand)]
enum EdiscoveryCmd {
    /// Export a workspace's content (messages, files, document versions) selected by date
    /// range, custodians and channels to a file, as `POST /api/v1/compliance/ediscovery/exports`
    /// does; audited as a system action (`ediscovery.exported`).
    Export {
        /// The workspace's id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// From this time (RFC 3339) or the start of this day (YYYY-MM-DD, UTC).
        #[arg(long, value_name = "D")]
        from: Option<String>,
        /// Before this time (RFC 3339) or up to the end of this day (YYYY-MM-DD).
        #[arg(long, value_name = "D")]
        to: Option<String>,
        /// Only content by this person (a user id; repeatable).
        #[arg(long = "custodian", value_name = "ID")]
        custodians: Vec<String>,
        /// Only this channel (an id; repeatable).
        #[arg(long = "channel", value_name = "ID")]
        channels: Vec<String>,
        /// Keywords, through the search index.
        #[arg(long, value_name = "Q")]
        query: Option<String>,
        /// jsonl, csv, zip, actiance or globalrelay.
        #[arg(long, value_name = "F")]
        format: String,
        /// Where to write it.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Write the daily export of every workspace for one day (default: yesterday, UTC) to
    /// `ediscovery.daily_export.directory`, skipping workspaces already exported for it (or
    /// being exported by a running server), and print what was written as JSON; what the
    /// server's daily task does at its hour. Only a day that is over (before today, UTC) may be
    /// exported.
    Daily {
        /// The day (YYYY-MM-DD), before today (UTC).
        #[arg(long, value_name = "D")]
        day: Option<String>,
    },
}

#[derive(Subcommand)]
enum WorkflowCmd {
    /// Deploy models (BPMN XML or YAML), task forms (JSON) and decision tables (DMN, YAML or
    /// CSV), in the order given, each as the next version of its process, form or table;
    /// prints each deployment as JSON. Deploy what a model uses (forms, tables, called
    /// processes) before it, or in the same command, first.
    Deploy {
        /// The workspace's id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// Model files (.bpmn, .xml, .yaml or .yml), forms (.json: `{"key", "schema"}`) and
        /// decision tables (.dmn, .csv, or .yaml/.yml starting with `decision:`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The version note of the models deployed (what changed, up to 500 characters).
        #[arg(long)]
        note: Option<String>,
    },
    /// The workspace's deployed processes, every version, as JSON.
    List {
        /// The workspace's id.
        #[arg(long, value_name = "ID")]
        workspace: String,
    },
    /// Start an instance of a process; prints it as JSON.
    Start {
        /// The workspace's id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The process id.
        process: String,
        /// The first variables, a JSON object.
        #[arg(long, value_name = "JSON")]
        variables: Option<String>,
        /// The version to run (default: the latest).
        #[arg(long, value_name = "N")]
        version: Option<i64>,
    },
    /// The workspace's instances, as JSON.
    Instances {
        /// The workspace's id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// running, completed, terminated, failed or cancelled.
        #[arg(long, value_name = "S")]
        status: Option<String>,
    },
    /// One instance with its variables, tasks, incidents and history, as JSON.
    Show {
        /// The workspace's id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The instance's id.
        instance: String,
    },
    /// The workspace's open incidents, as JSON.
    Incidents {
        /// The workspace's id.
        #[arg(long, value_name = "ID")]
        workspace: String,
    },
    /// Retry the failed step of an incident.
    Retry {
        /// The workspace's id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The incident's id.
        incident: String,
    },
    /// Cancel a running instance.
    Cancel {
        /// The workspace's id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The instance's id.
        instance: String,
    },
    /// Export the workspace's workflow history as an event log for process mining (as
    /// `GET /workspaces/{id}/workflow-log` does; audited as `workflow.log_exported`): XES, OCEL
    /// 2.0 JSON or CSV, streamed to a file or standard output.
    Log {
        /// The workspace's id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// A process to include (repeat for several; default: every process).
        #[arg(long = "process", value_name = "ID")]
        processes: Vec<String>,
        /// xes, ocel or csv.
        #[arg(long, value_name = "F", default_value = "xes")]
        format: String,
        /// Only instances started at or after this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Only instances started before this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// OCEL only: variables whose values name objects (`order_id:order,invoice_id:invoice`).
        #[arg(long, value_name = "VAR:TYPE,...")]
        objects: Option<String>,
        /// Where to write it (default: standard output); written beside it and renamed once
        /// complete.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RoutingCmd {
    /// Train the learned router on part of a history and report, on the held-out rest, its
    /// accuracy, macro-F1 and confusion matrix, the share it routes at the threshold versus
    /// the fallback, against two baselines measured in the same run (the majority class and
    /// keyword rules). The history is a process's completed tasks (--workspace and --process),
    /// a generated ticket history (--generated N), or a folder of Debian fortune files, each
    /// file a category (--fortunes DIR).
    Evaluate {
        /// The workspace whose process's tasks to learn from (with --process).
        #[arg(long, value_name = "ID", requires = "process")]
        workspace: Option<String>,
        /// The process whose completed tasks to learn from (with --workspace).
        #[arg(long, value_name = "ID", requires = "workspace")]
        process: Option<String>,
        /// Only the tasks of this user task (element id) of the process.
        #[arg(long, value_name = "ELEMENT", requires = "process")]
        task: Option<String>,
        /// At most this many of the most recent tasks.
        #[arg(long, value_name = "N", default_value_t = 100_000,
              value_parser = clap::value_parser!(i64).range(1..=200_000))]
        limit: i64,
        /// Learn from a generated ticket history of N tasks instead.
        #[arg(long, value_name = "N", conflicts_with_all = ["process", "fortunes"],
              value_parser = clap::value_parser!(u64).range(10..=200_000))]
        generated: Option<u64>,
        /// Learn from the fortune files in DIR instead (e.g. /usr/share/games/fortunes).
        #[arg(long, value_name = "DIR", conflicts_with_all = ["process", "generated"])]
        fortunes: Option<PathBuf>,
        /// The confidence from which the router routes rather than the fallback (0 to 1).
        #[arg(long, value_name = "P", default_value_t = 0.6)]
        threshold: f64,
        /// The seed of the split (and of the generated history).
        #[arg(long, value_name = "N", default_value_t = 0x5EED)]
        seed: u64,
        /// Print the evaluation as JSON instead of Markdown.
        #[arg(long)]
        json: bool,
    },
    /// Train the next version of a process's learned router on its completed tasks now, as
    /// `POST /workspaces/{id}/workflows/{process}/router` does (audited as
    /// `workflow.router_trained`); tasks whose routing says `learned` ask it from then on.
    Train {
        /// The workspace.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The process whose completed tasks to learn from.
        #[arg(long, value_name = "ID")]
        process: String,
    },
}

/// An error whose lines were already printed: exit non-zero without printing more.
#[derive(Debug)]
struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reported above")
    }
}

impl std::error::Error for Reported {}

#[derive(Subcommand)]
enum SearchCmd {
    /// Rebuild search indexes from the database (resumes an interrupted rebuild). Run it with
    /// the server stopped; a running server rebuilds missing indexes by itself at start.
    Reindex {
        /// Only this workspace (its id).
        #[arg(long, value_name = "ID")]
        workspace: Option<String>,
    },
}

#[derive(Subcommand)]
enum EventsCmd {
    /// Print the committed events after a consumer's cursor, in commit order, one JSON object
    /// a line, and move the cursor after each printed batch. Delivery is at least once: if
    /// stopped between printing a batch and moving the cursor, the next run prints that
    /// batch again (deduplicate by `event_id`).
    Tail {
        /// The consumer's name (registered on first use): 1 to 64 of a-z, 0-9, '.', '_', '-'.
        #[arg(long, value_name = "NAME")]
        consumer: String,
        /// A new consumer starts at the oldest stored event instead of after the newest.
        /// An existing consumer always resumes after its cursor.
        #[arg(long)]
        from_start: bool,
        /// Keep waiting for new events (until Ctrl-C or SIGTERM) instead of exiting at the end.
        #[arg(long)]
        follow: bool,
        /// Events per batch (the cursor moves once per batch).
        #[arg(long, value_name = "N", default_value_t = 256)]
        batch: usize,
        /// How often to look for events committed by other processes, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 200)]
        poll_ms: u64,
    },
    /// List the registered consumers, their cursors and how many events each has not read.
    Consumers,
    /// Unregister a consumer: pruning stops keeping events for it.
    Remove {
        /// The consumer's name.
        #[arg(long, value_name = "NAME")]
        consumer: String,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Show every data key, its KEK and usage, and re-encryption jobs.
    Status,
    /// Rewrap every data key with a new key-encryption key (data is not touched).
    RotateKek {
        /// The new KEK (base64 of 32 bytes, mode 0600); generated next to the current one if omitted.
        #[arg(long, value_name = "FILE")]
        new_kek_file: Option<PathBuf>,
    },
    /// Start new data-key versions for new writes and re-encrypt existing data in a
    /// resumable job: a running server carries it out in the background; with no server
    /// running, this command does.
    RotateDek {
        /// Only resume unfinished re-encryption, without starting new key versions.
        #[arg(long)]
        resume: bool,
        /// When a running server re-encrypts, show its progress until it is done.
        #[arg(long)]
        wait: bool,
    },
    /// Start a new audit checkpoint signing key; earlier keys stay in the published history.
    RotateAuditKey,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Verify the hash chain and signed checkpoints of the live log (and that its unsigned
    /// tail is within `audit.checkpoint_every` / `audit.checkpoint_seconds`), or of an export
    /// offline.
    Verify {
        /// An export (JSON Lines) to verify instead of the live log.
        #[arg(long, value_name = "FILE", requires = "public_key")]
        file: Option<PathBuf>,
        /// The checkpoint verification keys (from `concord audit public-key`).
        #[arg(long, value_name = "FILE", requires = "file")]
        public_key: Option<PathBuf>,
        /// The heads an outside witness recorded (`audit.witness`): the live log, or the
        /// export's range with `--file`, must hold each of them. For the live log it
        /// defaults to the configured witness when that is a file.
        #[arg(long, value_name = "FILE")]
        witness: Option<PathBuf>,
    },
    /// Print the checkpoint verification key and its history, for outside auditors.
    PublicKey,
}

#[derive(Subcommand)]
enum Admin {
    /// Create an account. The password is read from stdin (or CONCORD_ADMIN_PASSWORD).
    CreateUser {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Make the account a system admin.
        #[arg(long)]
        admin: bool,
        /// Give the account this system role instead.
        #[arg(long, conflicts_with = "admin")]
        role: Option<String>,
    },
    /// Set (or with `none`, clear) an account's system role.
    SetRole {
        /// Email address.
        #[arg(long)]
        email: String,
        /// system_admin, compliance_officer or none.
        #[arg(long)]
        role: String,
    },
    /// List accounts.
    ListUsers,
    /// Revoke every session of an account.
    RevokeSessions {
        /// Email address.
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the effective configuration with secrets redacted.
    Print,
}

/// Parses arguments, runs the command, and turns any error into one line on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let bind = match &cli.command {
        Command::Serve { bind } => bind.clone(),
        _ => None,
    };
    let overrides = Overrides {
        bind,
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        mode: cli.global.production.then_some(Mode::Production),
    };
    let config = match Config::load(cli.global.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("concord: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("concord: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Reported>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("concord: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Config(ConfigCmd::Print) => {
            print!("{}", config.redacted_toml());
            Ok(())
        }
        Command::Serve { .. } => serve(config).await,
        Command::Openapi => {
            let (_, document) = concord::http::api_router();
            println!("{}", document.to_pretty_json()?);
            Ok(())
        }
        Command::Migrate => {
            concord::telemetry::init_logging(&config.log);
            let store = concord::store::Store::connect(
                &App::store_options(&config),
                concord::events::Events::in_process(),
            )
            .await?;
            store.migrate().await?;
            store.close().await;
            println!("migrations applied ({:?})", store.backend());
            Ok(())
        }
        Command::Audit(AuditCmd::Verify {
            file: Some(file),
            public_key: Some(public_key),
            witness,
        }) => verify_offline(&file, &public_key, witness.as_deref()),
        Command::Audit(cmd) => {
            let live = concord::audit::verification::LiveChecks::from_config(&config);
            let app = App::build(config).await?;
            let result = audit_cmd(&app, cmd, live).await;
            app.close().await;
            result
        }
        Command::Keys(cmd) => keys_cmd(config, cmd).await,
        Command::Policy(PolicyCmd::Check) => policy_check(config).await,
        Command::Policy(PolicyCmd::ClearOverride { workspace }) => {
            clear_override(config, &workspace).await
        }
        Command::Events(cmd) => events_cmd(config, cmd).await,
        Command::Compliance(ComplianceCmd::Record { format }) => {
            let markdown = match format.as_str() {
                "json" => false,
                "markdown" | "md" => true,
                other => anyhow::bail!("--format: json or markdown, not {other}"),
            };
            let app = App::build(config).await?;
            let record = app.processing_record().generate(&Actor::system()).await;
            app.close().await;
            let record = record?;
            if markdown {
                print!("{}", record.markdown());
            } else {
                println!("{}", serde_json::to_string_pretty(&record)?);
            }
            Ok(())
        }
        Command::Ediscovery(cmd) => ediscovery_cmd(config, cmd).await,
        Command::Workflow(cmd) => workflow_cmd(config, cmd).await,
        Command::Routing(cmd) => routing_cmd(config, cmd).await,
        Command::Decide {
            table,
            input,
            decision,
            test,
            json,
        } => decide_cmd(&table, input.as_deref(), decision.as_deref(), test, json),
        Command::Retention(RetentionCmd::Run { workspace, now }) => {
            retention_run(config, workspace.as_deref(), now.as_deref()).await
        }
        Command::Search(SearchCmd::Reindex { workspace }) => {
            let only = match workspace {
                Some(w) => Some(
                    w.parse::<concord::domain::WorkspaceId>()
                        .map_err(|_| anyhow::anyhow!("--workspace: not a workspace id: {w}"))?,
                ),
                None => None,
            };
            let app = App::build(config).await?;
            let result = reindex(&app, only).await;
            app.close().await;
            result
        }
        Command::Admin(admin) => {
            let app = App::build(config).await?;
            let result = administer(&app, admin).await;
            app.close().await;
            result
        }
    }
}

async fn policy_check(config: Config) -> anyhow::Result<()> {
    let modules = concord::policy::Modules::load(&config.policy)?;
    concord::policy::safeguards::refuse_unsafe_start(&config, &modules)?;
    let store = concord::store::Store::open(
        &App::store_options(&config),
        concord::events::Events::in_process(),
    )
    .await?;
    let report = concord::policy::check_report(&store, &modules).await;
    store.close().await;
    let report = report?;
    print!("{}", report.text);
    if report.invalid.is_empty() {
        return Ok(());
    }
    for (workspace, e) in &report.invalid {
        eprintln!(
            "concord: policy: {e}; `concord policy clear-override --workspace {workspace}` clears it"
        );
    }
    Err(Reported.into())
}

async fn clear_override(config: Config, workspace: &str) -> anyhow::Result<()> {
    let workspace = workspace
        .parse::<concord::domain::WorkspaceId>()
        .map_err(|_| anyhow::anyhow!("--workspace: not a workspace id: {workspace}"))?;
    // Storage and keys only: neither the policy modules nor the services a start checks.
    let (store, keyring, _) =
        App::open_storage(&config, concord::events::Events::in_process()).await?;
    let auditor = concord::audit::Auditor::new(keyring);
    let cleared =
        concord::policy::clear_override(&store, &auditor, &Actor::system(), workspace).await;
    store.close().await;
    match cleared? {
        Some(version) => println!(
            "cleared the policy override of workspace {workspace} (stored as version {version}); it follows the modules again"
        ),
        None => println!("workspace {workspace} has no policy override; nothing was written"),
    }
    Ok(())
}

async fn workflow_cmd(config: Config, cmd: WorkflowCmd) -> anyhow::Result<()> {
    use concord::workflow::{
        InstanceQuery, NewDeployment, NewForm, ResolveIncident, StartInstance,
    };
    let workspace_of = |w: &str| {
        w.parse::<concord::domain::WorkspaceId>()
            .map_err(|_| anyhow::anyhow!("--workspace: not a workspace id: {w}"))
    };
    let instance_of =
        |i: &str| uuid::Uuid::parse_str(i).map_err(|_| anyhow::anyhow!("not an instance id: {i}"));
    // Everything is checked before the database is opened.
    enum Deployable {
        Model(String),
        Form(NewForm),
        Decision(concord::workflow::NewDecision),
    }
    enum Job {
        Deploy(Vec<Deployable>, Option<String>),
        List,
        Start(String, StartInstance),
        Instances(InstanceQuery),
        Show(uuid::Uuid),
        Incidents,
        Retry(String),
        Cancel(uuid::Uuid),
    }
    let (workspace, job) = match cmd {
        WorkflowCmd::Deploy {
            workspace,
            files,
            note,
        } => {
            let mut sources = Vec::new();
            for file in files {
                let source = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let is_form = file
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json"));
                let ext = file
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase)
                    .unwrap_or_default();
                let is_decision = ext == "dmn"
                    || ext == "csv"
                    || (matches!(ext.as_str(), "yaml" | "yml")
                        && source.lines().any(|l| l.starts_with("decision:")));
                let source = if is_decision {
                    Deployable::Decision(concord::workflow::NewDecision {
                        source,
                        format: None,
                        tests: Vec::new(),
                    })
                } else if is_form {
                    let form: NewForm = serde_json::from_str(&source).with_context(|| {
                        format!(
                            "{} is not a form ({{\"key\": …, \"schema\": {{…}}}})",
                            file.display()
                        )
                    })?;
                    Deployable::Form(form)
                } else {
                    Deployable::Model(source)
                };
                sources.push(source);
            }
            (workspace, Job::Deploy(sources, note))
        }
        WorkflowCmd::List { workspace } => (workspace, Job::List),
        WorkflowCmd::Start {
            workspace,
            process,
            variables,
            version,
        } => {
            let variables = match variables {
                Some(v) => Some(
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&v)
                        .map_err(|e| anyhow::anyhow!("--variables: not a JSON object: {e}"))?,
                ),
                None => None,
            };
            (
                workspace,
                Job::Start(process, StartInstance { variables, version }),
            )
        }
        WorkflowCmd::Instances { workspace, status } => (
            workspace,
            Job::Instances(InstanceQuery {
                status,
                limit: Some(concord::workflow::MAX_PAGE),
                ..InstanceQuery::default()
            }),
        ),
        WorkflowCmd::Show {
            workspace,
            instance,
        } => {
            let id = instance_of(&instance)?;
            (workspace, Job::Show(id))
        }
        WorkflowCmd::Incidents { workspace } => (workspace, Job::Incidents),
        WorkflowCmd::Retry {
            workspace,
            incident,
        } => (workspace, Job::Retry(incident)),
        WorkflowCmd::Cancel {
            workspace,
            instance,
        } => {
            let id = instance_of(&instance)?;
            (workspace, Job::Cancel(id))
        }
        WorkflowCmd::Log {
            workspace,
            processes,
            format,
            from,
            to,
            objects,
            output,
        } => {
            let request = concord::workflow::mining::LogRequest::new(
                Some(&format),
                processes,
                from.as_deref(),
                to.as_deref(),
                objects.as_deref(),
            )
            .map_err(|e| anyhow::anyhow!("--{e}"))?;
            return workflow_log(config, &workspace, request, output).await;
        }
    };
    let ws = workspace_of(&workspace)?;
    let app = App::build(config).await?;
    let actor = Actor::system();
    let service = app.workflows();
    let out = match job {
        Job::Deploy(sources, note) => {
            let mut done = Vec::new();
            let mut failed = None;
            for source in sources {
                let one = match source {
                    Deployable::Model(source) => service
                        .deploy(
                            &actor,
                            ws,
                            NewDeployment {
                                source,
                                format: None,
                                note: note.clone(),
                            },
                        )
                        .await
                        .map(|v| serde_json::to_value(v).unwrap_or_default()),
                    Deployable::Form(form) => service
                        .deploy_form(&actor, ws, form)
                        .await
                        .map(|v| serde_json::to_value(v).unwrap_or_default()),
                    Deployable::Decision(new) => service
                        .deploy_decision(&actor, ws, new)
                        .await
                        .map(|v| serde_json::to_value(v).unwrap_or_default()),
                };
                match one {
                    Ok(v) => done.push(v),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                Some(e) => {
                    for v in &done {
                        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
                    }
                    Err(e)
                }
                None if done.len() == 1 => Ok(done.remove(0)),
                None => Ok(serde_json::Value::Array(done)),
            }
        }
        Job::List => service
            .deployments(&actor, ws)
            .await
            .map(|v| serde_json::to_value(v).unwrap_or_default()),
        Job::Start(process, start) => service
            .start(&actor, ws, process, start)
            .await
            .map(|v| serde_json::to_value(v).unwrap_or_default()),
        Job::Instances(q) => service
            .instances(&actor, ws, q)
            .await
            .map(|v| serde_json::to_value(v).unwrap_or_default()),
        Job::Show(id) => service
            .instance(&actor, ws, id)
            .await
            .map(|v| serde_json::to_value(v).unwrap_or_default()),
        Job::Incidents => service
            .incidents(&actor, ws)
            .await
            .map(|v| serde_json::to_value(v).unwrap_or_default()),
        Job::Retry(incident) => service
            .resolve(
                &actor,
                ws,
                incident,
                ResolveIncident {
                    action: concord::workflow::IncidentAction::Retry,
                    variables: None,
                },
            )
            .await
            .map(|v| serde_json::to_value(v).unwrap_or_default()),
        Job::Cancel(id) => service
            .cancel(&actor, ws, id)
            .await
            .map(|v| serde_json::to_value(v).unwrap_or_default()),
    };
    app.close().await;
    match out {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }
        Err(concord::error::Error::InvalidModel { message, .. }) => bail!("{message}"),
        Err(e) => Err(e.into()),
    }
}

/// `concord workflow log`: the event log, streamed to `output` (written beside it, renamed
/// once complete, removed on failure) or to standard output.
async fn workflow_log(
    config: Config,
    workspace: &str,
    request: concord::workflow::mining::LogRequest,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    use std::io::Write;
    let ws = workspace
        .parse::<concord::domain::WorkspaceId>()
        .map_err(|_| anyhow::anyhow!("--workspace: not a workspace id: {workspace}"))?;
    let partial = output.as_ref().map(|o| {
        let mut name = o.as_os_str().to_owned();
        name.push(".partial");
        PathBuf::from(name)
    });
    let mut sink: Box<dyn Write> = match &partial {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p)
                .with_context(|| format!("--output: cannot write {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let app = App::build(config).await?;
    let written = async {
        let mut export = match app
            .workflows()
            .export_log(&Actor::system(), ws, request)
            .await
        {
            Ok(e) => e,
            Err(concord::error::Error::NotFound(_)) => {
                bail!("--process: not deployed in workspace {workspace}")
            }
            Err(e) => return Err(e.into()),
        };
        let mut bytes = 0usize;
        while let Some(chunk) = export.chunks.next().await {
            let chunk = chunk?;
            bytes += chunk.len();
            sink.write_all(chunk.as_bytes())
                .context("cannot write the log")?;
        }
        sink.flush().context("cannot write the log")?;
        Ok((export.instances, bytes))
    }
    .await;
    app.close().await;
    drop(sink);
    match (written, &partial, &output) {
        (Ok((instances, bytes)), Some(p), Some(o)) => {
            std::fs::rename(p, o)
                .with_context(|| format!("--output: cannot write {}", o.display()))?;
            eprintln!(
                "wrote {} ({instances} instances, {bytes} bytes)",
                o.display()
            );
            Ok(())
        }
        (Ok(_), _, _) => Ok(()),
        (Err(e), p, _) => {
            if let Some(p) = p {
                let _ = std::fs::remove_file(p);
            }
            Err(e)
        }
    }
}

/// `concord routing evaluate` and `concord routing train`.
async fn routing_cmd(config: Config, cmd: RoutingCmd) -> anyhow::Result<()> {
    let (workspace, process, task, limit, generated, fortunes, threshold, seed, json) = match cmd {
        RoutingCmd::Train { workspace, process } => {
            let ws = workspace
                .parse::<concord::domain::WorkspaceId>()
                .map_err(|_| anyhow::anyhow!("--workspace: not a workspace id: {workspace}"))?;
            let app = App::build(config).await?;
            let trained = app
                .workflows()
                .train_router(&Actor::system(), ws, &process)
                .await;
            app.close().await;
            let trained = trained?;
            println!(
                "Trained router v{} of process {} on {} tasks ({} people).",
                trained.version, trained.process_id, trained.examples, trained.labels
            );
            return Ok(());
        }
        RoutingCmd::Evaluate {
            workspace,
            process,
            task,
            limit,
            generated,
            fortunes,
            threshold,
            seed,
            json,
        } => (
            workspace, process, task, limit, generated, fortunes, threshold, seed, json,
        ),
    };
    if !(0.0..=1.0).contains(&threshold) {
        bail!("--threshold: a confidence from 0 to 1, not {threshold}");
    }
    let examples = match (generated, fortunes, workspace, process) {
        (Some(n), _, _, _) => {
            let n = usize::try_from(n).context("--generated: too many")?;
            concord_routing::examples_from_history(&concord_routing::generate(n, seed))
        }
        (None, Some(dir), _, _) => {
            let mut files = Vec::new();
            let entries = std::fs::read_dir(&dir)
                .with_context(|| format!("--fortunes: cannot read {}", dir.display()))?;
            for entry in entries {
                let path = entry?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                // `art.dat` and `art.u8` are indexes and links of the collection `art`.
                if name.contains('.') || !path.is_file() {
                    continue;
                }
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                files.push((
                    name.to_owned(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
            files.sort();
            if files.is_empty() {
                bail!("--fortunes: {} holds no fortune files", dir.display());
            }
            concord_routing::read_fortunes(&files)
        }
        (None, None, Some(workspace), Some(process)) => {
            let ws = workspace
                .parse::<concord::domain::WorkspaceId>()
                .map_err(|_| anyhow::anyhow!("--workspace: not a workspace id: {workspace}"))?;
            let app = App::build(config).await?;
            let outcomes = app
                .workflows()
                .task_outcomes(&Actor::system(), ws, &process, task.as_deref(), limit)
                .await;
            app.close().await;
            let outcomes = outcomes?;
            if outcomes.is_empty() {
                bail!("process {process:?} has no completed tasks in this workspace to learn from");
            }
            concord_routing::examples_from_history(&outcomes)
        }
        _ => bail!(
            "say what to learn from: --workspace and --process, --generated N, or --fortunes DIR"
        ),
    };
    let options = concord_routing::EvalOptions {
        seed,
        threshold,
        ..concord_routing::EvalOptions::default()
    };
    let started = std::time::Instant::now();
    let evaluation = concord_routing::evaluate(&examples, &options)
        .map_err(|e| anyhow::anyhow!("cannot evaluate: {e}"))?;
    let took = started.elapsed();
    if json {
        println!("{}", serde_json::to_string_pretty(&evaluation)?);
    } else {
        println!("{}", evaluation.to_markdown());
        println!(
            "\nTrained and evaluated in {:.1} s ({} examples).",
            took.as_secs_f64(),
            examples.len()
        );
    }
    Ok(())
}

/// `concord decide`: a table file, decided on or tested locally.
fn decide_cmd(
    file: &std::path::Path,
    input: Option<&std::path::Path>,
    decision: Option<&str>,
    test: bool,
    json: bool,
) -> anyhow::Result<()> {
    use concord_workflow::decision::{self, DecisionFormat};
    let source =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let format = match file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("dmn") | Some("xml") => DecisionFormat::Dmn,
        Some("csv") => DecisionFormat::Csv,
        Some("yaml") | Some("yml") => DecisionFormat::Yaml,
        _ => DecisionFormat::guess(&source),
    };
    let tables = decision::parse(&source, format)
        .map_err(|p| anyhow::anyhow!("{}: {}", file.display(), p))?;
    let table = match decision {
        Some(id) => tables
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| anyhow::anyhow!("{} has no decision {id:?}", file.display()))?,
        None if tables.len() == 1 => &tables[0],
        None => bail!(
            "{} holds several decisions ({}): name one with --decision",
            file.display(),
            tables
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let compiled = table
        .compile()
        .map_err(|p| anyhow::anyhow!("{}: {}", file.display(), p))?;
    if test {
        let failures = compiled.run_tests();
        let total = table.tests.len();
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "decision": table.id, "tests": total, "failures": failures,
                }))?
            );
        } else {
            for f in &failures {
                println!(
                    "FAIL test case {}{}: expected {}, got {}",
                    f.case,
                    f.name
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default(),
                    f.expected,
                    f.got
                );
            }
            println!(
                "{}: {} of {total} test cases passed",
                table.id,
                total - failures.len()
            );
        }
        if failures.is_empty() {
            return Ok(());
        }
        bail!("{} of {total} test cases failed", failures.len());
    }
    let Some(input) = input else {
        bail!("--input: give the variables to decide on (a JSON file, or - for standard input)");
    };
    let text = if input == std::path::Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("cannot read standard input")?;
        s
    } else {
        std::fs::read_to_string(input)
            .with_context(|| format!("cannot read {}", input.display()))?
    };
    let variables: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("--input: not a JSON object: {e}"))?;
    let evaluation = compiled
        .evaluate(&variables)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&evaluation)?);
    } else {
        for line in evaluation.explain() {
            println!("{line}");
        }
    }
    Ok(())
}

async fn ediscovery_cmd(config: Config, cmd: EdiscoveryCmd) -> anyhow::Result<()> {
    use concord::ediscovery::{criteria, Format};
    match cmd {
        EdiscoveryCmd::Export {
            workspace,
            from,
            to,
            custodians,
            channels,
            query,
            format,
            out,
        } => {
            let workspace = workspace
                .parse::<concord::domain::WorkspaceId>()
                .map_err(|_| anyhow::anyhow!("--workspace: not a workspace id: {workspace}"))?;
            let parse_ids = |flag: &str, ids: &[String]| -> anyhow::Result<Vec<uuid::Uuid>> {
                ids.iter()
                    .map(|i| {
                        uuid::Uuid::parse_str(i)
                            .map_err(|_| anyhow::anyhow!("--{flag}: not an id: {i}"))
                    })
                    .collect()
            };
            let custodians = parse_ids("custodian", &custodians)?
                .into_iter()
                .map(concord::domain::UserId)
                .collect();
            let channels = parse_ids("channel", &channels)?
                .into_iter()
                .map(concord::domain::ChannelId)
                .collect();
            let format = Format::parse(&format).map_err(|e| anyhow::anyhow!("--{e}"))?;
            let c = criteria::check(
                workspace,
                custodians,
                channels,
                from.as_deref(),
                to.as_deref(),
                query.as_deref(),
                None,
            )
            .map_err(|e| anyhow::anyhow!("--{e}"))?;
            let name = out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let app = App::build(config).await?;
            let export = app
                .ediscovery()
                .export_criteria(&Actor::system(), &c, format, name, false)
                .await;
            app.close().await;
            let export = match export {
                Ok(e) => e,
                Err(concord::error::Error::NotFound(_)) => {
                    bail!("--workspace: no such workspace: {workspace}")
                }
                Err(e) => return Err(e.into()),
            };
            std::fs::write(&out, &export.bytes)
                .with_context(|| format!("--out: cannot write {}", out.display()))?;
            println!(
                "{}",
                serde_json::json!({
                    "path": out,
                    "bytes": export.bytes.len(),
                    "messages": export.counts[0],
                    "files": export.counts[1],
                    "document_versions": export.counts[2],
                })
            );
            Ok(())
        }
        EdiscoveryCmd::Daily { day } => {
            let day = match day {
                Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .map_err(|_| anyhow::anyhow!("--day: not a day (YYYY-MM-DD): {d}"))?,
                None => chrono::Utc::now().date_naive() - chrono::TimeDelta::days(1),
            };
            if let Err(e) = concord::ediscovery::check_past(day, chrono::Utc::now()) {
                bail!("--day: {e}");
            }
            if config.ediscovery.daily_export.directory.is_none() {
                bail!("ediscovery.daily_export.directory is not set");
            }
            let app = App::build(config).await?;
            let report = app
                .ediscovery()
                .export_day(day, &tokio_util::sync::CancellationToken::new())
                .await;
            app.close().await;
            let report = match report {
                Ok(r) => r,
                Err(e @ concord::error::Error::Refused { .. }) => bail!("--day: {e}"),
                Err(e) => return Err(e.into()),
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.failures.is_empty() {
                return Ok(());
            }
            for (workspace, error) in &report.failures {
                eprintln!("concord: ediscovery: workspace {workspace}: {error}");
            }
            Err(Reported.into())
        }
    }
}

async fn retention_run(
    config: Config,
    workspace: Option<&str>,
    now: Option<&str>,
) -> anyhow::Result<()> {
    let only = match workspace {
        Some(w) => Some(
            w.parse::<concord::domain::WorkspaceId>()
                .map_err(|_| anyhow::anyhow!("--workspace: not a workspace id: {w}"))?,
        ),
        None => None,
    };
    let now = match now {
        Some(t) => {
            if !config.retention.allow_explicit_now {
                bail!("--now: this deployment does not let a run name its time (retention.allow_explicit_now)");
            }
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|_| anyhow::anyhow!("--now: not an RFC 3339 time: {t}"))?
                .with_timezone(&chrono::Utc)
        }
        None => chrono::Utc::now(),
    };
    let app = App::build(config).await?;
    let report = app.retention_pass(now, only).await;
    app.close().await;
    let report = match report {
        Ok(r) => r,
        Err(concord::error::Error::NotFound(_)) => {
            bail!(
                "--workspace: no such workspace: {}",
                workspace.unwrap_or_default()
            )
        }
        Err(e) => return Err(e.into()),
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    if report.failures.is_empty() {
        return Ok(());
    }
    for failure in &report.failures {
        match failure.workspace_id {
            Some(w) => eprintln!("concord: retention: workspace {w}: {}", failure.error),
            None => eprintln!("concord: retention: deployment: {}", failure.error),
        }
    }
    Err(Reported.into())
}

async fn reindex(app: &App, only: Option<concord::domain::WorkspaceId>) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let rebuilt = app
        .search()
        .rebuild_all(only, |workspace, done, total| {
            let width = 30usize;
            let filled = if total == 0 {
                width
            } else {
                (done as usize * width / total as usize).min(width)
            };
            eprint!(
                "\r{workspace} [{}{}] {done}/{total} messages",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
        })
        .await?;
    eprintln!();
    app.search().close().await;
    println!(
        "rebuilt {} workspace index(es): {} messages, {} documents, {} files in {:.1}s",
        rebuilt.workspaces,
        rebuilt.messages,
        rebuilt.documents,
        rebuilt.files,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    concord::telemetry::init_logging(&config.log);
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let bound = listener.local_addr()?;
    let mode = config.mode;
    let web_root = config.web_root();
    let app = App::build(config).await?;
    if let Some(path) = app.generated_kek() {
        eprintln!();
        eprintln!(
            "  WARNING: development mode generated a new key-encryption key at {}",
            path.display()
        );
        eprintln!("  WARNING: every stored secret and personal datum depends on it: back it up, keep it secret.");
        eprintln!("  WARNING: without it the data cannot be decrypted; production mode (--production) requires a key you provide.");
        eprintln!();
    }
    if let Some(path) = app.generated_signing_key() {
        eprintln!();
        eprintln!(
            "  WARNING: development mode generated a new signing key at {}",
            path.display()
        );
        eprintln!("  WARNING: keep it secret and backed up; production mode (--production) requires keys you provide.");
        eprintln!();
    } else if mode == Mode::Development {
        tracing::warn!("running in development mode; use --production for real data");
    }
    if let Some(url) = app.setup_url(bound).await? {
        println!();
        println!(
            "No accounts exist yet. Create the first administrator (link valid 24 hours, once):"
        );
        println!("  {url}");
        println!("or with curl:");
        let token = url
            .rsplit_once("token=")
            .map(|(_, t)| t)
            .unwrap_or_default();
        println!(
            "  curl -X POST http://{bound}/api/v1/setup -H 'content-type: application/json' \\\n    -d '{{\"token\":\"{token}\",\"email\":\"admin@example.org\",\"display_name\":\"Admin\",\"password\":\"choose a long passphrase\"}}'"
        );
        println!();
    }
    match web_root {
        Some(root) => tracing::info!(root = %root.display(), "serving the web client"),
        None => eprintln!(
            "The web client is not built, so / shows a landing page: run `npm ci && npm run build` in client-web."
        ),
    }
    // Printed last: scripts wait for this line, knowing the setup link (if any) came first.
    println!("Concord is listening on http://{bound}");
    app.serve(listener, concord::startup::shutdown_signal())
        .await?;
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("CONCORD_ADMIN_PASSWORD") {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (at least 12 characters): ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password given: pipe it on stdin or set CONCORD_ADMIN_PASSWORD");
    }
    Ok(password)
}

async fn administer(app: &App, admin: Admin) -> anyhow::Result<()> {
    let system = Actor::system();
    match admin {
        Admin::CreateUser {
            email,
            name,
            admin,
            role,
        } => {
            let email = Email::parse("--email", &email)?;
            let display_name = DisplayName::parse("--name", &name)?;
            let password = Password::parse_new("password", read_password()?)?;
            let system_role = if admin {
                Some("system_admin".to_owned())
            } else {
                role
            };
            let account = NewAccount {
                email,
                display_name,
                password,
                system_role,
            };
            let user = app.accounts().create_user(&system, account).await?;
            println!(
                "created {} ({}){}",
                user.email,
                user.id,
                user.system_role
                    .map(|r| format!(" as {r}"))
                    .unwrap_or_default()
            );
        }
        Admin::SetRole { email, role } => {
            let email = Email::parse("--email", &email)?;
            let user = app.accounts().find_by_email(&system, &email).await?;
            let role = (role != "none").then_some(role);
            let user = app
                .accounts()
                .set_system_role(&system, user.id, role.as_deref())
                .await?;
            println!(
                "{} now has system role {}",
                user.email,
                user.system_role.as_deref().unwrap_or("none")
            );
        }
        Admin::ListUsers => {
            let mut after = None;
            println!(
                "{:<36}  {:<32}  {:<20}  {:<8}  role",
                "id", "email", "name", "status"
            );
            loop {
                let page = app.accounts().list_users(&system, after, 500).await?;
                for u in &page {
                    println!(
                        "{:<36}  {:<32}  {:<20}  {:<8}  {}",
                        u.id,
                        u.email,
                        u.display_name,
                        u.status,
                        u.system_role.as_deref().unwrap_or("-")
                    );
                }
                match page.last() {
                    Some(last) if page.len() == 500 => after = Some(last.id),
                    _ => break,
                }
            }
        }
        Admin::RevokeSessions { email } => {
            let email = Email::parse("--email", &email)?;
            let user = app.accounts().find_by_email(&system, &email).await?;
            let n = app
                .auth()
                .revoke_all(&system, user.id, "revoked_by_admin")
                .await?;
            println!("revoked {n} session(s) of {}", user.email);
        }
    }
    Ok(())
}

fn verify_offline(
    file: &std::path::Path,
    public_key: &std::path::Path,
    witness: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let keys = std::fs::read_to_string(public_key)
        .with_context(|| format!("cannot read {}", public_key.display()))?;
    let keys = concord::audit::export::parse_public_keys(&keys).map_err(anyhow::Error::msg)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let heads = match witness {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the witness {}", path.display()))?;
            concord::audit::witness::parse_heads(&text).map_err(anyhow::Error::msg)?
        }
        None => Vec::new(),
    };
    let verified = concord::audit::export::verify_export_witnessed(&text, &keys, heads)?;
    println!(
        "export verified: {} entries up to sequence {}, {} signed checkpoint(s), sealed at {}",
        verified.entries, verified.last_seq, verified.checkpoints, verified.last_checkpoint
    );
    if let Some(path) = witness {
        println!(
            "witness {}: the export holds all {} recorded head(s) in its range",
            path.display(),
            verified.witnessed
        );
    }
    Ok(())
}

async fn audit_cmd(
    app: &App,
    cmd: AuditCmd,
    live: concord::audit::verification::LiveChecks,
) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Verify { witness, .. } => {
            let witness = witness.or(live.witness.clone());
            let result = concord::audit::verification::verify_now(
                app.store(),
                app.policies().deployment()?.retention.audit_days.days(),
                &live,
                witness.as_deref(),
            )
            .await?;
            concord::audit::Auditor::new(app.keyring().clone())
                .record_alone(
                    app.store(),
                    concord::audit::verification::event(&Actor::system(), &result),
                )
                .await?;
            let verified = result?;
            println!(
                "audit log verified: {} entries up to sequence {}, {} signed checkpoint(s), last at {}",
                verified.entries, verified.last_seq, verified.checkpoints, verified.last_checkpoint
            );
            let cuts = {
                let mut reader = app.store().reader().await?;
                concord::store::audit_cuts::all(&mut reader.conn()).await?
            };
            if let Some(cut) = cuts.last() {
                println!(
                    "cut by retention: starts after the signed checkpoint at {} (cut {}, audit_days {}; {} cut(s) recorded)",
                    cut.upto_seq,
                    cut.cut_at,
                    cut.audit_days,
                    cuts.len()
                );
            }
            println!(
                "unsigned tail: {} entries after the last checkpoint (bound: {} entries, {} s)",
                verified.unsigned_tail, live.bound.max_entries, live.bound.max_age_seconds
            );
            if let Some(path) = &witness {
                println!(
                    "witness {}: the log holds all {} recorded head(s)",
                    path.display(),
                    verified.witnessed
                );
                if verified.witnessed_before_cut > 0 {
                    println!(
                        "witness {}: {} recorded head(s) at or before the cut by retention, not checked against entries (removed)",
                        path.display(),
                        verified.witnessed_before_cut
                    );
                }
            }
        }
        AuditCmd::PublicKey => {
            let mut reader = app.store().reader().await?;
            let keys = concord::crypto::Keyring::signing_keys(&mut reader.conn()).await?;
            println!("# Concord audit checkpoint verification keys (Ed25519), oldest first.");
            println!("# Use with: concord audit verify --file export.jsonl --public-key THIS_FILE");
            for k in keys {
                println!(
                    "{}",
                    concord::audit::export::public_key_line(
                        k.version,
                        &k.public_key,
                        &k.created_at.to_rfc3339()
                    )
                );
            }
        }
    }
    Ok(())
}

/// Shows a rotation's progress: rewritten in place on a terminal, otherwise a line at most
/// once a second (and the last one).
struct ProgressLine {
    terminal: bool,
    last: Option<(std::time::Instant, String)>,
}

impl ProgressLine {
    fn new() -> ProgressLine {
        ProgressLine {
            terminal: std::io::stdout().is_terminal(),
            last: None,
        }
    }

    fn show(&mut self, view: &concord::keys::RotationView) {
        use std::io::Write;
        let line = format!("re-encryption {}: {}", view.id, view.progress_line());
        let finished = view.finished_at.is_some();
        if self.last.as_ref().is_some_and(|(_, l)| *l == line) {
            return;
        }
        if self.terminal {
            print!("\r{line}");
            if finished {
                println!();
            }
            let _ = std::io::stdout().flush();
        } else if finished
            || self
                .last
                .as_ref()
                .is_none_or(|(t, _)| t.elapsed() >= std::time::Duration::from_secs(1))
        {
            println!("{line}");
        } else {
            return;
        }
        self.last = Some((std::time::Instant::now(), line));
    }
}

/// Follows the newest unfinished rotation: shows a server's progress (with `wait`), or runs
/// the job here when no process has claimed it within a few poll intervals.
async fn follow_rotation(app: &App, id: String, wait: bool) -> anyhow::Result<()> {
    let poll = app.reencryptor().poll_interval();
    let claim_wait = poll * 2 + std::time::Duration::from_secs(1);
    let mut line = ProgressLine::new();
    let mut pending_since = std::time::Instant::now();
    loop {
        let view = {
            let mut reader = app.store().reader().await?;
            concord::keys::rotation_view(&mut reader.conn(), &id)
                .await?
                .with_context(|| format!("no rotation {id}"))?
        };
        match view.state.as_str() {
            "finished" => {
                line.show(&view);
                let changed: i64 = view.targets.iter().map(|t| t.reencrypted).sum();
                println!("re-encryption finished: {changed} row(s) re-encrypted");
                return Ok(());
            }
            "running" => {
                if !wait {
                    println!(
                        "a running Concord is re-encrypting in the background ({}); follow it with `concord keys status` or `concord keys rotate-dek --resume --wait`",
                        view.progress_line()
                    );
                    return Ok(());
                }
                line.show(&view);
                pending_since = std::time::Instant::now();
            }
            _ if pending_since.elapsed() >= claim_wait => {
                println!("no running server took the job up; re-encrypting here");
                let stop = tokio_util::sync::CancellationToken::new();
                let on_interrupt = stop.clone();
                let interrupt = tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        on_interrupt.cancel();
                    }
                });
                let mut show = |v: &concord::keys::RotationView| line.show(v);
                let result = app.reencryptor().run_pending(&stop, &mut show).await;
                interrupt.abort();
                result?;
                if stop.is_cancelled() {
                    bail!("interrupted; run `concord keys rotate-dek --resume` to go on where it stopped");
                }
                pending_since = std::time::Instant::now();
            }
            _ => {}
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn keys_cmd(config: Config, cmd: KeysCmd) -> anyhow::Result<()> {
    use concord::audit::{Auditor, Event, Outcome};
    use concord::crypto::{kek, KeyProvider, Keyring};
    use concord::store::Tx;
    let app = App::build(config.clone()).await?;
    let store = app.store().clone();
    let keyring = app.keyring().clone();
    let auditor = Auditor::new(keyring.clone());
    let system = Actor::system();
    let result: anyhow::Result<()> = async {
        match cmd {
            KeysCmd::Status => {
                let mut reader = store.reader().await?;
                println!("key-encryption key in use: {}", keyring.kek_id());
                println!(
                    "{:<50}  {:>7}  {:<16}  {:>12}  {:<8}",
                    "scope", "version", "kek", "encryptions", "state"
                );
                for k in Keyring::status(&mut reader.conn()).await? {
                    println!(
                        "{:<50}  {:>7}  {:<16}  {:>12}  {:<8}",
                        k.scope,
                        k.version,
                        k.kek_id,
                        k.encryptions,
                        if k.retired { "retired" } else { "current" }
                    );
                }
                drop(reader);
                let status = app.keys().status(&system).await?;
                for k in &status.audit_signing_keys {
                    println!(
                        "audit signing key version {} since {}: {}",
                        k.version,
                        k.created_at.to_rfc3339(),
                        k.public_key
                    );
                }
                for r in &status.rotations {
                    println!(
                        "data-key rotation {} ({} by {}, {} scope(s)): {}: {}",
                        r.id,
                        r.requested_at.to_rfc3339(),
                        r.requested_by,
                        r.scopes,
                        r.state,
                        r.progress_line()
                    );
                }
            }
            KeysCmd::RotateKek { new_kek_file } => {
                let old = kek::provider(&config).load()?;
                let current_file = config.kek_file();
                let (new, next_path) = match &new_kek_file {
                    Some(path) => (
                        concord::crypto::FileKeyProvider { path: path.clone() }.load()?,
                        path.clone(),
                    ),
                    None => {
                        let path = current_file.with_extension("next");
                        let new = kek::Kek::generate();
                        kek::write_key_file(&path, &new)?;
                        (new, path)
                    }
                };
                let (old_id, new_id) = (old.id().to_owned(), new.id().to_owned());
                let event = Event::by(&system, "keys.rotate_kek", Outcome::Allowed)
                    .target("kek", &new_id)
                    .details(serde_json::json!({ "from": old_id, "to": new_id }));
                let a = auditor.clone();
                let count = store
                    .write(move |tx: &mut Tx| {
                        Box::pin(async move {
                            a.record(tx, event).await?;
                            Keyring::rewrap_all(tx, &old, &new)
                                .await
                                .map_err(concord::error::Error::from)
                        })
                    })
                    .await?;
                println!("rewrapped {count} data key(s) from KEK {old_id} to KEK {new_id}");
                if config.keys.kek.is_none() && new_kek_file.is_none() {
                    let retired = current_file.with_extension(format!("retired-{old_id}"));
                    std::fs::rename(&current_file, &retired)?;
                    std::fs::rename(&next_path, &current_file)?;
                    println!(
                        "the new KEK is now {}; the old one was kept as {} (delete it once backups no longer need it)",
                        current_file.display(),
                        retired.display()
                    );
                } else {
                    println!(
                        "configure the new KEK from {} (keys.kek_file or CONCORD_KEYS__KEK) before the next start",
                        next_path.display()
                    );
                }
            }
            KeysCmd::RotateDek { resume, wait } => {
                let id = if resume {
                    let mut reader = store.reader().await?;
                    // The newest rotation: resuming it covers every older one, and a finished
                    // one is simply shown as finished.
                    let newest = concord::keys::rotation_views(&mut reader.conn(), 1).await?;
                    match newest.into_iter().next() {
                        Some(r) => r.id,
                        None => {
                            println!("no data-key rotation to resume");
                            return Ok(());
                        }
                    }
                } else {
                    let rotation = app.keys().rotate_dek(&system).await?;
                    println!(
                        "started new key versions for {} scope(s); new writes use them (rotation {})",
                        rotation.scopes, rotation.id
                    );
                    rotation.id
                };
                follow_rotation(&app, id, wait).await?;
            }
            KeysCmd::RotateAuditKey => {
                let (old, new) = app.keys().rotate_audit_key(&system).await?;
                println!(
                    "audit checkpoints are now signed by key version {} (was {old}); public key {}",
                    new.version, new.public_key
                );
                println!("give auditors the updated history: concord audit public-key > audit.pub");
            }
        }
        Ok(())
    }
    .await;
    app.close().await;
    result
}

async fn events_cmd(config: Config, cmd: EventsCmd) -> anyhow::Result<()> {
    concord::telemetry::init_logging(&config.log);
    // Only storage: events are stored without encrypted content, so no keys are needed.
    let store =
        concord::store::Store::open(&App::store_options(&config), Default::default()).await?;
    let result = match cmd {
        EventsCmd::Tail {
            consumer,
            from_start,
            follow,
            batch,
            poll_ms,
        } => tail_events(&store, &consumer, from_start, follow, batch, poll_ms).await,
        EventsCmd::Consumers => {
            let (consumers, head) = concord::outbox::consumers(&store).await?;
            println!("newest event: {head}");
            println!(
                "{:<32}  {:>12}  {:>10}  updated",
                "consumer", "cursor", "behind"
            );
            for c in consumers {
                println!(
                    "{:<32}  {:>12}  {:>10}  {}",
                    c.name,
                    c.cursor,
                    (head - c.cursor).max(0),
                    c.updated_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
            Ok(())
        }
        EventsCmd::Remove { consumer } => {
            if concord::outbox::remove(&store, &consumer).await? {
                println!("removed consumer {consumer}");
                Ok(())
            } else {
                Err(anyhow::anyhow!("no consumer named {consumer:?}"))
            }
        }
    };
    store.close().await;
    result
}

/// Prints events one JSON object a line, flushing and then acknowledging each batch.
async fn tail_events(
    store: &concord::store::Store,
    name: &str,
    from_start: bool,
    follow: bool,
    batch: usize,
    poll_ms: u64,
) -> anyhow::Result<()> {
    use concord::outbox::{Consumer, Start};
    use std::io::Write;
    let start = if from_start {
        Start::Oldest
    } else {
        Start::Latest
    };
    let mut consumer = Consumer::open(store, name, start)
        .await?
        .with_poll_interval(std::time::Duration::from_millis(poll_ms));
    let stop = concord::startup::shutdown_signal();
    tokio::pin!(stop);
    loop {
        if futures::poll!(&mut stop).is_ready() {
            return Ok(());
        }
        let read = consumer.next_batch(batch).await?;
        if read.missed > 0 {
            eprintln!(
                "concord: {} event(s) after cursor of {name} were pruned before it read them",
                read.missed
            );
        }
        let Some(last) = read.last_id() else {
            if !follow {
                return Ok(());
            }
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = consumer.wait() => continue,
            }
        };
        let mut out = std::io::stdout().lock();
        for event in &read.events {
            let payload: serde_json::Value =
                serde_json::from_str(&event.payload).unwrap_or(serde_json::Value::Null);
            let line = serde_json::json!({
                "id": event.id,
                "event_id": event.event_id,
                "kind": event.kind,
                "workspace_id": event.workspace_id,
                "committed_at": event.committed_at,
                "event": payload,
            });
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        drop(out);
        consumer.ack(last).await?;
    }
}
