//! Making bytes durable for real: sled's flush followed by `fdatasync` of its data file.

use std::fs::File;
use std::path::Path;

use super::StoreError;

/// Flushes a sled database and fdatasyncs its data file.
#[derive(Debug)]
pub struct Syncer {
    db: sled::Db,
    data_file: File,
}

impl Syncer {
    /// `dir` is the sled directory; sled 0.34 keeps its log in the file `db` there.
    pub fn new(db: sled::Db, dir: &Path) -> Result<Self, StoreError> {
        let data_file = File::open(dir.join("db"))?;
        Ok(Self { db, data_file })
    }

    /// Returns once everything written to the database is on disk.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.data_file.sync_data()?;
        Ok(())
    }
}

/// fsyncs a directory, so that files created or renamed in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}
