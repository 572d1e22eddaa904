//! Disk faults on a loopback node's data directory: damage to the files a stopped node keeps
//! (cut short, one bit flipped), and a small tmpfs mounted under it that a drill fills to the
//! last byte or remounts read-only while the node runs. Mounts need root; the drills that use
//! them are skipped without it. This module only touches files and mounts: which node, and
//! what must follow, is the drill's (`super::faults`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rand::Rng;

use super::shell::run;

/// The files a node keeps in its data directory (`docs/durability.md`).
pub const NODE_FILES: [&str; 4] = ["raft/db", "raft/conf", "snapshot.bin", "acked.bin"];

/// What a drill did to one file.
#[derive(Debug, Clone)]
pub struct Damaged {
    pub file: PathBuf,
    pub what: String,
}

/// Damages one of the files in `data` (a stopped node's), chosen by `rng` among those that
/// exist: cut to a random length below what it uses, or one bit flipped in the bytes it uses
/// (sled's segments are mostly zero padding).
pub fn damage(data: &Path, rng: &mut rand::rngs::StdRng) -> anyhow::Result<Damaged> {
    let present: Vec<PathBuf> = NODE_FILES
        .iter()
        .map(|f| data.join(f))
        .filter(|p| p.exists())
        .collect();
    if present.is_empty() {
        bail!("{} holds none of a node's files", data.display());
    }
    let file = present[rng.gen_range(0..present.len())].clone();
    let mut bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let used = bytes.iter().rposition(|b| *b != 0).map_or(1, |i| i + 1);
    let what = if rng.gen_bool(0.5) {
        let to = rng.gen_range(0..used);
        bytes.truncate(to);
        format!("cut from {used} to {to} bytes")
    } else {
        let at = rng.gen_range(0..used);
        let mask = 1u8 << rng.gen_range(0..8);
        bytes[at] ^= mask;
        format!("byte {at} ^ {mask:#04x}")
    };
    // In place, keeping the owner (the node's uid) and the inode.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&file)
        .with_context(|| format!("opening {}", file.display()))?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    Ok(Damaged { file, what })
}

/// Moves `data` (a stopped node's) onto a tmpfs mounted at the same path, sized to what it
/// holds plus `spare_mib`.
pub fn mount_small(data: &Path, spare_mib: u64) -> anyhow::Result<()> {
    let used = du_mib(data)?;
    let aside = data.with_extension("aside");
    std::fs::rename(data, &aside)?;
    std::fs::create_dir_all(data)?;
    let size = format!("size={}m", used + spare_mib);
    run(
        "mount",
        &["-t", "tmpfs", "-o", &size, "tmpfs", &path_str(data)?],
    )?;
    run(
        "cp",
        &["-a", &format!("{}/.", path_str(&aside)?), &path_str(data)?],
    )?;
    std::fs::remove_dir_all(&aside)?;
    Ok(())
}

/// Fills the file system under `data` to the last byte with a file the node does not know.
pub fn fill(data: &Path) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(filler(data))?;
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => return Err(e).context("filling the node's disk"),
        }
    }
    while f.write_all(&[0]).is_ok() {}
    Ok(())
}

/// Room a freed disk has beyond what it holds: as an operator who grows the volume would give,
/// enough for the node to take in everything the cluster committed while it was down (the bulk
/// writes that filled it went on through the others, and can outgrow the small disk's spare).
const FREED_SPARE_MIB: u64 = 512;

/// Gives the space back: removes the filler and grows the tmpfs.
pub fn free(data: &Path) -> anyhow::Result<()> {
    std::fs::remove_file(filler(data)).context("removing the filler")?;
    let size = format!("remount,size={}m", du_mib(data)? + FREED_SPARE_MIB);
    run("mount", &["-o", &size, &path_str(data)?]).map(|_| ())
}

/// What `data` holds, in whole MiB.
fn du_mib(data: &Path) -> anyhow::Result<u64> {
    run("du", &["-sb", &path_str(data)?])?
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .map(|b| b / (1 << 20))
        .context("du of the data directory")
}

/// Remounts the tmpfs under `data` read-only, or back read-write.
pub fn read_only(data: &Path, ro: bool) -> anyhow::Result<()> {
    let how = if ro { "remount,ro" } else { "remount,rw" };
    run("mount", &["-o", how, &path_str(data)?]).map(|_| ())
}

/// Unmounts every mount under `dir` (a drill's directory), deepest first.
pub fn unmount_under(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return;
    };
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return;
    };
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = run("umount", &["-l", point]);
    }
}

fn filler(data: &Path) -> PathBuf {
    data.join("chaos-filler")
}

fn path_str(p: &Path) -> anyhow::Result<String> {
    p.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", p.display()))
}
