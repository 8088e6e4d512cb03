//! What can go wrong starting or using a ppvnet container: one line each, naming the cause and
//! the fix.

/// An error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `docker` command, or its daemon does not answer.
    #[error("{0}")]
    DockerUnavailable(String),
    /// The image is not on this machine (nothing is ever pulled: there is no registry).
    #[error(
        "image {0} is not built: build it with `ppvnet image build` (README, \"Containers\"); \
         nothing is pulled"
    )]
    ImageNotBuilt(String),
    /// A port on the machine the container was to be published at is taken.
    #[error(
        "port {0} on 127.0.0.1 is taken by another program: stop it, or start again (a free port is chosen each time)"
    )]
    PortTaken(u16),
    /// The container stopped before the landscape was ready.
    #[error("the ppvnet container exited before it was ready (exit code {code}): {last_line}")]
    ExitedEarly { code: i64, last_line: String },
    /// The landscape was not ready within the start timeout.
    #[error(
        "the ppvnet container was not ready within {0} s: a busy machine may need more time (`with_startup_timeout`)"
    )]
    Timeout(u64),
    /// A docker command failed.
    #[error("docker {command} failed: {message}")]
    Docker { command: String, message: String },
    /// The landscape has no such part (app, vault, user).
    #[error("{0}")]
    NotInLandscape(String),
    /// The ready file or CA could not be read or understood.
    #[error("the container's ready file: {0}")]
    Ready(String),
    /// An HTTP request to the landscape failed.
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    /// Entra refused a token request.
    #[error("Entra refused the token request ({status}): {body}")]
    Token { status: u16, body: String },
}

pub type Result<T> = std::result::Result<T, Error>;
