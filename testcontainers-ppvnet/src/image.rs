//! What the three modules share: the `ppvnet` image, how a container of it is started and when
//! it is ready, and the [`PpvnetImage`] builder methods.
//!
//! A container runs `ppvnet up` on one landscape with the loopback fabric inside it, and
//! publishes two ports on the machine's 127.0.0.1 only: the control API ([`CONTROL_PORT`]) and
//! the `internet` host's HTTPS proxy ([`PROXY_PORT`]), through which every public face of the
//! landscape answers by its real Azure name with a certificate of the run's CA. The machine's
//! ports are chosen free before the start and given to `ppvnet up --advertise-*`, so the ready
//! file the container writes is right from the machine; the crate reads it with `docker cp`.
//!
//! Ready condition: the line `ppvnet is up`, which `ppvnet up` prints once every service
//! answers and the ready file is written.

use std::future::Future;
use std::time::Duration;

use crate::docker::{self, Container};
use crate::error::{Error, Result};
use crate::ready::{ReadyFile, Running};

/// The image's name (`ppvnet image build` builds `ppvnet:<version>`).
pub const IMAGE_NAME: &str = "ppvnet";
/// The image's default tag: this crate's version, which is ppvnet's.
pub const DEFAULT_TAG: &str = env!("CARGO_PKG_VERSION");
/// The control API's port in the container.
pub const CONTROL_PORT: u16 = 8400;
/// The internet host's proxy port in the container.
pub const PROXY_PORT: u16 = 3128;
/// Where the container writes its ready file.
pub const READY_FILE: &str = "/ppvnet/ready.json";
/// The line `ppvnet up` prints when the landscape is ready.
pub const READY_LINE: &str = "ppvnet is up";
/// How long a start may take by default (a landscape is ready in about a second).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The landscape a container runs.
#[derive(Clone, Debug)]
pub(crate) enum Scenario {
    /// A landscape shipped in the image, by its path under `/scenarios`.
    Shipped(String),
    /// A landscape file's text, copied into the container before it starts.
    Yaml(Vec<u8>),
}

/// Where a user-supplied landscape goes in the container.
const COPIED_SCENARIO: &str = "/ppvnet/landscape.yaml";

/// A container's configuration.
#[derive(Clone, Debug)]
pub struct Spec {
    tag: String,
    pub(crate) scenario: Scenario,
    ports: Option<(u16, u16)>,
    startup_timeout: Duration,
}

impl Spec {
    pub(crate) fn new(scenario: Scenario) -> Self {
        Self {
            tag: DEFAULT_TAG.to_string(),
            scenario,
            ports: None,
            startup_timeout: STARTUP_TIMEOUT,
        }
    }

    /// `ppvnet:<tag>`.
    pub fn image(&self) -> String {
        format!("{IMAGE_NAME}:{}", self.tag)
    }

    /// The container ports the machine reaches (the control API, the proxy).
    pub fn expose_ports(&self) -> [u16; 2] {
        [CONTROL_PORT, PROXY_PORT]
    }

    /// The line that says the container is ready.
    pub fn ready_condition(&self) -> &'static str {
        READY_LINE
    }

    /// `ppvnet up`'s arguments for a container published at these machine ports.
    pub fn cmd(&self, control: u16, proxy: u16) -> Vec<String> {
        let scenario = match &self.scenario {
            Scenario::Shipped(path) => format!("/scenarios/{path}"),
            Scenario::Yaml(_) => COPIED_SCENARIO.to_string(),
        };
        [
            "up",
            &scenario,
            "--ready-file",
            READY_FILE,
            "--listen",
            "0.0.0.0",
            "--control-port",
            &CONTROL_PORT.to_string(),
            "--proxy-port",
            &PROXY_PORT.to_string(),
            "--advertise-control",
            &format!("127.0.0.1:{control}"),
            "--advertise-proxy",
            &format!("127.0.0.1:{proxy}"),
        ]
        .map(String::from)
        .to_vec()
    }

    /// The `docker create` arguments: published on 127.0.0.1 only, then the image and command.
    fn create_args(&self, control: u16, proxy: u16) -> Vec<String> {
        let mut args = vec![
            "--publish".to_string(),
            format!("127.0.0.1:{control}:{CONTROL_PORT}"),
            "--publish".to_string(),
            format!("127.0.0.1:{proxy}:{PROXY_PORT}"),
            self.image(),
        ];
        args.extend(self.cmd(control, proxy));
        args
    }

    /// Starts a container and waits until its landscape is ready; on any failure the container
    /// is removed before the error returns.
    pub(crate) async fn start(&self) -> Result<(Container, ReadyFile, String)> {
        let image = self.image();
        docker::check(&image).await?;
        let (control, proxy) = match self.ports {
            Some(ports) => ports,
            None => (docker::free_port()?, docker::free_port()?),
        };
        let container = Container::create(&self.create_args(control, proxy)).await?;
        if let Scenario::Yaml(text) = &self.scenario {
            container.copy_in(text, COPIED_SCENARIO).await?;
        }
        container.start(&[control, proxy]).await?;
        container
            .wait_for_line(READY_LINE, self.startup_timeout)
            .await?;
        let ready: ReadyFile = serde_json::from_slice(&container.copy_out(READY_FILE).await?)
            .map_err(|e| Error::Ready(e.to_string()))?;
        // The CA path is relative to the ready file's folder (ppvnet's `publish` module).
        let ca_path = if ready.ca_cert.starts_with('/') {
            ready.ca_cert.clone()
        } else {
            format!("/ppvnet/{}", ready.ca_cert)
        };
        let ca_pem = String::from_utf8(container.copy_out(&ca_path).await?)
            .map_err(|_| Error::Ready("the CA certificate is not PEM text".into()))?;
        Ok((container, ready, ca_pem))
    }
}

/// The builder methods every module has (modules hold a [`Spec`]).
pub trait PpvnetImage: Sized + Send + Sync {
    fn spec(&self) -> &Spec;
    fn spec_mut(&mut self) -> &mut Spec;

    /// Another tag of the `ppvnet` image than this crate's version.
    fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.spec_mut().tag = tag.into();
        self
    }

    /// Publishes on these ports of the machine's 127.0.0.1 (control API, proxy) instead of
    /// free ones chosen at the start.
    fn with_ports(mut self, control: u16, proxy: u16) -> Self {
        self.spec_mut().ports = Some((control, proxy));
        self
    }

    /// How long the start may take (default [`STARTUP_TIMEOUT`]).
    fn with_startup_timeout(mut self, timeout: Duration) -> Self {
        self.spec_mut().startup_timeout = timeout;
        self
    }

    /// Starts the container and waits for its ready condition. The container is removed when
    /// the returned [`Running`] is dropped.
    fn start(self) -> impl Future<Output = Result<Running<Self>>> + Send {
        async move {
            let (container, ready, ca_pem) = self.spec().start().await?;
            Ok(Running::new(self, container, ready, ca_pem))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_is_published_on_loopback_only_and_told_the_machine_s_ports() {
        let spec = Spec::new(Scenario::Shipped("containers/entra.yaml".into()));
        assert_eq!(spec.image(), format!("ppvnet:{DEFAULT_TAG}"));
        let args = spec.create_args(18400, 13128);
        assert_eq!(
            &args[..4],
            [
                "--publish",
                "127.0.0.1:18400:8400",
                "--publish",
                "127.0.0.1:13128:3128"
            ]
        );
        let joined = args.join(" ");
        assert!(
            joined.contains("up /scenarios/containers/entra.yaml --ready-file /ppvnet/ready.json"),
            "{joined}"
        );
        assert!(
            joined
                .contains("--advertise-control 127.0.0.1:18400 --advertise-proxy 127.0.0.1:13128"),
            "{joined}"
        );
        let own = Spec::new(Scenario::Yaml(b"name: x".to_vec()));
        assert!(own.cmd(1, 2).contains(&COPIED_SCENARIO.to_string()));
    }
}
