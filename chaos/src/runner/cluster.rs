//! The cluster a drill runs against, and the faults it can suffer. Two targets implement it:
//! [`Loopback`] (local processes) and [`super::docker::Docker`] (containers).
//!
//! Loopback: node i runs `rampart serve` as its own user (uid 20000+i) on 127.0.0.(10+i),
//! so a partition is a set of iptables rules in the `OUTPUT` chain matching the sending
//! node's uid and the receiving node's address (the kernel has no other way to tell which
//! local process sent a loopback packet). Needs root for iptables and for the uids; without
//! root, partition drills are skipped and say so.

use super::disks::{self, Damaged};
use super::secure::{ClientSecurity, Secure};
use super::shell::run;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

/// What a drill does to a cluster.
pub trait Cluster: Send {
    fn target(&self) -> &'static str;
    /// Whether partitions can be made.
    fn can_partition(&self) -> bool;
    /// Member ids and the address peers reach them at (for `Init` and `AddLearner`).
    fn members(&self) -> BTreeMap<u64, String>;
    /// URLs the drill's clients use, by node id.
    fn endpoints(&self) -> BTreeMap<u64, String>;
    /// TLS and token for the drill's clients, when the cluster runs secured.
    fn client_security(&self) -> anyhow::Result<Option<ClientSecurity>> {
        Ok(None)
    }
    /// Starts a node (its data kept) — also used for a brand-new node id.
    fn start(&mut self, id: u64) -> anyhow::Result<()>;
    /// SIGKILL.
    fn kill(&mut self, id: u64) -> anyhow::Result<()>;
    /// SIGSTOP / docker pause.
    fn pause(&mut self, id: u64) -> anyhow::Result<()>;
    fn resume(&mut self, id: u64) -> anyhow::Result<()>;
    /// Cuts every link between `side` and `rest`.
    fn partition(&mut self, side: &[u64], rest: &[u64]) -> anyhow::Result<()>;
    /// Removes every partition.
    fn heal(&mut self) -> anyhow::Result<()>;
    /// Kills the node and deletes its data.
    fn wipe(&mut self, id: u64) -> anyhow::Result<()>;
    /// Stops everything and removes what the drill created.
    fn teardown(&mut self);
    /// From its next start on, node `id` runs the binary under test instead of the older one
    /// it started with (a rolling upgrade).
    fn upgrade(&mut self, _id: u64) -> anyhow::Result<()> {
        bail!("this target cannot run an older binary")
    }
    /// Whether the disk faults work (`damage`, `disk`, `exited`: a loopback node's files; the
    /// mounts need root).
    fn can_touch_disks(&self) -> bool {
        false
    }
    /// Damages one file of stopped node `id` (`disks::damage`).
    fn damage(&mut self, _id: u64, _rng: &mut rand::rngs::StdRng) -> anyhow::Result<Damaged> {
        bail!("this target cannot damage a node's files")
    }
    /// A fault of node `id`'s disk.
    fn disk(&mut self, _id: u64, _fault: DiskFault) -> anyhow::Result<()> {
        bail!("this target cannot fault a node's disk")
    }
    /// Whether node `id`'s process has exited since its last start: then its exit status and
    /// the end of its log.
    fn exited(&mut self, _id: u64) -> anyhow::Result<Option<String>> {
        bail!("this target cannot watch a node's process")
    }
    /// Whether `set_clock` works (libfaketime preloaded into every node).
    fn can_skew_clocks(&self) -> bool {
        false
    }
    /// Shifts a node's wall clock (a libfaketime spec: `+2h`, `-30m`, `+0`); the node sees it
    /// within a second. Its monotonic clock is left alone, as an NTP step would.
    fn set_clock(&mut self, _id: u64, _spec: &str) -> anyhow::Result<()> {
        bail!("this target cannot skew clocks")
    }
}

/// A fault of a node's disk (`Cluster::disk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFault {
    /// Its data (the node stopped) moved onto a tmpfs with a few MiB to spare.
    Small,
    /// That tmpfs filled to the last byte.
    Fill,
    /// The space given back, and the volume grown (as an operator would).
    Free,
    /// Remounted read-only, and back.
    ReadOnly,
    ReadWrite,
}

/// libfaketime's multithreaded build, as Debian's `faketime` package installs it.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

const CHAIN: &str = "RAMPART_CHAOS";
const PORT: u16 = 7400;

/// Local `rampart serve` processes on loopback addresses.
pub struct Loopback {
    binary: PathBuf,
    /// The older binary nodes run until `upgrade` (a rolling-upgrade drill).
    older: Option<PathBuf>,
    upgraded: std::collections::BTreeSet<u64>,
    dir: PathBuf,
    ids: Vec<u64>,
    children: BTreeMap<u64, Child>,
    root: bool,
    secure: Option<Secure>,
    /// Every node runs under libfaketime, its offset read from `clock-<id>` in `dir`.
    faketime: bool,
}

/// The highest node id a loopback drill uses (a replaced node gets a new id); the secured
/// cluster's certificate names the addresses of ids up to it.
const MAX_ID: u64 = 100;

impl Loopback {
    /// A cluster of nodes 1..=n with data under `dir` (wiped first); with mutual TLS and
    /// access tokens when `secure`; under libfaketime when `faketime` and it is installed;
    /// every node on `older` until upgraded, when given.
    pub fn new(
        binary: PathBuf,
        older: Option<PathBuf>,
        dir: PathBuf,
        n: u64,
        secure: bool,
        faketime: bool,
    ) -> anyhow::Result<Self> {
        disks::unmount_under(&dir);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("wiping {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)?;
        let root = run("id", &["-u"]).is_ok_and(|u| u.trim() == "0");
        let secure = if secure {
            let hosts = (1..=MAX_ID)
                .map(|id| format!("127.0.0.{}", 10 + id))
                .collect();
            Some(Secure::loopback(&dir.join("secure"), hosts)?)
        } else {
            None
        };
        let mut cluster = Self {
            binary,
            older,
            upgraded: Default::default(),
            dir,
            ids: (1..=n).collect(),
            children: BTreeMap::new(),
            root,
            secure,
            faketime: faketime && Path::new(LIBFAKETIME).exists(),
        };
        if root {
            cluster.chain_up()?;
        }
        for id in 1..=n {
            cluster.start(id)?;
        }
        Ok(cluster)
    }

    fn addr(id: u64) -> String {
        format!("127.0.0.{}:{PORT}", 10 + id)
    }

    fn uid(id: u64) -> u32 {
        20_000 + u32::try_from(id).unwrap_or(0)
    }

    fn data(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node{id}"))
    }

    fn clock_file(&self, id: u64) -> PathBuf {
        self.dir.join(format!("clock-{id}"))
    }

    fn chain_up(&self) -> anyhow::Result<()> {
        let _ = run("iptables", &["-N", CHAIN]);
        run("iptables", &["-F", CHAIN])?;
        if run("iptables", &["-C", "OUTPUT", "-j", CHAIN]).is_err() {
            run("iptables", &["-I", "OUTPUT", "-j", CHAIN])?;
        }
        Ok(())
    }

    fn signal(&self, id: u64, sig: &str) -> anyhow::Result<()> {
        let child = self.children.get(&id).context("node not running")?;
        run("kill", &[sig, &child.id().to_string()]).map(|_| ())
    }
}

fn chown_tree(path: &Path, uid: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // Only what is not the node's yet: a read-only disk refuses even a chown to the owner.
    let meta = std::fs::symlink_metadata(path)?;
    if meta.uid() != uid || meta.gid() != uid {
        std::os::unix::fs::chown(path, Some(uid), Some(uid))?;
    }
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}

impl Cluster for Loopback {
    fn target(&self) -> &'static str {
        "loopback"
    }

    fn can_partition(&self) -> bool {
        self.root
    }

    fn members(&self) -> BTreeMap<u64, String> {
        self.ids.iter().map(|id| (*id, Self::addr(*id))).collect()
    }

    fn client_security(&self) -> anyhow::Result<Option<ClientSecurity>> {
        self.secure.as_ref().map(Secure::client).transpose()
    }

    fn endpoints(&self) -> BTreeMap<u64, String> {
        self.ids
            .iter()
            .map(|id| (*id, format!("http://{}", Self::addr(*id))))
            .collect()
    }

    fn start(&mut self, id: u64) -> anyhow::Result<()> {
        if let Some(mut old) = self.children.remove(&id) {
            let _ = old.kill();
            let _ = old.wait();
        }
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
        let data = self.data(id);
        std::fs::create_dir_all(&data)?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node{id}.log")))?;
        let binary = match &self.older {
            Some(older) if !self.upgraded.contains(&id) => older,
            _ => &self.binary,
        };
        let mut command = Command::new(binary);
        command
            .args([
                "serve",
                "--id",
                &id.to_string(),
                "--listen",
                &Self::addr(id),
            ])
            .arg("--data")
            .arg(&data)
            .args(self.secure.iter().flat_map(Secure::serve_args))
            .env("RAMPART_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if self.faketime {
            let clock = self.clock_file(id);
            if !clock.exists() {
                std::fs::write(&clock, "+0\n")?;
            }
            command
                .env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME_TIMESTAMP_FILE", &clock)
                .env("FAKETIME_CACHE_DURATION", "1")
                .env("DONT_FAKE_MONOTONIC", "1");
        }
        if self.root {
            chown_tree(&data, Self::uid(id))?;
            command.uid(Self::uid(id)).gid(Self::uid(id));
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        self.children.insert(id, child);
        Ok(())
    }

    fn upgrade(&mut self, id: u64) -> anyhow::Result<()> {
        if self.older.is_none() {
            bail!("no older binary to upgrade from (pass --upgrade-from)");
        }
        self.upgraded.insert(id);
        Ok(())
    }

    fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        let mut child = self.children.remove(&id).context("node not running")?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    fn pause(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, "-STOP")
    }

    fn resume(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, "-CONT")
    }

    fn partition(&mut self, side: &[u64], rest: &[u64]) -> anyhow::Result<()> {
        if !self.root {
            bail!("partitions on loopback need root (iptables, one uid per node)");
        }
        for a in side {
            for b in rest {
                for (from, to) in [(a, b), (b, a)] {
                    let uid = Self::uid(*from).to_string();
                    let dst = format!("127.0.0.{}", 10 + to);
                    run(
                        "iptables",
                        &[
                            "-A",
                            CHAIN,
                            "-m",
                            "owner",
                            "--uid-owner",
                            &uid,
                            "-d",
                            &dst,
                            "-j",
                            "DROP",
                        ],
                    )?;
                }
            }
        }
        Ok(())
    }

    fn heal(&mut self) -> anyhow::Result<()> {
        if self.root {
            run("iptables", &["-F", CHAIN])?;
        }
        Ok(())
    }

    fn wipe(&mut self, id: u64) -> anyhow::Result<()> {
        if self.children.contains_key(&id) {
            self.kill(id)?;
        }
        self.ids.retain(|i| *i != id);
        std::fs::remove_dir_all(self.data(id))?;
        Ok(())
    }

    fn can_touch_disks(&self) -> bool {
        self.root
    }

    fn damage(&mut self, id: u64, rng: &mut rand::rngs::StdRng) -> anyhow::Result<Damaged> {
        if self.children.contains_key(&id) {
            bail!("node {id} is running: damage a stopped node's files");
        }
        disks::damage(&self.data(id), rng)
    }

    fn disk(&mut self, id: u64, fault: DiskFault) -> anyhow::Result<()> {
        if !self.root {
            bail!("disk faults on loopback need root (mount)");
        }
        let data = self.data(id);
        match fault {
            DiskFault::Small => {
                if self.children.contains_key(&id) {
                    bail!("node {id} is running: stop it before moving its data");
                }
                disks::mount_small(&data, 16)
            }
            DiskFault::Fill => disks::fill(&data),
            DiskFault::Free => disks::free(&data),
            DiskFault::ReadOnly => disks::read_only(&data, true),
            DiskFault::ReadWrite => disks::read_only(&data, false),
        }
    }

    fn exited(&mut self, id: u64) -> anyhow::Result<Option<String>> {
        let Some(child) = self.children.get_mut(&id) else {
            bail!("node {id} was not started");
        };
        let Some(status) = child.try_wait()? else {
            return Ok(None);
        };
        self.children.remove(&id);
        let log = std::fs::read(self.dir.join(format!("node{id}.log"))).unwrap_or_default();
        let tail = &log[log.len().saturating_sub(8192)..];
        Ok(Some(format!(
            "{status}; its log ends:\n{}",
            String::from_utf8_lossy(tail)
        )))
    }

    fn can_skew_clocks(&self) -> bool {
        self.faketime
    }

    fn set_clock(&mut self, id: u64, spec: &str) -> anyhow::Result<()> {
        if !self.faketime {
            bail!("libfaketime is not installed ({LIBFAKETIME})");
        }
        // Written whole, then renamed: libfaketime never reads half a spec.
        let clock = self.clock_file(id);
        let tmp = clock.with_extension("tmp");
        std::fs::write(&tmp, format!("{spec}\n"))?;
        std::fs::rename(&tmp, &clock)?;
        Ok(())
    }

    fn teardown(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = run("kill", &["-CONT", &child.id().to_string()]);
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.root {
            let _ = run("iptables", &["-F", CHAIN]);
            let _ = run("iptables", &["-D", "OUTPUT", "-j", CHAIN]);
            let _ = run("iptables", &["-X", CHAIN]);
            disks::unmount_under(&self.dir);
        }
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.teardown();
    }
}
