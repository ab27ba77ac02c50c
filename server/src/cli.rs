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
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
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
        Command::Migrate => {
            concord::telemetry::init_logging(&config.log);
            let store = concord::store::Store::connect(
                &App::store_options(&config),
                concord::events::EventBus::new(),
            )
            .await?;
            store.migrate().await?;
            store.close().await;
            println!("migrations applied ({:?})", store.backend());
            Ok(())
        }
        Command::Admin(admin) => {
            let app = App::build(config).await?;
            let result = administer(&app, admin).await;
            app.close().await;
            result
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    concord::telemetry::init_logging(&config.log);
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let bound = listener.local_addr()?;
    let mode = config.mode;
    let app = App::build(config).await?;
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
    println!("Concord is listening on http://{bound}");
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
