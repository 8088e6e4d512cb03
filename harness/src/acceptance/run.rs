//! One acceptance run: options (shared by `ppvnet test` and the `acceptance` test binary),
//! the feature files, cucumber with the built-in steps, the teardown hook, and the reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use cucumber::World as _;
use cucumber::writer::Ext as _;
use futures::StreamExt as _;
use futures::stream::LocalBoxStream;

use super::record::{Recorder, Report};
use super::select::{Selection, Shard, Tags};
use super::{PpvWorld, Settings, configure, default_scenarios_dir, used};
use crate::fabric::FabricKind;

/// `ppvnet test` options; the `acceptance` test binary parses the same ones, and CI passes the
/// report paths through the environment (`PPVNET_TEST_JUNIT`, …).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TestArgs {
    /// Feature files or folders of them (default: the shipped `features/`).
    pub features: Vec<PathBuf>,
    /// Run this landscape wherever a step starts one by name (`the contoso landscape …`).
    #[arg(long)]
    pub landscape: Option<PathBuf>,
    /// Fabric of the steps that name none (steps that name one keep it); netns needs root,
    /// docker also Docker and the ppvnet image (built from this binary when it is missing).
    #[arg(long, value_enum)]
    pub network: Option<FabricKind>,
    /// Cucumber tag expression: only scenarios it selects run (`'@netns and not @slow'`).
    #[arg(long, env = "PPVNET_TEST_TAGS")]
    pub tags: Option<Tags>,
    /// Write a JUnit XML report here.
    #[arg(long, env = "PPVNET_TEST_JUNIT")]
    pub junit: Option<PathBuf>,
    /// Write a Cucumber JSON report here.
    #[arg(long, env = "PPVNET_TEST_JSON")]
    pub json: Option<PathBuf>,
    /// Write the self-contained HTML sign-off report here.
    #[arg(long, env = "PPVNET_TEST_HTML")]
    pub html: Option<PathBuf>,
    /// Run only the K-th of N deterministic shards of the selected scenarios (`2/4`).
    #[arg(long, env = "PPVNET_TEST_SHARD")]
    pub shard: Option<Shard>,
    /// Print the selected scenarios (`file:line  feature / scenario`) instead of running them.
    #[arg(long)]
    pub list: bool,
    /// Scenarios run at once (default: 64 on loopback; 8 with `--network netns`, where each
    /// landscape is dozens of namespaces and more at once overload a small machine).
    #[arg(long)]
    pub concurrency: Option<usize>,
}

impl TestArgs {
    fn selection(&self) -> Selection {
        Selection {
            tags: self.tags.clone(),
            shard: self.shard,
        }
    }

    /// The feature paths, checked to exist (cucumber would look for them elsewhere).
    fn feature_paths(&self) -> anyhow::Result<Vec<PathBuf>> {
        let paths = if self.features.is_empty() {
            vec![default_features_dir()]
        } else {
            self.features.clone()
        };
        paths
            .iter()
            .map(|p| {
                p.canonicalize()
                    .with_context(|| format!("no feature file or folder {}", p.display()))
            })
            .collect()
    }
}

/// Scenarios at once with `--network netns` unless `--concurrency` says otherwise: 64 netns
/// landscapes at once timed out on a 2-core machine (health checks over 30 s), 8 passed.
const NETNS_CONCURRENCY: usize = 8;

/// The shipped `features/` (see [`super::shipped`]).
pub fn default_features_dir() -> PathBuf {
    super::shipped("features")
}

/// Parses every path with cucumber's own parser (folders: every `*.feature` in them, sorted),
/// examples expanded.
#[derive(Clone, Copy, Debug, Default)]
pub struct FeatureSet;

impl cucumber::Parser<Vec<PathBuf>> for FeatureSet {
    type Cli = cucumber::cli::Empty;
    type Output = LocalBoxStream<'static, cucumber::parser::Result<cucumber::gherkin::Feature>>;

    fn parse(self, input: Vec<PathBuf>, _: Self::Cli) -> Self::Output {
        futures::stream::iter(input)
            .flat_map(|p| cucumber::parser::Basic::new().parse(p, Default::default()))
            .boxed_local()
    }
}

/// The selected scenarios, without running them: `(feature file, line, "feature / scenario")`.
pub async fn list(args: &TestArgs) -> anyhow::Result<Vec<(PathBuf, usize, String)>> {
    let selection = args.selection();
    let mut out = Vec::new();
    let mut features =
        cucumber::Parser::parse(FeatureSet, args.feature_paths()?, Default::default());
    while let Some(f) = features.next().await {
        let f = f.map_err(|e| anyhow::anyhow!("{e}"))?;
        let path = f.path.clone().unwrap_or_default();
        let rules = f
            .rules
            .iter()
            .flat_map(|r| r.scenarios.iter().map(move |s| (Some(r), s)));
        for (rule, s) in f.scenarios.iter().map(|s| (None, s)).chain(rules) {
            if selection.selects(&f, rule, s) {
                out.push((
                    path.clone(),
                    s.position.line,
                    format!("{} / {}", f.name, s.name),
                ));
            }
        }
    }
    Ok(out)
}

fn network_name(kind: FabricKind) -> &'static str {
    match kind {
        FabricKind::Loopback => "loopback",
        FabricKind::Netns => "netns",
        FabricKind::Docker => "docker",
    }
}

/// Runs the selected scenarios with the built-in steps and returns what happened.
/// `ppvnet_exe` is the program steps run as `ppvnet` (the test binary is not it).
pub async fn execute(args: &TestArgs, ppvnet_exe: PathBuf) -> anyhow::Result<Report> {
    let paths = args.feature_paths()?;
    let network = args.network.unwrap_or(FabricKind::Loopback);
    if let Some(why) = super::steps::network::fabric_unavailable(network) {
        bail!("--network {}: {why}", network_name(network));
    }
    if let Some(l) = &args.landscape {
        crate::scenario::load(l).map_err(|e| anyhow::anyhow!("--landscape: {e}"))?;
    }
    configure(Settings {
        scenarios_dir: default_scenarios_dir(),
        landscape: args
            .landscape
            .as_ref()
            .map(|l| l.canonicalize())
            .transpose()?,
        network,
        ppvnet_exe,
    });
    let recorder = Recorder::default();
    let report = recorder.report.clone();
    let writer = cucumber::writer::Basic::stdout().tee::<PpvWorld, _>(recorder.normalized());
    let mut cli: cucumber::cli::Opts<_, cucumber::runner::basic::Cli, _, cucumber::cli::Empty> =
        Default::default();
    cli.runner.concurrency = args
        .concurrency
        .or(network.namespaced().then_some(NETNS_CONCURRENCY));
    let selection = args.selection();
    PpvWorld::cucumber::<&Path>()
        .with_parser(FeatureSet)
        .with_writer(writer)
        .after(|_, _, _, _, world| {
            Box::pin(async move {
                if let Some(w) = world {
                    w.stop().await;
                }
            })
        })
        .fail_on_skipped()
        .with_cli(cli)
        .filter_run(paths, move |f, r, s| selection.selects(f, r, s))
        .await;
    let report = report.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(report)
}

/// Writes the report files the options ask for.
pub fn write_reports(args: &TestArgs, report: &Report) -> anyhow::Result<()> {
    let write = |path: &Option<PathBuf>, text: String| -> anyhow::Result<()> {
        if let Some(p) = path {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
        }
        Ok(())
    };
    write(&args.junit, super::junit::render(report))?;
    write(&args.json, super::json::render(report))?;
    if args.html.is_some() {
        let provenance = super::html::Provenance::collect(report, &used());
        write(&args.html, super::html::render(report, &provenance, args))?;
    }
    Ok(())
}

/// The whole command: run (or list), write the reports, print the closing line
/// `acceptance: N passed, N failed`; the exit code is 1 on any failure or when nothing ran,
/// 2 when the run could not start.
pub fn main(args: &TestArgs, ppvnet_exe: PathBuf) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ppvnet test: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    if args.list {
        return match runtime.block_on(list(args)) {
            Ok(selected) => {
                use std::io::Write as _;
                let text: String = selected
                    .iter()
                    .map(|(path, line, name)| format!("{}:{line}  {name}\n", path.display()))
                    .collect();
                // A closed pipe (`ppvnet test --list | head`) is not an error worth a panic.
                let _ = std::io::stdout().write_all(text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ppvnet test: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let report = match runtime.block_on(execute(args, ppvnet_exe)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ppvnet test: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = write_reports(args, &report) {
        eprintln!("ppvnet test: {e:#}");
        return ExitCode::from(2);
    }
    let (passed, failed) = report.counts();
    println!("acceptance: {passed} passed, {failed} failed");
    if passed == 0 && failed == 0 {
        eprintln!("ppvnet test: no scenario selected");
    }
    if failed > 0 || passed == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
