//! The `ppvnet` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::fabric::FabricKind;
use crate::scenario::{self, LoadError};
use crate::up::{self, UpOptions};

/// The seed landscape, used when no file is named (under the checkout's root: [`crate::paths`]).
pub use crate::paths::DEFAULT_SCENARIO;

#[derive(Parser, Debug)]
#[command(
    name = "ppvnet",
    version,
    about = "Run 'Secure Power Platform access to Azure resources' on one machine, offline"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a landscape file; prints its counts, or every error with its file:line:col.
    Validate {
        #[arg(default_value_os_t = crate::paths::default_scenario())]
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Draw a landscape as a standalone SVG picture (vNets, subnets, peerings, private
    /// endpoints, hosts, services), as the dashboard and the sign-off report draw it.
    Draw {
        #[arg(default_value_os_t = crate::paths::default_scenario())]
        file: PathBuf,
        /// Where to write the SVG (standard output when not given).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run a landscape in the foreground until SIGINT/SIGTERM.
    Up {
        #[arg(default_value_os_t = crate::paths::default_scenario())]
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = FabricKind::Loopback)]
        network: FabricKind,
        /// Where to write the ready file.
        #[arg(long, default_value_os_t = crate::paths::default_ready_file())]
        ready_file: PathBuf,
        /// Port of the control API on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        control_port: u16,
        /// Keep Entra's signing keys and the vaults' secrets here across runs.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Append every VNet flow-log record to this file as JSON lines.
        #[arg(long)]
        flow_log: Option<PathBuf>,
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Exits 0 when the landscape of a ready file is up: the file is there and the control API
    /// answers its health check (a container's healthcheck).
    Health {
        #[arg(long, default_value_os_t = crate::paths::default_ready_file())]
        ready_file: PathBuf,
        /// The control API to ask, instead of the ready file's `control_url` (inside a container
        /// that publishes it: `http://127.0.0.1:8400`).
        #[arg(long)]
        control_url: Option<String>,
    },
    /// Container images, built offline (`docker/Dockerfile`).
    #[command(subcommand)]
    Image(ImageCommand),
    /// Run a program as a host of a running landscape: with the run's CA and Entra authority in
    /// its environment, and the host's DNS view for real host names (netns: inside the host's
    /// namespace; loopback: through the host's HTTPS proxy). Exits with the program's code.
    Exec {
        #[arg(long, default_value_os_t = crate::paths::default_ready_file())]
        ready_file: PathBuf,
        /// Host name (`internet`, `pp-prod-westus`, `pe-kv-contoso-prod`, ...).
        #[arg(long)]
        host: String,
        /// The program and its arguments (after `--`).
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Print the environment `exec` gives a program on a host, as `export` lines for a shell:
    /// `eval "$(ppvnet env --host internet)"`.
    Env {
        #[arg(long, default_value = ".ppvnet/ready.json")]
        ready_file: PathBuf,
        /// Host name (`internet`, `pp-prod-westus`, ...).
        #[arg(long)]
        host: String,
    },
    /// Power Platform of a running landscape: invoke connector operations as a user, create
    /// connections, list them, re-save a connector.
    #[command(subcommand)]
    Pp(crate::powerplatform::cli::PpCommand),
    /// Run Gherkin feature files with the built-in steps (the shipped `features/` by default),
    /// starting the landscapes they name; writes JUnit, Cucumber JSON and HTML sign-off reports.
    /// Exits 1 when a scenario fails (or none ran), 2 when the run cannot start.
    Test(crate::acceptance::run::TestArgs),
    /// Print every step phrase a feature file may use, with its parameters and an example.
    Steps,
    /// Hold a Docker fabric container's network namespace: wait for SIGTERM or SIGINT, then
    /// exit 0 (what each host and router container of `--network docker` runs).
    #[command(hide = true)]
    Pause,
    /// Start a landscape in-process on the loopback fabric and measure the user's path through
    /// it (tokens, Key Vault, search, connector invoke, `up` cold and warm, relay connect), each
    /// figure beside a reference measured in the same run; prints a table with the ratios.
    Bench {
        /// The landscape to start.
        #[arg(long, default_value_os_t = crate::paths::default_scenario())]
        landscape: PathBuf,
        /// Also write the figures and the machine's facts as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Bounded durations for CI (fewer requests and starts; no 1,000,000-case search unless
        /// named in --only).
        #[arg(long)]
        quick: bool,
        /// Measure only these rows.
        #[arg(long, value_enum, num_args = 1..)]
        only: Vec<crate::bench::RowName>,
    },
}

/// `ppvnet up` in a container: publish the control API and the internet host's proxy, and write
/// the ready file with the machine's addresses ([`crate::publish`]).
#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// Also listen on this address (a container's: 0.0.0.0) with the control API and the
    /// internet host's HTTPS proxy; the ready file then gives the addresses the machine uses.
    #[arg(long)]
    listen: Option<std::net::IpAddr>,
    /// The port of the internet host's proxy on the --listen address.
    #[arg(long, default_value_t = crate::publish::PROXY_PORT, requires = "listen")]
    proxy_port: u16,
    /// Where the machine reaches the control API (the published port: 127.0.0.1:PORT).
    #[arg(long, requires = "listen")]
    advertise_control: Option<std::net::SocketAddr>,
    /// Where the machine reaches the internet host's proxy (127.0.0.1:PORT).
    #[arg(long, requires = "listen")]
    advertise_proxy: Option<std::net::SocketAddr>,
}

impl PublishArgs {
    fn into_publish(self) -> Option<crate::publish::Publish> {
        Some(crate::publish::Publish {
            listen: self.listen?,
            proxy_port: self.proxy_port,
            advertise_control: self.advertise_control,
            advertise_proxy: self.advertise_proxy,
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Build `ppvnet:<version>` FROM scratch: this binary (or --binary), the shared libraries
    /// `ldd` lists for it, and the shipped landscapes. Nothing is pulled. Prints the tag and
    /// the size; an image with the same content is kept.
    Build {
        /// The ppvnet binary to put in the image (default: this one).
        #[arg(long)]
        binary: Option<PathBuf>,
        #[arg(long, default_value_t = crate::image::default_tag())]
        tag: String,
        /// The landscapes to ship under /scenarios (default: the checkout's scenarios/).
        #[arg(long)]
        scenarios: Option<PathBuf>,
        /// Rebuild even when the image's content did not change.
        #[arg(long)]
        force: bool,
    },
    /// Build an image FROM scratch of programs of this machine (a team's backend or client for
    /// the docker fabric): each binary in /usr/local/bin (on PATH) with the libraries `ldd`
    /// lists, the CA bundle, an empty /tmp; the first is the image's command. Prints the tag and
    /// the size.
    Wrap {
        /// The programs (Linux binaries of this machine's architecture).
        #[arg(required = true)]
        binaries: Vec<PathBuf>,
        #[arg(long)]
        tag: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Runs the CLI; the exit code is 0 on success, 1 on invalid input, 2 on a failure to run.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PPVNET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Validate { file, format } => validate(&file, format),
        Command::Draw { file, output } => draw(&file, output.as_deref()),
        Command::Exec {
            ready_file,
            host,
            argv,
        } => exec(&ready_file, &host, &argv),
        Command::Env { ready_file, host } => env(&ready_file, &host),
        Command::Pp(cmd) => crate::powerplatform::cli::run(cmd),
        Command::Test(args) => {
            let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ppvnet"));
            crate::acceptance::run::main(&args, exe)
        }
        Command::Steps => {
            print_out(&crate::acceptance::catalogue::render());
            ExitCode::SUCCESS
        }
        Command::Pause => pause(),
        Command::Health {
            ready_file,
            control_url,
        } => health(&ready_file, control_url),
        Command::Image(ImageCommand::Build {
            binary,
            tag,
            scenarios,
            force,
        }) => image_build(binary, tag, scenarios, force),
        Command::Image(ImageCommand::Wrap { binaries, tag }) => {
            report_image("wrap", crate::image::wrap(&binaries, &tag))
        }
        Command::Bench {
            landscape,
            json,
            quick,
            only,
        } => bench(
            json.as_deref(),
            &crate::bench::BenchOptions {
                landscape,
                quick,
                only,
            },
        ),
        Command::Up {
            file,
            network,
            ready_file,
            control_port,
            data_dir,
            flow_log,
            publish,
        } => {
            let landscape = match scenario::load(&file) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            };
            let mut opts = UpOptions::new(network, ready_file);
            opts.control_port = control_port;
            opts.data_dir = data_dir;
            opts.flow_log_file = flow_log;
            opts.publish = publish.into_publish();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("ppvnet: cannot start the async runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            match runtime.block_on(up::run_until_signal(&landscape, &opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ppvnet up: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Writes to stdout; a closed pipe (`ppvnet validate | head`) is not an error worth a panic.
pub(crate) fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn health(ready_file: &std::path::Path, control_url: Option<String>) -> ExitCode {
    let checked = crate::ready::ReadyFile::read(ready_file).and_then(|ready| {
        let url = format!(
            "{}{}",
            control_url.unwrap_or(ready.control_url),
            crate::control::guard::HEALTH_PATH
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(2))
                .build()?;
            let status = client.get(&url).send().await?.status();
            anyhow::ensure!(status.is_success(), "{url} answered {status}");
            Ok(())
        })
    });
    match checked {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ppvnet health: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn image_build(
    binary: Option<PathBuf>,
    tag: String,
    scenarios: Option<PathBuf>,
    force: bool,
) -> ExitCode {
    let binary = match binary.map_or_else(std::env::current_exe, Ok) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ppvnet image build: cannot find this binary: {e} (name one with --binary)");
            return ExitCode::from(2);
        }
    };
    let scenarios = scenarios.unwrap_or_else(|| {
        crate::paths::default_scenario()
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("scenarios"))
    });
    let opts = crate::image::BuildOptions {
        binary,
        tag,
        scenarios,
        force,
    };
    report_image("build", crate::image::build(&opts))
}

/// `ppvnet image build` and `wrap`: the tag and size, or the error (exit 2).
fn report_image(verb: &str, built: anyhow::Result<crate::image::Built>) -> ExitCode {
    match built {
        Ok(built) => {
            print_out(&format!(
                "{} {} ({:.1} MB)\n",
                if built.rebuilt {
                    "built"
                } else {
                    "up to date:"
                },
                built.tag,
                built.size as f64 / 1e6
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ppvnet image {verb}: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `ppvnet bench`: any failure (an invalid landscape, a port taken, a row that cannot run) is
/// one line on stderr and exit code 2.
fn bench(json: Option<&std::path::Path>, opts: &crate::bench::BenchOptions) -> ExitCode {
    let one_line = |e: &dyn std::fmt::Display| {
        let text = e.to_string();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        eprintln!("ppvnet bench: {}", lines.join("; "));
        ExitCode::from(2)
    };
    let landscape = match scenario::load(&opts.landscape) {
        Ok(l) => l,
        Err(e) => return one_line(&e),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return one_line(&format!("cannot start the async runtime: {e}")),
    };
    let report = match runtime.block_on(crate::bench::run(&landscape, opts)) {
        Ok(r) => r,
        Err(e) => return one_line(&format!("{e:#}")),
    };
    print_out(&report.table());
    if let Some(path) = json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| {
                std::fs::write(path, bytes)
                    .with_context(|| format!("cannot write {}", path.display()))
            });
        if let Err(e) = written {
            return one_line(&format!("{e:#}"));
        }
    }
    ExitCode::SUCCESS
}

fn exec(ready_file: &std::path::Path, host: &str, argv: &[String]) -> ExitCode {
    match crate::fabric::exec(ready_file, host, argv) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("ppvnet exec: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn env(ready_file: &std::path::Path, host: &str) -> ExitCode {
    let built = crate::ready::ReadyFile::read(ready_file)
        .and_then(|ready| crate::fabric::ClientEnv::for_host(&ready, host));
    match built {
        Ok(env) => {
            print_out(&env.exports());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ppvnet env: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `ppvnet draw`: an invalid file gets `validate`'s errors and exit code 1; a file that cannot
/// be written, exit code 2.
fn draw(file: &std::path::Path, output: Option<&std::path::Path>) -> ExitCode {
    let landscape = match scenario::load(file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let oracle = crate::fabric::oracle::Oracle::new(&landscape);
    let svg = crate::picture::svg_file(
        &landscape.scenario.name,
        crate::picture::Scene::declared(&oracle),
    );
    match output {
        None => {
            print_out(&svg);
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, svg) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ppvnet draw: cannot write {}: {e}", path.display());
                ExitCode::from(2)
            }
        },
    }
}

fn validate(file: &std::path::Path, format: Format) -> ExitCode {
    match (scenario::load(file), format) {
        (Ok(l), Format::Text) => {
            let mut out = format!(
                "{}: valid landscape '{}'\n",
                file.display(),
                l.scenario.name
            );
            for (k, v) in l.summary().0 {
                out.push_str(&format!("  {k:22} {v}\n"));
            }
            print_out(&out);
            ExitCode::SUCCESS
        }
        (Ok(l), Format::Json) => {
            let out = serde_json::json!({"valid": true, "name": l.scenario.name, "counts": l.summary().0});
            print_out(&format!("{out}\n"));
            ExitCode::SUCCESS
        }
        (Err(LoadError::Invalid { findings, .. }), Format::Json) => {
            print_out(&format!(
                "{}\n",
                serde_json::json!({"valid": false, "errors": findings})
            ));
            ExitCode::from(1)
        }
        (Err(e), Format::Json) => {
            let out = serde_json::json!({"valid": false, "errors": [{"message": e.to_string()}]});
            print_out(&format!("{out}\n"));
            ExitCode::from(1)
        }
        (Err(e), Format::Text) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// `ppvnet pause`: as PID 1 of a container a signal without a handler is ignored, so the
/// handlers are installed and the process waits for one of them.
fn pause() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ppvnet pause: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            eprintln!("ppvnet pause: cannot install the signal handlers");
            return ExitCode::from(2);
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        ExitCode::SUCCESS
    })
}
