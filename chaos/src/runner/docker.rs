//! The docker-compose target: the cluster of `cluster/compose-3.yml` under its own project,
//! subnet and ports (so a user's cluster is left alone), faults by `docker kill`,
//! `docker pause` and `docker network disconnect` (a disconnected node is cut from every peer
//! and from the drill's clients, which move to the other nodes).
//!
//! The drill's clients reach the containers at their fixed addresses on the compose network.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{bail, Context};

use super::cluster::{run, Cluster};

const PROJECT: &str = "rampartchaos";
const SUBNET_PREFIX: &str = "172.31.250";
const PORT_PREFIX: &str = "760";
const COMPOSE: &str = "cluster/compose-3.yml";

pub struct Docker {
    ids: Vec<u64>,
    cut: Vec<u64>,
    image: String,
}

fn compose(image: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker-compose")
        .args(["-p", PROJECT, "-f", COMPOSE, "--profile", "spare"])
        .args(args)
        .env("RAMPART_IMAGE", image)
        .env("RAMPART_SUBNET_PREFIX", SUBNET_PREFIX)
        .env("RAMPART_PORT_PREFIX", PORT_PREFIX)
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

impl Docker {
    /// Brings up nodes 1..=n (fresh volumes). Needs the image (`cluster/build-image.sh`).
    pub fn new(image: &str, _drill: &str, n: u64) -> anyhow::Result<Self> {
        let _ = compose(image, &["down", "-v", "--remove-orphans"]);
        let services: Vec<String> = (1..=n).map(|i| format!("node{i}")).collect();
        let mut args = vec!["up", "-d"];
        args.extend(services.iter().map(String::as_str));
        compose(image, &args)?;
        Ok(Self {
            ids: (1..=n).collect(),
            cut: Vec::new(),
            image: image.to_owned(),
        })
    }

    fn container(&self, id: u64) -> anyhow::Result<String> {
        let id = compose(&self.image, &["ps", "-q", &format!("node{id}")])?;
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
            .map(|id| (*id, format!("http://{}:7400", Self::ip(*id))))
            .collect()
    }

    fn start(&mut self, id: u64) -> anyhow::Result<()> {
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
        compose(
            &self.image,
            &["up", "-d", "--no-recreate", &format!("node{id}")],
        )
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
        compose(&self.image, &["rm", "-sfv", &format!("node{id}")])?;
        let _ = run("docker", &["volume", "rm", &format!("{PROJECT}_node{id}")]);
        self.ids.retain(|i| *i != id);
        Ok(())
    }

    fn teardown(&mut self) {
        let _ = self.heal();
        for id in self.ids.clone() {
            if let Ok(c) = self.container(id) {
                let _ = run("docker", &["unpause", &c]);
            }
        }
        let _ = compose(&self.image, &["down", "-v", "--remove-orphans", "-t", "2"]);
    }
}
