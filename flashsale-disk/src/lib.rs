//! A durable journal on the local disk for [`flashsale_core`]: a
//! [`Storage`] that keeps every sale's events in one
//! [redb](https://docs.rs/redb) database file.
//!
//! # The contract
//!
//! - **Durable on `Ok`.** [`DiskStorage::append`](Storage::append) returns
//!   `Ok` only once its events are on disk: the commit has been `fsync`'d,
//!   so they survive a crash of the process (`kill -9`) and of the machine.
//!   redb's commit is atomic — after a crash a batch is there whole or not
//!   at all — and checksummed: a torn last commit is rolled back to the one
//!   before when the file is next opened.
//! - **Group commit.** One writer thread takes every append queued at the
//!   moment (from all sales, up to [`MAX_GROUP`]) and commits them in one
//!   transaction: one `fsync` per group, however many requests it answers.
//!   The sales' own tasks already gather a batch of commands per append,
//!   so a busy sale pays one `fsync` per batch, not per request.
//! - **One process per directory.** The database file is locked while
//!   open: a second [`DiskStorage::open`] of the same directory, in this
//!   process or another, fails with [`OpenError::InUse`].
//! - **Self-describing.** Events are stored as the engine serializes them
//!   (JSON, with the journal format in each sale's first event); the file
//!   records its own layout version, and a newer one is refused
//!   ([`OpenError::Unsupported`]).
//!
//! What to back up: the directory, while the server is stopped (or a copy
//! of `journal.redb` taken by a filesystem snapshot: redb's file is
//! consistent at every commit).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use flashsale_core::Storage;
//! use flashsale_disk::DiskStorage;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let storage = DiskStorage::open(dir.path()).unwrap();
//! assert!(storage.sales().await.unwrap().is_empty());
//! // A second process (or a second open here) is refused while it is open.
//! assert!(DiskStorage::open(dir.path()).is_err());
//! # }
//! ```
//!
//! # Layout
//! One file, `journal.redb`, in the directory given to
//! [`DiskStorage::open`]; tables `events` ((sale id, sequence) → event),
//! `snapshots` ((sale id, index) → event) and `tails` (sale id → where its
//! events start after the snapshot, and the snapshot's length), `sales`
//! (sale id → ()) and `meta` (layout version). A sale's journal is its
//! snapshot, if any, then its events.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use flashsale_core::{Event, SaleId, Storage, StorageError};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

/// The file in the data directory.
pub const FILE_NAME: &str = "journal.redb";

/// The most appends committed together in one transaction.
pub const MAX_GROUP: usize = 512;

/// The layout this code writes (in the `meta` table).
const LAYOUT: u64 = 1;

type SaleKey = [u8; 12];
const EVENTS: TableDefinition<(SaleKey, u64), &[u8]> = TableDefinition::new("events");
const SALES: TableDefinition<SaleKey, ()> = TableDefinition::new("sales");
/// A sale's snapshot: (sale id, index) → event.
const SNAPSHOTS: TableDefinition<(SaleKey, u64), &[u8]> = TableDefinition::new("snapshots");
/// Where a sale's journal starts when it has a snapshot: (the sequence
/// number of the first event after it, the snapshot's length).
const TAILS: TableDefinition<SaleKey, (u64, u64)> = TableDefinition::new("tails");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Why a [`DiskStorage`] could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another [`DiskStorage`] (in this process or another) has the
    /// directory open.
    #[error("{0} is in use by another process (one server per data directory)")]
    InUse(PathBuf),
    /// The file was written by a newer version.
    #[error("{path} has layout {found}; this version reads layout {LAYOUT}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Its layout version.
        found: u64,
    },
    /// The directory or the file could not be created or read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One write for the writer thread.
struct Append {
    sale: SaleId,
    /// Events to append, or a snapshot replacing the first `covers`.
    what: Write,
    done: oneshot::Sender<Result<(), String>>,
}

enum Write {
    Events(Vec<Event>),
    Snapshot { covers: u64, events: Vec<Event> },
}

/// A journal in a redb file on the local disk; see the [crate] docs for
/// its promises. Cheap to clone: clones share the file and its writer.
///
/// Dropping the last clone waits for the writer to finish its group and
/// closes the file (so the directory may be opened again at once).
#[derive(Clone)]
pub struct DiskStorage {
    // Field order matters on drop: this clone's sender first, then the
    // writer is joined, then the file closed.
    appends: mpsc::Sender<Append>,
    _writer: Arc<Writer>,
    db: Arc<Database>,
    path: Arc<PathBuf>,
}

/// Joins the writer thread when the last [`DiskStorage`] goes.
struct Writer(Option<std::thread::JoinHandle<()>>);

impl Drop for Writer {
    fn drop(&mut self) {
        // Every sender is gone by now, so the thread is finishing.
        if let Some(thread) = self.0.take()
            && thread.join().is_err()
        {
            tracing::error!("the journal's writer thread panicked");
        }
    }
}

impl std::fmt::Debug for DiskStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStorage")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DiskStorage {
    /// Opens (creating if needed) the journal in `dir`, and starts its
    /// writer thread. Blocks while the file is opened and checked (redb
    /// verifies, and if the last run crashed repairs, the file here).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, OpenError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| OpenError::Io {
            path: dir.to_owned(),
            source: e.into(),
        })?;
        let path = dir.join(FILE_NAME);
        let io = |e: redb::Error| OpenError::Io {
            path: path.clone(),
            source: e.into(),
        };
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(OpenError::InUse(path)),
            Err(e) => return Err(io(e.into())),
        };
        let found = init(&db).map_err(io)?;
        if found != LAYOUT {
            return Err(OpenError::Unsupported { path, found });
        }
        let db = Arc::new(db);
        let (appends, queue) = mpsc::channel(4 * MAX_GROUP);
        let writer = db.clone();
        let thread = std::thread::Builder::new()
            .name("flashsale-disk-writer".into())
            .spawn(move || write_loop(&writer, queue))
            .map_err(|e| OpenError::Io {
                path: path.clone(),
                source: e.into(),
            })?;
        Ok(DiskStorage {
            appends,
            _writer: Arc::new(Writer(Some(thread))),
            db,
            path: Arc::new(path),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands a write to the writer thread and waits for its commit.
    async fn write(&self, sale: SaleId, what: Write) -> Result<(), StorageError> {
        let stopped = || StorageError::msg("the journal's writer has stopped");
        let (done, committed) = oneshot::channel();
        self.appends
            .send(Append { sale, what, done })
            .await
            .map_err(|_| stopped())?;
        committed
            .await
            .map_err(|_| stopped())?
            .map_err(StorageError::msg)
    }

    /// Runs a read on a blocking thread.
    async fn reading<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Database) -> Result<T, redb::Error> + Send + 'static,
    ) -> Result<T, StorageError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || read(&db))
            .await
            .map_err(|e| StorageError::msg(format!("journal read task: {e}")))?
            .map_err(|e| StorageError(e.into()))
    }
}

/// Creates the tables on a new file; returns the file's layout version.
fn init(db: &Database) -> Result<u64, redb::Error> {
    let txn = db.begin_write()?;
    let layout = {
        let mut meta = txn.open_table(META)?;
        let found = meta.get("layout")?.map(|v| v.value());
        match found {
            Some(v) => v,
            None => {
                meta.insert("layout", LAYOUT)?;
                LAYOUT
            }
        }
    };
    txn.open_table(EVENTS)?;
    txn.open_table(SALES)?;
    txn.open_table(SNAPSHOTS)?;
    txn.open_table(TAILS)?;
    txn.commit()?;
    Ok(layout)
}

/// The writer thread: commits whatever is queued, as one transaction, and
/// answers every append in it. Ends when every [`DiskStorage`] is gone.
fn write_loop(db: &Database, mut queue: mpsc::Receiver<Append>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let result = commit(db, &group).map_err(|e| {
            tracing::error!(error = %e, appends = group.len(), "journal commit failed");
            e.to_string()
        });
        for append in group.drain(..) {
            // A caller that stopped waiting is no error.
            let _ = append.done.send(result.clone());
        }
    }
}

fn encode(event: &Event) -> Result<Vec<u8>, redb::Error> {
    serde_json::to_vec(event)
        .map_err(|e| redb::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

fn commit(db: &Database, group: &[Append]) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut events = txn.open_table(EVENTS)?;
        let mut sales = txn.open_table(SALES)?;
        let mut snapshots = txn.open_table(SNAPSHOTS)?;
        let mut tails = txn.open_table(TAILS)?;
        for append in group {
            let key = append.sale.bytes();
            let (tail_seq, snapshot_len) = tails.get(key)?.map_or((0, 0), |v| v.value());
            let next = match events.range((key, 0)..=(key, u64::MAX))?.next_back() {
                Some(last) => last?.0.value().1 + 1,
                None => tail_seq,
            };
            if next == 0 && snapshot_len == 0 {
                sales.insert(key, ())?;
            }
            match &append.what {
                Write::Events(batch) => {
                    for (seq, event) in (next..).zip(batch) {
                        events.insert((key, seq), encode(event)?.as_slice())?;
                    }
                }
                Write::Snapshot {
                    covers,
                    events: snapshot,
                } => {
                    // Journal index `covers` is sequence number
                    // `tail_seq + covers - snapshot_len`.
                    let length = snapshot_len + (next - tail_seq);
                    if *covers < snapshot_len || *covers > length {
                        return Err(redb::Error::Io(std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            format!("a snapshot covering {covers} of a journal of {length}"),
                        )));
                    }
                    let new_tail = tail_seq + (covers - snapshot_len);
                    events.retain_in((key, 0)..(key, new_tail), |_, _| false)?;
                    snapshots.retain_in((key, 0)..=(key, u64::MAX), |_, _| false)?;
                    for (i, event) in (0..).zip(snapshot) {
                        snapshots.insert((key, i), encode(event)?.as_slice())?;
                    }
                    tails.insert(key, (new_tail, snapshot.len() as u64))?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

#[async_trait]
impl Storage for DiskStorage {
    async fn append(&self, sale: SaleId, events: &[Event]) -> Result<(), StorageError> {
        if events.is_empty() {
            return Ok(());
        }
        self.write(sale, Write::Events(events.to_vec())).await
    }

    /// Writes the snapshot and drops the events it covers, in one commit:
    /// the file keeps the sale's state and its recent history only.
    async fn snapshot(
        &self,
        sale: SaleId,
        covers: u64,
        snapshot: &[Event],
    ) -> Result<bool, StorageError> {
        let events = snapshot.to_vec();
        self.write(sale, Write::Snapshot { covers, events })
            .await
            .map(|()| true)
    }

    async fn read(&self, sale: SaleId) -> Result<Vec<Event>, StorageError> {
        let key = sale.bytes();
        let raw = self
            .reading(move |db| {
                let txn = db.begin_read()?;
                let snapshots = txn.open_table(SNAPSHOTS)?;
                let events = txn.open_table(EVENTS)?;
                snapshots
                    .range((key, 0)..=(key, u64::MAX))?
                    .chain(events.range((key, 0)..=(key, u64::MAX))?)
                    .map(|row| Ok(row?.1.value().to_vec()))
                    .collect::<Result<Vec<Vec<u8>>, redb::Error>>()
            })
            .await?;
        raw.iter()
            .map(|bytes| serde_json::from_slice(bytes).map_err(|e| StorageError(e.into())))
            .collect()
    }

    async fn sales(&self) -> Result<Vec<SaleId>, StorageError> {
        self.reading(|db| {
            let txn = db.begin_read()?;
            let sales = txn.open_table(SALES)?;
            sales
                .iter()?
                .map(|row| Ok(SaleId::from_bytes(row?.0.value())))
                .collect()
        })
        .await
    }

    async fn check(&self) -> Result<(), StorageError> {
        if self.appends.is_closed() {
            return Err(StorageError::msg("the journal's writer has stopped"));
        }
        Ok(())
    }
}
