//! ppvnet: the harness that runs "Secure Power Platform access to Azure resources" on one machine.
//!
//! Module map (the flow of one `ppvnet up`, top to bottom):
//! - [`scenario`]: landscape files: YAML model, source locations, validation with Azure's wording.
//! - [`landscape`]: the validated landscape: hosts that originate traffic, services, emulated addresses.
//! - [`pki`]: the run's CA and the leaf certificates of every service host name and address.
//! - [`ready`]: the ready file tests and tools read instead of parsing logs.
//! - [`services`]: each service's start next to its configuration: the landscape mapped onto
//!   the mock's own config type, its faces bound, its task spawned (a team's own API program
//!   through `services::program`, handed its faces by socket activation).
//! - [`up`]: orchestration only: start the services in order, serve the control API, write the
//!   ready file, stop cleanly.
//! - [`fabric`]: network fabrics (loopback, netns) that carry and police the hosts' traffic.
//! - [`control`]: the control API of a running landscape (clock, keys, network state).
//! - [`events`]: the run's event bus: control actions and flow records, for live watchers.
//! - [`dashboard`]: the live landscape dashboard served on the control address (picture,
//!   reachability matrix, latest flows, control buttons), updated over Server-Sent Events.
//! - [`picture`]: the landscape drawn as SVG with its matrix and flow table: one drawing for
//!   the dashboard, the HTML report and `ppvnet draw`.
//! - [`powerplatform`]: the browser-less Power Apps user behind `ppvnet pp` and the `/pp` control
//!   routes.
//! - [`acceptance`]: the Gherkin acceptance runner (`ppvnet test`, `ppvnet steps`): built-in
//!   steps, tag and shard selection, JUnit/Cucumber JSON/HTML reports.
//! - [`publish`]: a landscape run in a container: the control API and the internet host's proxy
//!   published, and the ready file as the machine outside sees it.
//! - [`image`]: `ppvnet image build`, the `ppvnet:<version>` image FROM scratch, built offline.
//! - [`bench`]: `ppvnet bench`: the user's path through a running landscape measured beside
//!   same-run references, as a table and JSON.
//! - [`cli`]: the `ppvnet` command line; [`paths`]: its default paths, from the checkout's root.

pub mod acceptance;
pub mod bench;
pub mod cli;
pub mod control;
pub mod dashboard;
pub mod events;
pub mod fabric;
pub mod image;
pub mod landscape;
pub mod paths;
pub mod picture;
pub mod pki;
pub mod powerplatform;
pub mod publish;
pub mod ready;
pub mod scenario;
pub mod services;
pub mod up;
