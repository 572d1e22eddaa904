//! Making bytes durable for real: sled's flush followed by `fdatasync` of its data file.

use std::fs::File;
use std::path::Path;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use super::{At, StoreError};

/// Flushes a sled database and fdatasyncs its data file.
#[derive(Debug)]
pub struct Syncer {
    db: sled::Db,
    data_file: File,
    path: std::path::PathBuf,
    /// How long each sync took (shown by the node's metrics).
    seconds: Histogram,
}

impl Syncer {
    /// `dir` is the sled directory; sled 0.34 keeps its log in the file `db` there.
    pub fn new(db: sled::Db, dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("db");
        let data_file = File::open(&path).at(|| format!("opening {}", path.display()))?;
        Ok(Self {
            db,
            data_file,
            path,
            seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        })
    }

    /// Returns once everything written to the database is on disk.
    pub fn sync(&self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        self.db
            .flush()
            .at(|| format!("flushing sled to {}", self.path.display()))?;
        self.data_file
            .sync_data()
            .at(|| format!("fdatasync of {}", self.path.display()))?;
        self.seconds.observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The durations of every sync so far (a shared handle).
    pub fn seconds(&self) -> Histogram {
        self.seconds.clone()
    }

    /// sled's data file (`raft/db`), for error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// fsyncs a directory, so that files created or renamed in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at(|| format!("fsync of directory {}", dir.display()))
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = path.with_extension("tmp");
    File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .at(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .at(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    sync_dir(dir)
}
