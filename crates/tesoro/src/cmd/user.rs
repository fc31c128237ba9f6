//! `tesoro user` and `tesoro token`: the server's users, their grants and API tokens.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use tesoro_core::EntityCode;
use tesoro_server::Role;

use crate::output;
use crate::Globals;

/// `tesoro user …`
#[derive(Debug, clap::Subcommand)]
pub enum UserCmd {
    /// Add a user with one role, optionally limited to an entity and everything below it.
    Add {
        /// Login name (lower-case letters, digits, '.', '_', '-').
        name: String,
        /// admin, accountant, auditor (reads everything, changes nothing) or viewer.
        #[arg(long)]
        role: String,
        /// Limit the grant to this entity and everything below it.
        #[arg(long)]
        entity: Option<String>,
        /// Read the password from the first line of this file (else it is asked for).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Print the new user as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users and their grants.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tesoro token …`
#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Create an API token acting as a user; it is printed once and stored only as a hash.
    Create {
        /// The user the token acts as.
        #[arg(long)]
        user: String,
        /// What the token is for.
        #[arg(long, default_value = "api")]
        label: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Who the audit log names for changes made from this command line.
pub fn cli_actor() -> String {
    let who = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{who}")
}

fn set_echo(on: bool) {
    // No terminal library in the tree: stty on the controlling terminal does the job, and a
    // failure only means the password is echoed.
    if let Ok(tty) = std::fs::File::open("/dev/tty") {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(tty)
            .status();
    }
}

fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    set_echo(false);
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    set_echo(true);
    eprintln!();
    read.context("cannot read the password from the terminal")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_password(file: Option<&PathBuf>) -> anyhow::Result<String> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the password file {}", f.display()))?;
        let pw = text.lines().next().unwrap_or_default().to_string();
        if pw.is_empty() {
            bail!("{}: the first line (the password) is empty", f.display());
        }
        return Ok(pw);
    }
    if !std::io::stdin().is_terminal() {
        // Piped: the first line of stdin is the password.
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = prompt_line("password: ")?;
    let second = prompt_line("again: ")?;
    if first != second {
        bail!("the two passwords differ; run the command again");
    }
    Ok(first)
}

pub async fn run(cmd: UserCmd, g: &Globals) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add {
            name,
            role,
            entity,
            password_file,
            json,
        } => {
            let role: Role = role
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--role: {e}"))?;
            let entity = entity.as_deref().map(EntityCode::parse).transpose()?;
            let store = g.open_store().await?;
            if let Some(e) = &entity {
                store.entity(e).await?;
            }
            let password = read_password(password_file.as_ref())?;
            let user =
                tesoro_server::create_user_as(&store, &cli_actor(), &name, &password, role, entity)
                    .await;
            store.close().await;
            let user = user?;
            if json {
                output::json(&user)?;
            } else {
                println!(
                    "added user {} ({}{})",
                    user.username,
                    user.role,
                    user.entity
                        .as_ref()
                        .map(|e| format!(", limited to {e} and below"))
                        .unwrap_or_default()
                );
            }
        }
        UserCmd::List { json } => {
            let store = g.open_store().await?;
            let users = tesoro_server::list_users(&store).await;
            store.close().await;
            let users = users?;
            if json {
                return output::json(&users);
            }
            if users.is_empty() {
                println!("no users yet: tesoro user add NAME --role admin");
                return Ok(());
            }
            let rows = users
                .iter()
                .map(|u| {
                    vec![
                        u.username.clone(),
                        u.role.to_string(),
                        u.entity
                            .as_ref()
                            .map_or("(all)".to_string(), |e| e.to_string()),
                        u.created_at.clone(),
                    ]
                })
                .collect();
            println!(
                "{}",
                output::table(&["user", "role", "entity", "added"], rows, &[])
            );
        }
    }
    Ok(())
}

pub async fn run_token(cmd: TokenCmd, g: &Globals) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create { user, label, json } => {
            let store = g.open_store().await?;
            let token = tesoro_server::create_token(&store, &cli_actor(), &user, &label).await;
            store.close().await;
            let token = token?;
            if json {
                return output::json(&token);
            }
            println!("{}", token.token);
            eprintln!(
                "API token for {} (shown once; send it as Authorization: Bearer TOKEN)",
                token.username
            );
        }
    }
    Ok(())
}
