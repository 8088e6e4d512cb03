//! `ppvnet pp …`: the Power Platform of a running landscape from the command line. Like
//! `exec`, each command finds the landscape through its ready file and talks to the control
//! API, which acts from the landscape's `internet` host (so the commands work on every fabric).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;

use crate::ready::ReadyFile;

#[derive(Subcommand, Debug)]
pub enum PpCommand {
    /// Call a connector operation as a user, through the environment's connector runtime:
    /// `ppvnet pp invoke --env prod --connector contoso-cases --user alice@contoso.onmicrosoft.com GET '/cases/search?q=outage'`.
    /// Creates the user's connection first (sign-in and consent on Entra's page) if needed.
    Invoke {
        #[arg(long, default_value_os_t = crate::paths::default_ready_file())]
        ready_file: PathBuf,
        #[arg(long = "env")]
        environment: String,
        #[arg(long)]
        connector: String,
        /// The signing-in user's UPN (its password comes from the landscape).
        #[arg(long)]
        user: String,
        /// HTTP method of the operation (`GET`, `POST`, ...).
        method: String,
        /// Path and query below the connection (`/cases/search?q=outage`).
        path: String,
        /// A JSON body.
        #[arg(long)]
        body: Option<String>,
    },
    /// Create (or show) a user's connection to a connector in an environment.
    Connect {
        #[arg(long, default_value_os_t = crate::paths::default_ready_file())]
        ready_file: PathBuf,
        #[arg(long = "env")]
        environment: String,
        #[arg(long)]
        connector: String,
        #[arg(long)]
        user: String,
    },
    /// List every connection with its owner and status.
    Connections {
        #[arg(long, default_value_os_t = crate::paths::default_ready_file())]
        ready_file: PathBuf,
    },
    /// Save a connector again in an environment: Secret environment variables are read from
    /// Key Vault anew (a rotated secret takes effect only after this, as in Power Platform).
    Resave {
        #[arg(long, default_value_os_t = crate::paths::default_ready_file())]
        ready_file: PathBuf,
        #[arg(long = "env")]
        environment: String,
        #[arg(long)]
        connector: String,
    },
}

/// Runs a `pp` command: 0 when it succeeded (for `invoke`: the call returned 2xx), 1 when the
/// service answered with an error, 2 when the landscape could not be reached.
pub fn run(cmd: PpCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ppvnet pp: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(cmd)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ppvnet pp: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cmd: PpCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PpCommand::Invoke {
            ready_file,
            environment,
            connector,
            user,
            method,
            path,
            body,
        } => {
            let body = body
                .map(|b| serde_json::from_str::<serde_json::Value>(&b))
                .transpose()
                .context("--body is not JSON")?;
            let request = serde_json::json!({
                "environment": environment, "connector": connector, "user": user,
                "method": method.to_ascii_uppercase(), "path": path, "body": body,
            });
            let (status, answer) =
                control(&ready_file, Method::POST, "/pp/invoke", Some(request)).await?;
            if status >= 400 {
                return Ok(refused(status, &answer));
            }
            print!("{}", render_invoke(&answer));
            let ok = answer["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s));
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        PpCommand::Connect {
            ready_file,
            environment,
            connector,
            user,
        } => {
            let request = serde_json::json!({"environment": environment, "connector": connector, "user": user});
            let (status, answer) =
                control(&ready_file, Method::POST, "/pp/connect", Some(request)).await?;
            if status >= 400 {
                return Ok(refused(status, &answer));
            }
            println!("{}", answer["connection"].as_str().unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        PpCommand::Connections { ready_file } => {
            let (status, answer) =
                control(&ready_file, Method::GET, "/powerplatform/connections", None).await?;
            if status >= 400 {
                return Ok(refused(status, &answer));
            }
            print!("{}", render_connections(&answer));
            Ok(ExitCode::SUCCESS)
        }
        PpCommand::Resave {
            ready_file,
            environment,
            connector,
        } => {
            let path =
                format!("/powerplatform/environments/{environment}/connectors/{connector}/resave");
            let (status, answer) = control(&ready_file, Method::POST, &path, None).await?;
            if status >= 400 {
                return Ok(refused(status, &answer));
            }
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn refused(status: u16, answer: &serde_json::Value) -> ExitCode {
    let message = answer["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| answer.to_string());
    eprintln!("ppvnet pp: the landscape answered {status}: {message}");
    ExitCode::from(1)
}

/// One request to the control API of the landscape behind `ready_file`, with the run's token.
async fn control(
    ready_file: &Path,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let ready = ReadyFile::read(ready_file)?;
    let client = crate::control::Client::from_ready(&ready)?;
    client.send_json(method, path, body.as_ref()).await
}

/// `HTTP <status>`, the headers, a blank line and the body (pretty JSON), as curl -i shows it.
pub fn render_invoke(answer: &serde_json::Value) -> String {
    let mut out = format!("HTTP {}\n", answer["status"]);
    for h in answer["headers"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{}: {}\n",
            h[0].as_str().unwrap_or_default(),
            h[1].as_str().unwrap_or_default()
        ));
    }
    out.push('\n');
    match &answer["body"] {
        serde_json::Value::String(s) => out.push_str(s),
        other => out.push_str(&serde_json::to_string_pretty(other).unwrap_or_default()),
    }
    out.push('\n');
    out
}

fn render_connections(answer: &serde_json::Value) -> String {
    let list = answer["value"].as_array().or_else(|| answer.as_array());
    let mut out = format!(
        "{:38}  {:6}  {:16}  {:32}  {}\n",
        "ID", "ENV", "CONNECTOR", "OWNER", "STATUS"
    );
    for c in list.into_iter().flatten() {
        let text = |k: &str| c[k].as_str().unwrap_or("").to_string();
        out.push_str(&format!(
            "{:38}  {:6}  {:16}  {:32}  {}{}\n",
            text("id"),
            text("environment"),
            text("connector"),
            text("owner"),
            text("status"),
            c["error"]
                .as_str()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    out
}
