//! The journal's batch framing, pure: [`frame`] cuts one append into
//! records, [`claim`] makes a writer's claim, [`Assembler`] puts records
//! read back into the journal.
//!
//! A batch record is `{"seq":S,"part":P,"parts":N,"epoch":E,"events":[…]}`:
//! part `P` of `N` of the batch appended when the journal held `S` events,
//! by the writer that claimed the journal with epoch `E`. Replay keeps a
//! batch only when all its parts arrived in order (an append cut short by a
//! crash is dropped when the next batch starts) and only once (a batch
//! written again by a retried append no longer has `seq` = journal length).
//!
//! A snapshot batch is framed the same with `"snapshot":true`: once whole,
//! its events *replace* the journal (an engine's snapshot of it), and its
//! epoch becomes the journal's. It must follow on (`seq` = the journal's
//! length), unless it is the first thing read: the records before it may
//! have been deleted.
//!
//! A claim record is `{"claim":E}`: from there on the journal belongs to
//! the writer of epoch `E`, and records of older epochs are dropped (a
//! fenced writer's). A writer claims with one more than the highest epoch
//! it read, and acknowledges an append only when its records landed right
//! after its own previous record: then no claim came between, and replay
//! keeps them. Journals written before claims existed read as epoch 0.

use flashsale_core::Event;
use serde::Deserialize;

/// The records for one append of `events` at journal length `seq`, each
/// holding at most `max_part_bytes` of event JSON (a single larger event
/// gets a record of its own).
pub(crate) fn frame(
    seq: u64,
    epoch: u64,
    events: &[Event],
    max_part_bytes: usize,
) -> Result<Vec<Vec<u8>>, serde_json::Error> {
    frame_as(seq, epoch, false, events, max_part_bytes)
}

/// The records of a snapshot replacing a journal of length `seq`.
pub(crate) fn frame_snapshot(
    seq: u64,
    epoch: u64,
    events: &[Event],
    max_part_bytes: usize,
) -> Result<Vec<Vec<u8>>, serde_json::Error> {
    frame_as(seq, epoch, true, events, max_part_bytes)
}

fn frame_as(
    seq: u64,
    epoch: u64,
    snapshot: bool,
    events: &[Event],
    max_part_bytes: usize,
) -> Result<Vec<Vec<u8>>, serde_json::Error> {
    let encoded: Vec<Vec<u8>> = events
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<_, _>>()?;
    let mut parts: Vec<Vec<&[u8]>> = vec![Vec::new()];
    let mut size = 0;
    for e in &encoded {
        if parts.last().is_some_and(|p| !p.is_empty()) && size + e.len() > max_part_bytes {
            parts.push(Vec::new());
            size = 0;
        }
        size += e.len() + 1;
        if let Some(last) = parts.last_mut() {
            last.push(e);
        }
    }
    let count = parts.len();
    Ok(parts
        .iter()
        .enumerate()
        .map(|(i, events)| {
            let kind = if snapshot { r#""snapshot":true,"# } else { "" };
            let mut value = format!(
                r#"{{{kind}"seq":{seq},"part":{i},"parts":{count},"epoch":{epoch},"events":["#
            )
            .into_bytes();
            for (j, e) in events.iter().enumerate() {
                if j > 0 {
                    value.push(b',');
                }
                value.extend_from_slice(e);
            }
            value.extend_from_slice(b"]}");
            value
        })
        .collect())
}

/// The record by which a writer takes the journal with `epoch`.
pub(crate) fn claim(epoch: u64) -> Vec<u8> {
    format!(r#"{{"claim":{epoch}}}"#).into_bytes()
}

/// The record by which the writer of `epoch` says it is alive while it
/// has nothing to append (on the sale's beats topic: a standby takes over
/// when records stop coming there and on the journal). Replay passes over
/// one found on the journal (older versions wrote them there).
pub(crate) fn beat(epoch: u64) -> Vec<u8> {
    format!(r#"{{"beat":{epoch}}}"#).into_bytes()
}

/// One record, as read back: a claim, a beat, or a part of a batch.
#[derive(Deserialize)]
struct Record {
    claim: Option<u64>,
    beat: Option<u64>,
    seq: Option<u64>,
    part: Option<u32>,
    parts: Option<u32>,
    #[serde(default)]
    epoch: u64,
    #[serde(default)]
    snapshot: bool,
    #[serde(default)]
    events: Vec<Event>,
}

/// A part of a batch.
struct Part {
    seq: u64,
    part: u32,
    parts: u32,
    events: Vec<Event>,
}

/// The batch being put together.
#[derive(Debug)]
struct Pending {
    seq: u64,
    next: u32,
    epoch: u64,
    snapshot: bool,
    events: Vec<Event>,
}

/// What a record did to the journal, when it was not simply taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Note {
    /// A batch whose parts did not all arrive was dropped.
    DroppedIncomplete,
    /// A batch written twice was kept once.
    SkippedDuplicate,
    /// A record that does not continue the batch being read was dropped,
    /// with that batch.
    DroppedOutOfBatch,
    /// A record of a fenced writer (an epoch older than the latest claim)
    /// was dropped.
    DroppedFenced,
}

/// Rebuilds a journal from its records, in order.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    journal: Vec<Event>,
    /// The latest claim's (or snapshot's) epoch (0 before any).
    epoch: u64,
    /// Whether any batch has been taken in (a snapshot read first may
    /// follow deleted records).
    started: bool,
    /// The batch being put together.
    pending: Option<Pending>,
}

impl Assembler {
    /// Takes the next record; an error if it is not a journal record.
    pub(crate) fn push(&mut self, record: &[u8]) -> Result<Option<Note>, serde_json::Error> {
        let record: Record = serde_json::from_slice(record)?;
        if let Some(epoch) = record.claim {
            if epoch <= self.epoch {
                return Ok(None); // a claim that lost the race to a later one
            }
            self.epoch = epoch;
            // A batch cut short by the claim is the fenced writer's.
            return Ok(self.pending.take().map(|_| Note::DroppedIncomplete));
        }
        if record.beat.is_some() {
            return Ok(None);
        }
        let (Some(seq), Some(part), Some(parts)) = (record.seq, record.part, record.parts) else {
            return Err(serde::de::Error::custom(
                "neither a claim nor a journal batch",
            ));
        };
        if record.epoch < self.epoch {
            return Ok(Some(Note::DroppedFenced));
        }
        let part = Part {
            seq,
            part,
            parts,
            events: record.events,
        };
        let mut note = None;
        if part.part == 0 {
            if self.pending.is_some() {
                note = Some(Note::DroppedIncomplete);
            }
            self.pending = Some(Pending {
                seq: part.seq,
                next: 0,
                epoch: record.epoch,
                snapshot: record.snapshot,
                events: Vec::new(),
            });
        }
        match &mut self.pending {
            Some(p)
                if p.seq == part.seq && p.next == part.part && p.snapshot == record.snapshot =>
            {
                p.events.extend(part.events);
                p.next += 1;
                if p.next == part.parts {
                    let follows = p.seq == self.journal.len() as u64;
                    if p.snapshot && (follows || !self.started) {
                        self.journal = std::mem::take(&mut p.events);
                        self.epoch = self.epoch.max(p.epoch);
                    } else if follows && !p.snapshot {
                        self.journal.append(&mut p.events);
                    } else {
                        note = Some(Note::SkippedDuplicate);
                    }
                    self.started = true;
                    self.pending = None;
                }
            }
            _ => {
                note = Some(Note::DroppedOutOfBatch);
                self.pending = None;
            }
        }
        Ok(note)
    }

    /// The latest claim's epoch so far (0 before any).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The journal: every complete batch that followed on. A batch still
    /// incomplete at the end is left out.
    pub(crate) fn finish(self) -> Vec<Event> {
        self.journal
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

    use super::*;
    use flashsale_core::testkit::sample_journal;

    fn journal(buyers: usize) -> Vec<Event> {
        sample_journal("030303030303030303030303".parse().unwrap(), buyers)
    }

    fn replay(records: &[Vec<u8>]) -> (Vec<Event>, Vec<Note>) {
        let mut a = Assembler::default();
        let notes = records.iter().filter_map(|r| a.push(r).unwrap()).collect();
        (a.finish(), notes)
    }

    #[test]
    fn batches_cut_into_parts_come_back_whole() {
        let events = journal(40);
        let (first, rest) = events.split_at(5);
        let mut records = frame(0, 0, first, 1 << 20).unwrap();
        let big = frame(5, 0, rest, 600).unwrap();
        assert!(big.len() > 3, "600-byte parts: {} records", big.len());
        records.extend(big);
        assert_eq!(replay(&records), (events, vec![]));
    }

    #[test]
    fn a_batch_cut_short_is_dropped_and_a_retried_one_kept_once() {
        let events = journal(20);
        let (a, b) = events.split_at(6);
        let first = frame(0, 0, a, 1 << 20).unwrap();
        let second = frame(6, 0, b, 400).unwrap();
        assert!(second.len() > 1);
        let mut records = first.clone();
        // The writer died after the first part of the second batch…
        records.push(second[0].clone());
        // …and its retry wrote it whole; then the first batch came again.
        records.extend(second.iter().cloned());
        records.extend(first);
        let (replayed, notes) = replay(&records);
        assert_eq!(replayed, events);
        assert_eq!(notes, vec![Note::DroppedIncomplete, Note::SkippedDuplicate]);
        // A tail cut short at the end is left out.
        let (tail, _) = replay(&second[..1]);
        assert!(tail.is_empty());
        // A part out of place is dropped with its batch.
        let (out_of_place, notes) = replay(&[second[1].clone()]);
        assert!(out_of_place.is_empty());
        assert_eq!(notes, vec![Note::DroppedOutOfBatch]);
    }

    #[test]
    fn a_claim_fences_the_writers_before_it() {
        let events = journal(30);
        let (a, rest) = events.split_at(6);
        let (b, c) = rest.split_at(6);
        let mut records = vec![claim(1)];
        records.extend(frame(0, 1, a, 1 << 20).unwrap());
        // Writer 1's next batch is cut by writer 2's claim…
        let cut = frame(6, 1, b, 300).unwrap();
        assert!(cut.len() > 1);
        records.push(cut[0].clone());
        records.push(claim(2));
        records.extend(cut[1..].iter().cloned());
        // …writer 1 goes on unaware; a stale claim or a beat changes nothing.
        records.extend(frame(6, 1, c, 1 << 20).unwrap());
        records.push(claim(1));
        records.push(beat(2));
        // Writer 2 appends what it decided.
        records.extend(frame(6, 2, b, 1 << 20).unwrap());
        let mut assembler = Assembler::default();
        let notes: Vec<Note> = records
            .iter()
            .filter_map(|r| assembler.push(r).unwrap())
            .collect();
        assert_eq!(assembler.epoch(), 2);
        assert_eq!(assembler.finish(), [a, b].concat());
        let mut expected = vec![Note::DroppedIncomplete];
        expected.extend(std::iter::repeat_n(Note::DroppedFenced, cut.len()));
        assert_eq!(notes, expected);
    }

    #[test]
    fn a_snapshot_replaces_the_journal_and_what_follows_goes_on_from_it() {
        let events = journal(40);
        let (a, rest) = events.split_at(20);
        let (b, c) = rest.split_at(10);
        // Stand-ins: any events do; the framing does not replay them.
        let snapshot = &events[..5];
        let mut records = vec![claim(1)];
        records.extend(frame(0, 1, a, 1 << 20).unwrap());
        records.extend(frame(20, 1, b, 1 << 20).unwrap());
        let snap = frame_snapshot(30, 1, snapshot, 300).unwrap();
        assert!(snap.len() > 1);
        let after = frame(5, 1, c, 1 << 20).unwrap();
        // Whole: replaces, and the next batch follows the snapshot's length.
        let mut all = records.clone();
        all.extend(snap.iter().cloned());
        all.extend(after.iter().cloned());
        assert_eq!(replay(&all).0, [snapshot, c].concat());
        // The records before it deleted: read first, it is the journal.
        let mut tail = snap.clone();
        tail.extend(after.iter().cloned());
        let mut assembler = Assembler::default();
        for r in &tail {
            assembler.push(r).unwrap();
        }
        assert_eq!(
            assembler.epoch(),
            1,
            "the snapshot's epoch fences older writers"
        );
        assert_eq!(assembler.finish(), [snapshot, c].concat());
        // Cut short (a crash while writing it): the journal is as before.
        let mut cut = records.clone();
        cut.push(snap[0].clone());
        assert_eq!(replay(&cut).0, [a, b].concat());
        // Written again later (a retried write): kept once, not replayed
        // over what came after.
        let mut twice = all.clone();
        twice.extend(snap.iter().cloned());
        assert_eq!(replay(&twice).0, [snapshot, c].concat());
    }

    #[test]
    fn a_record_that_is_not_a_journal_record_is_an_error() {
        let mut a = Assembler::default();
        assert!(a.push(b"{\"transactionId\":\"x\"}").is_err());
        assert!(a.push(b"not json").is_err());
    }
}
