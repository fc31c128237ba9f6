//! tesoro: the command line of a strategic Bitcoin reserve's watch-only ledger.
//!
//! Thin by design: parse arguments, open the store, call the library, print.

mod cmd;
mod config;
mod output;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Watch-only ledger, statements and planning for a state's strategic Bitcoin reserve.
#[derive(Debug, Parser)]
#[command(name = "tesoro", version, about, long_about = None)]
pub struct Cli {
    /// Config file (default: ./tesoro.toml).
    #[arg(long, global = true, env = "TESORO_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database URL, overriding the config: sqlite://FILE or postgres://USER:PW@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "TESORO_DB",
        value_name = "URL",
        hide_env_values = true
    )]
    db: Option<String>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The demo: two states' reserves on a generated chain, synced, valued, served.
    Demo(cmd::demo::DemoArgs),
    /// Create a database (SQLite file by default) and tesoro.toml.
    Init(cmd::init::InitArgs),
    /// Entities: a state and its agencies.
    #[command(subcommand)]
    Entity(cmd::entity::EntityCmd),
    /// Watch-only wallets: descriptors or published addresses.
    #[command(subcommand)]
    Wallet(cmd::wallet::WalletCmd),
    /// Bring the chain index up to a source's tip (resumable; handles reorgs).
    Sync(cmd::sync::SyncArgs),
    /// Holdings at the tip or at a past height or date, per entity, wallet or address.
    Balance(cmd::holdings::BalanceArgs),
    /// Unspent outputs of the reserve.
    Utxos(cmd::holdings::UtxosArgs),
    /// Transactions touching the reserve.
    History(cmd::holdings::HistoryArgs),
    /// Check the office's rules (stored, or --rules FILE); exits non-zero when one is broken.
    Check(cmd::check::CheckArgs),
    /// The office's rules, stored in the database.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCmd),
    /// Deliver rule violations to a webhook, once each, on every new block.
    #[command(subcommand)]
    Alerts(cmd::alerts::AlertsCmd),
    /// Partner offices whose signed bundles are accepted.
    #[command(subcommand)]
    Partner(cmd::partner::PartnerCmd),
    /// Signed bundles of statements and plans exchanged with partners.
    #[command(subcommand)]
    Bundle(cmd::bundle::BundleCmd),
    /// The office's Ed25519 signing key for statements.
    #[command(subcommand)]
    Key(cmd::key::KeyCmd),
    /// Signed statements of holdings at a block, and their independent verification.
    #[command(subcommand)]
    Statement(cmd::statement::StatementCmd),
    /// Proofs of control for a statement's block: the challenge, BIP-322 signatures and
    /// BIP-127 PSBTs the office's signers return.
    #[command(subcommand)]
    Proof(cmd::proof::ProofCmd),
    /// Mining and accumulation plans: backtests and projections.
    Plan(cmd::plan::PlanCmd),
    /// Daily BTC prices (Coin Metrics or generic CSV).
    #[command(subcommand)]
    Prices(cmd::prices::PricesCmd),
    /// Daily FX rates.
    #[command(subcommand)]
    Fx(cmd::prices::FxCmd),
    /// Off-chain records: purchases, seizure orders, custodial holdings.
    #[command(subcommand)]
    Records(cmd::records::RecordsCmd),
    /// Every movement of the reserve, classified; manual classification; rules.
    Movements(cmd::movements::MovementsArgs),
    /// Reports: holdings valued, gains per cost-basis method, the accumulation test.
    #[command(subcommand)]
    Report(cmd::report::ReportCmd),
    /// Serve the JSON API and the portal (optionally following a chain source).
    Serve(cmd::serve::ServeArgs),
    /// The server's users and their grants.
    #[command(subcommand)]
    User(cmd::user::UserCmd),
    /// API tokens for scripts.
    #[command(subcommand)]
    Token(cmd::user::TokenCmd),
    /// The audit log: verify its hash chain, list changes.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCmd),
}

/// Global options every command may need.
#[derive(Debug, Clone)]
pub struct Globals {
    /// Config path.
    pub config: PathBuf,
    /// `--db` / `TESORO_DB`.
    pub db: Option<String>,
}

impl Globals {
    /// Opens the database the options point at.
    pub async fn open_store(&self) -> anyhow::Result<tesoro_store::Store> {
        let resolved = config::resolve(self.db.as_deref(), &self.config)?;
        Ok(tesoro_store::Store::open(&resolved.url).await?)
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Commands that print a result and end: for these a closed stdout (`tesoro … --json | head`)
/// should stop the program quietly, as it does other Unix tools, instead of `println!`
/// panicking on EPIPE. Long-running commands that hold sockets (serve, demo, sync, alerts)
/// keep Rust's default of ignoring SIGPIPE.
fn prints_and_exits(command: &Command) -> bool {
    !matches!(
        command,
        Command::Serve(_) | Command::Demo(_) | Command::Sync(_) | Command::Alerts(_)
    )
}

#[cfg(unix)]
fn restore_default_sigpipe() {
    // SAFETY: `signal` only resets this process's disposition for SIGPIPE to the default
    // action. No Rust handler is installed, so no Rust code can be interrupted mid-way; it
    // runs before the runtime starts any thread, and the arguments are libc's own constants.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_default_sigpipe() {}

fn main() -> ExitCode {
    // Refuse private key material before clap sees it: clap echoes unexpected arguments in
    // its errors, and a secret must never be printed back.
    let args: Vec<String> = match std::env::args_os()
        .map(|a| a.into_string())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(a) => a,
        Err(_) => {
            eprintln!("error: an argument is not valid UTF-8");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = tesoro_core::secret::refuse_secret_in_args(args.iter().skip(1)) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse_from(&args);
    if prints_and_exits(&cli.command) {
        restore_default_sigpipe();
    }
    init_logging(cli.verbose);
    let globals = Globals {
        config: cli
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG)),
        db: cli.db.clone(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(a) => cmd::demo::run(a, &globals).await,
            Command::Init(a) => cmd::init::run(a, &globals).await,
            Command::Entity(c) => cmd::entity::run(c, &globals).await,
            Command::Wallet(c) => cmd::wallet::run(c, &globals).await,
            Command::Sync(a) => cmd::sync::run(a, &globals).await,
            Command::Balance(a) => cmd::holdings::balance(a, &globals).await,
            Command::Utxos(a) => cmd::holdings::utxos(a, &globals).await,
            Command::History(a) => cmd::holdings::history(a, &globals).await,
            Command::Check(a) => cmd::check::run(a, &globals).await,
            Command::Policy(c) => cmd::policy::run(c, &globals).await,
            Command::Alerts(c) => cmd::alerts::run(c, &globals).await,
            Command::Partner(c) => cmd::partner::run(c, &globals).await,
            Command::Bundle(c) => cmd::bundle::run(c, &globals).await,
            Command::Key(c) => cmd::key::run(c),
            Command::Statement(c) => cmd::statement::run(c, &globals).await,
            Command::Proof(c) => cmd::proof::run(c, &globals).await,
            Command::Plan(c) => cmd::plan::run(c),
            Command::Prices(c) => cmd::prices::run(c, &globals).await,
            Command::Fx(c) => cmd::prices::run_fx(c, &globals).await,
            Command::Records(c) => cmd::records::run(c, &globals).await,
            Command::Movements(a) => cmd::movements::run(a, &globals).await,
            Command::Report(c) => cmd::report::run(c, &globals).await,
            Command::Serve(a) => cmd::serve::run(a, &globals).await,
            Command::User(c) => cmd::user::run(c, &globals).await,
            Command::Token(c) => cmd::user::run_token(c, &globals).await,
            Command::Audit(c) => cmd::audit::run(c, &globals).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
