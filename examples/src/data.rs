//! What the servers keep on disk: the all-in-one server's data directory
//! and the split backend's saved catalogue.

use std::sync::Arc;

/// Where the all-in-one server keeps its sales.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDir {
    /// Directory of the on-disk journal: every sale, place and payment,
    /// fsync'd before it is answered. Created if needed; one server per
    /// directory. Back it up by copying it while the server is stopped.
    #[arg(long, env = "DATA_DIR", default_value = "./flashsale-data")]
    pub data_dir: std::path::PathBuf,
    /// Keep everything in memory instead: a crash or a restart loses every
    /// sale and payment. For throwaway demos only.
    #[arg(long, env = "IN_MEMORY")]
    pub in_memory: bool,
    /// Replace a sale's journal by a snapshot of its state once it has
    /// grown by this many events (and the snapshot is a fifth shorter):
    /// bounded disk and restart time, at the cost of a pause while it is
    /// written (5.6 s at 1M buyers on a small machine). Default: never.
    #[arg(long, env = "SNAPSHOT_AFTER", value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_after: Option<u64>,
}

/// The file in the data directory holding the buyer-token secret made when
/// no `BUYER_TOKEN_SECRET` is set.
pub const TOKEN_SECRET_FILE: &str = "buyer-token.secret";

impl DataDir {
    /// The journal: on disk in the data directory (locked against a second
    /// server), or in memory when asked, said loudly.
    pub fn storage(&self) -> Result<Arc<dyn flashsale_core::Storage>, String> {
        if self.in_memory {
            tracing::warn!(
                "--in-memory: sales, places and payments live in this process only; \
                 a crash or a restart loses them all"
            );
            return Ok(Arc::new(flashsale_core::MemoryStorage::new()));
        }
        let storage = flashsale_disk::DiskStorage::open(&self.data_dir)
            .map_err(|e| format!("cannot open the data directory: {e}"))?;
        tracing::info!(path = %storage.path().display(), "journal on disk");
        Ok(Arc::new(storage))
    }

    /// The buyer-token secret kept in the data directory (made on first
    /// start, readable by this user only), so tokens outlive a restart; none
    /// in memory.
    pub fn token_secret(&self) -> Result<Option<String>, String> {
        if self.in_memory {
            return Ok(None);
        }
        let path = self.data_dir.join(TOKEN_SECRET_FILE);
        let failed = |e: std::io::Error| format!("{}: {e}", path.display());
        match std::fs::read_to_string(&path) {
            Ok(secret) if !secret.trim().is_empty() => return Ok(Some(secret.trim().to_owned())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(e)),
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| format!("no OS randomness: {e}"))?;
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(failed)?;
        std::io::Write::write_all(&mut file, secret.as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        Ok(Some(secret))
    }
}

/// Where the split backend keeps its catalogue between restarts: a saved
/// state and the topic offsets it covers, so that a restart reads only the
/// messages after them instead of the whole topic. The directory is locked
/// while a backend has it.
#[derive(Debug)]
pub struct CatalogueFile {
    path: std::path::PathBuf,
    _lock: std::fs::File,
}

/// What [`CatalogueFile`] holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SavedCatalogue {
    /// The topic the offsets are of.
    pub topic: String,
    /// Per partition, the offset to resume from.
    pub next: std::collections::BTreeMap<i32, i64>,
    /// The catalogue, with every message before those offsets applied.
    pub catalogue: flashsale_core::CatalogueState,
}

impl CatalogueFile {
    /// The file in `dir` (created if missing), locked for this process.
    pub fn open(dir: &std::path::Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lock_path = dir.join("backend.lock");
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| format!("{}: {e}", lock_path.display()))?;
        lock.try_lock().map_err(|_| {
            format!(
                "{} is in use by another backend (one per data directory)",
                dir.display()
            )
        })?;
        Ok(CatalogueFile {
            path: dir.join("catalogue.json"),
            _lock: lock,
        })
    }

    /// The saved catalogue, if there is one for `topic`.
    pub fn load(&self, topic: &str) -> Result<Option<SavedCatalogue>, String> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", self.path.display())),
        };
        let saved: SavedCatalogue =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", self.path.display()))?;
        if saved.topic != topic {
            tracing::warn!(file = %self.path.display(), saved = %saved.topic, %topic,
                "the saved catalogue is of another topic: reading the topic from its start");
            return Ok(None);
        }
        Ok(Some(saved))
    }

    /// Saves, atomically (a whole new file replaces the old one, after it
    /// is on disk).
    pub fn save(&self, saved: &SavedCatalogue) -> Result<(), String> {
        let failed = |e: std::io::Error| format!("{}: {e}", self.path.display());
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(saved).map_err(|e| e.to_string())?;
        {
            let mut file = std::fs::File::create(&tmp).map_err(failed)?;
            std::io::Write::write_all(&mut file, &bytes).map_err(failed)?;
            file.sync_all().map_err(failed)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(failed)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(failed)?;
        }
        Ok(())
    }
}
