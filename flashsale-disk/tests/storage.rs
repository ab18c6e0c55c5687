//! `DiskStorage` against the core's storage conformance suite, and what
//! the suite cannot see: the journal survives the process, and one
//! directory has one owner.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use flashsale_core::testkit::{sample_journal, storage_conformance};
use flashsale_core::{SaleId, Storage};
use flashsale_disk::{DiskStorage, OpenError};

fn sale(n: u8) -> SaleId {
    SaleId::from_bytes([n; 12])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_storage_conformance_suite() {
    let dirs = std::sync::Mutex::new(Vec::new());
    storage_conformance(|| {
        let dir = tempfile::tempdir().unwrap();
        let storage = DiskStorage::open(dir.path()).unwrap();
        dirs.lock().unwrap().push(dir);
        async move { storage }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_journal_has_every_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let journal = sample_journal(sale(1), 300);
    {
        let storage = DiskStorage::open(dir.path()).unwrap();
        for chunk in journal.chunks(11) {
            storage.append(sale(1), chunk).await.unwrap();
        }
        storage.append(sale(2), &journal[..1]).await.unwrap();
    }
    // The last clone is gone: the file is closed and may be opened again.
    let storage = DiskStorage::open(dir.path()).unwrap();
    assert_eq!(storage.read(sale(1)).await.unwrap(), journal);
    let mut sales = storage.sales().await.unwrap();
    sales.sort();
    assert_eq!(sales, vec![sale(1), sale(2)]);
    // Appends after a reopen continue the journal, not overwrite it.
    storage.append(sale(2), &journal[1..5]).await.unwrap();
    assert_eq!(storage.read(sale(2)).await.unwrap(), journal[..5].to_vec());
}

#[tokio::test]
async fn a_second_owner_of_the_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = DiskStorage::open(dir.path()).unwrap();
    assert!(matches!(
        DiskStorage::open(dir.path()),
        Err(OpenError::InUse(_))
    ));
}

#[tokio::test]
async fn a_file_that_is_not_a_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(flashsale_disk::FILE_NAME),
        b"not a database",
    )
    .unwrap();
    assert!(matches!(
        DiskStorage::open(dir.path()),
        Err(OpenError::Io { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_replaces_the_history_it_covers_across_a_reopen() {
    use flashsale_core::{Engine, SequentialIds};
    let dir = tempfile::tempdir().unwrap();
    let journal = sample_journal(sale(5), 3_000);
    let (history, tail) = journal.split_at(journal.len() - 40);
    let snapshot = Engine::replay(history, Box::new(SequentialIds::default()))
        .unwrap()
        .snapshot();
    assert!(snapshot.len() < history.len(), "a snapshot is shorter");
    {
        let storage = DiskStorage::open(dir.path()).unwrap();
        storage.append(sale(5), history).await.unwrap();
        assert!(
            storage
                .snapshot(sale(5), history.len() as u64, &snapshot)
                .await
                .unwrap()
        );
    }
    // Reopened: the snapshot stands in for the history, and appends go on
    // after it (not over it).
    let storage = DiskStorage::open(dir.path()).unwrap();
    assert_eq!(storage.read(sale(5)).await.unwrap(), snapshot);
    storage.append(sale(5), tail).await.unwrap();
    assert_eq!(
        storage.read(sale(5)).await.unwrap(),
        [snapshot.as_slice(), tail].concat()
    );
    assert_eq!(storage.sales().await.unwrap(), vec![sale(5)]);
    // A snapshot beyond the journal's end is refused, and changes nothing.
    assert!(storage.snapshot(sale(5), 1 << 40, &snapshot).await.is_err());
    assert_eq!(
        storage.read(sale(5)).await.unwrap(),
        [snapshot.as_slice(), tail].concat()
    );
}
