//! The docker-compose target: the cluster of `cluster/compose-3.yml` under its own project,
//! subnet and ports (so a user's cluster is left alone), faults by `docker kill`,
//! `docker pause` and `docker network disconnect` (a disconnected node is cut from every peer
//! and from the drill's clients, which move to the other nodes).
//!
//! The compose file serves mutual TLS with tokens from the secrets directory it is given
//! (`RAMPART_SECRETS`): each drill makes a fresh one under its own directory
//! ([`Secure::compose`]). With `--secure` the drill's clients use TLS and the admin token;
//! without, a generated override file (`compose-plain.yml` beside the secrets) drops the
//! nodes' security flags and the healthcheck's TLS, so the drills also run plaintext, as a
//! baseline that tells a TLS problem from a consensus one.
//!
//! The drill's clients reach the containers at their fixed addresses on the compose network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::cluster::{Cluster, LIBFAKETIME};
use super::secure::{ClientSecurity, Secure};
use super::shell::run;

const PROJECT: &str = "rampartchaos";
const SUBNET_PREFIX: &str = "172.31.250";
const PORT_PREFIX: &str = "760";
/// The host ports of the nodes' HTTP listeners (node i on 770i), away from `cluster/up.sh`'s
/// 750i and `rampart dev`'s 7201-7203.
const HTTP_PORT_PREFIX: &str = "770";
const COMPOSE: &str = "cluster/compose-3.yml";
/// The services of [`COMPOSE`]: node1..3 and the spare node4.
const SERVICES: u64 = 4;

pub struct Docker {
    ids: Vec<u64>,
    cut: Vec<u64>,
    image: String,
    /// The secrets directory the compose file mounts (absolute).
    secrets: PathBuf,
    /// Compose overrides: the plaintext one when the drill runs without `--secure`, the
    /// libfaketime one for a clock drill.
    overrides: Vec<PathBuf>,
    /// Per node, the directory mounted at `/faketime` whose `clock` file libfaketime reads
    /// (clock drills only).
    clocks: Option<PathBuf>,
    secure: Option<Secure>,
}

/// The label `cluster/build-image.sh` puts on an image with libfaketime inside
/// (`RAMPART_IMAGE_FAKETIME=1`).
const FAKETIME_LABEL: &str = "rampart.faketime";

/// The override that preloads libfaketime into every node, its offset read from
/// `<clocks>/node<i>/clock` (mounted as a directory, so a rename is seen in the container).
fn faketime_override(clocks: &Path) -> String {
    let mut text = String::from(
        "# Made by rampart-chaos for a clock drill: every node under libfaketime.\nservices:\n",
    );
    for id in 1..=SERVICES {
        text.push_str(&format!(
            "  node{id}:\n    environment:\n      LD_PRELOAD: \"{LIBFAKETIME}\"\n      FAKETIME_TIMESTAMP_FILE: /faketime/clock\n      FAKETIME_CACHE_DURATION: \"1\"\n      DONT_FAKE_MONOTONIC: \"1\"\n    volumes:\n      - \"{}/node{id}:/faketime:ro\"\n",
            clocks.display()
        ));
    }
    text
}

/// Whether `image` was built with libfaketime in it.
fn has_faketime(image: &str) -> bool {
    let format = format!("{{{{ index .Config.Labels \"{FAKETIME_LABEL}\" }}}}");
    run("docker", &["image", "inspect", "-f", &format, image]).is_ok_and(|l| l.trim() == "1")
}

/// The override that turns the compose file's security off, for every service of it.
fn plain_override() -> String {
    let mut text = String::from(
        "# Made by rampart-chaos for a drill without --secure: plaintext, no access file.\nservices:\n",
    );
    for id in 1..=SERVICES {
        text.push_str(&format!(
            "  node{id}:\n    command: [\"serve\", \"--id\", \"{id}\", \"--listen\", \"0.0.0.0:7400\", \"--advertise\", \"node{id}:7400\", \"--data\", \"/data\", \"--http\", \"0.0.0.0:7200\"]\n    healthcheck:\n      test: [\"CMD\", \"/rampart\", \"--endpoint\", \"http://127.0.0.1:7400\", \"health\"]\n"
        ));
    }
    text
}

impl Docker {
    /// Brings up nodes 1..=n (fresh volumes, fresh secrets under `dir`), secured or not, and
    /// under libfaketime when `faketime` and the image has it. Needs the image
    /// (`cluster/build-image.sh`).
    pub fn new(
        image: &str,
        dir: &Path,
        n: u64,
        secure: bool,
        faketime: bool,
    ) -> anyhow::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("wiping {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir)?;
        let secrets = std::fs::canonicalize(dir)?.join("secrets");
        // As cluster/up.sh names them: peers dial the service name, the drill's clients the
        // address, the healthcheck 127.0.0.1.
        let nodes: Vec<(u64, Vec<String>)> = (1..=SERVICES)
            .map(|id| {
                let names = [
                    format!("node{id}"),
                    Self::ip(id),
                    "localhost".into(),
                    "127.0.0.1".into(),
                ];
                (id, names.to_vec())
            })
            .collect();
        let made = Secure::compose(&secrets, &nodes)?;
        let mut overrides = Vec::new();
        if !secure {
            let path = secrets.with_file_name("compose-plain.yml");
            std::fs::write(&path, plain_override())?;
            overrides.push(path);
        }
        let clocks = if faketime && has_faketime(image) {
            let clocks = secrets.with_file_name("clocks");
            for id in 1..=SERVICES {
                let node = clocks.join(format!("node{id}"));
                std::fs::create_dir_all(&node)?;
                std::fs::write(node.join("clock"), "+0\n")?;
            }
            let path = secrets.with_file_name("compose-faketime.yml");
            std::fs::write(&path, faketime_override(&clocks))?;
            overrides.push(path);
            Some(clocks)
        } else {
            None
        };
        let cluster = Self {
            ids: (1..=n).collect(),
            cut: Vec::new(),
            image: image.to_owned(),
            secrets,
            overrides,
            clocks,
            secure: secure.then_some(made),
        };
        let _ = cluster.compose(&["down", "-v", "--remove-orphans"]);
        let services: Vec<String> = (1..=n).map(|i| format!("node{i}")).collect();
        let mut args = vec!["up", "-d"];
        args.extend(services.iter().map(String::as_str));
        cluster.compose(&args)?;
        Ok(cluster)
    }

    fn compose(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut command = Command::new("docker-compose");
        command.args(["-p", PROJECT, "-f", COMPOSE]);
        for file in &self.overrides {
            command.arg("-f").arg(file);
        }
        let out = command
            .args(["--profile", "spare"])
            .args(args)
            .env("RAMPART_IMAGE", &self.image)
            .env("RAMPART_SUBNET_PREFIX", SUBNET_PREFIX)
            .env("RAMPART_PORT_PREFIX", PORT_PREFIX)
            .env("RAMPART_HTTP_PORT_PREFIX", HTTP_PORT_PREFIX)
            .env("RAMPART_SECRETS", &self.secrets)
            .output()
            .context("running docker-compose")?;
        if !out.status.success() {
            bail!(
                "docker-compose {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn container(&self, id: u64) -> anyhow::Result<String> {
        let id = self.compose(&["ps", "-q", &format!("node{id}")])?;
        let id = id.trim().to_owned();
        if id.is_empty() {
            bail!("no container for the node");
        }
        Ok(id)
    }

    fn network() -> String {
        format!("{PROJECT}_rampart")
    }

    fn ip(id: u64) -> String {
        format!("{SUBNET_PREFIX}.{}", 10 + id)
    }
}

impl Cluster for Docker {
    fn target(&self) -> &'static str {
        "docker"
    }

    fn can_partition(&self) -> bool {
        true
    }

    fn members(&self) -> BTreeMap<u64, String> {
        self.ids
            .iter()
            .map(|id| (*id, format!("node{id}:7400")))
            .collect()
    }

    fn endpoints(&self) -> BTreeMap<u64, String> {
        self.ids
            .iter()
            .map(|id| {
                let scheme = if self.secure.is_some() {
                    "https"
                } else {
                    "http"
                };
                (*id, format!("{scheme}://{}:7400", Self::ip(*id)))
            })
            .collect()
    }

    fn client_security(&self) -> anyhow::Result<Option<ClientSecurity>> {
        self.secure.as_ref().map(Secure::client).transpose()
    }

    fn start(&mut self, id: u64) -> anyhow::Result<()> {
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
        self.compose(&["up", "-d", "--no-recreate", &format!("node{id}")])
            .map(|_| ())?;
        // A killed container is not restarted by `up --no-recreate`.
        run("docker", &["start", &self.container(id)?]).map(|_| ())
    }

    fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        run("docker", &["kill", &self.container(id)?]).map(|_| ())
    }

    fn pause(&mut self, id: u64) -> anyhow::Result<()> {
        run("docker", &["pause", &self.container(id)?]).map(|_| ())
    }

    fn resume(&mut self, id: u64) -> anyhow::Result<()> {
        run("docker", &["unpause", &self.container(id)?]).map(|_| ())
    }

    fn partition(&mut self, side: &[u64], _rest: &[u64]) -> anyhow::Result<()> {
        for id in side {
            run(
                "docker",
                &[
                    "network",
                    "disconnect",
                    &Self::network(),
                    &self.container(*id)?,
                ],
            )?;
            self.cut.push(*id);
        }
        Ok(())
    }

    fn heal(&mut self) -> anyhow::Result<()> {
        for id in std::mem::take(&mut self.cut) {
            let container = self.container(id)?;
            run(
                "docker",
                &[
                    "network",
                    "connect",
                    "--ip",
                    &Self::ip(id),
                    "--alias",
                    &format!("node{id}"),
                    &Self::network(),
                    &container,
                ],
            )?;
        }
        Ok(())
    }

    fn wipe(&mut self, id: u64) -> anyhow::Result<()> {
        self.compose(&["rm", "-sfv", &format!("node{id}")])?;
        let _ = run("docker", &["volume", "rm", &format!("{PROJECT}_node{id}")]);
        self.ids.retain(|i| *i != id);
        Ok(())
    }

    fn can_skew_clocks(&self) -> bool {
        self.clocks.is_some()
    }

    fn set_clock(&mut self, id: u64, spec: &str) -> anyhow::Result<()> {
        let Some(clocks) = &self.clocks else {
            bail!("the image has no libfaketime (build it with RAMPART_IMAGE_FAKETIME=1)");
        };
        // Written whole, then renamed: libfaketime never reads half a spec.
        let dir = clocks.join(format!("node{id}"));
        std::fs::write(dir.join("clock.tmp"), format!("{spec}\n"))?;
        std::fs::rename(dir.join("clock.tmp"), dir.join("clock"))?;
        Ok(())
    }

    fn teardown(&mut self) {
        let _ = self.heal();
        for id in self.ids.clone() {
            if let Ok(c) = self.container(id) {
                let _ = run("docker", &["unpause", &c]);
            }
        }
        let _ = self.compose(&["down", "-v", "--remove-orphans", "-t", "2"]);
    }
}
