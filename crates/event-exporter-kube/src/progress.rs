//! How far delivery has got: what the checkpoint records.
//!
//! The tracker sees every update the exporter decides on, in decision order, once it has been
//! handed to the dispatcher (exported) or needed no delivery (skipped). It records, per watch
//! stream:
//!
//! * a **mark**: the resourceVersion up to which every update of the stream has been handled —
//!   delivered, skipped, or **pending**. The live watch is in resourceVersion order, so each
//!   update moves the mark at once; a list is not, so an update seen during a list moves it only
//!   when the whole list has been handled ([`listed`](Progress::listed));
//! * the **pending** occurrences: exported, not finished, with the receivers that have not
//!   finished them. A delivery is finished when its receiver has sent it, given up after
//!   retries, or dropped it (all three are counted by the dispatcher, and none is sent again):
//!   when the dispatcher lets go of it, which its [`Receipt`](event_exporter_core::sink::Receipt)
//!   records on the event's [`ReceiptBoard`]. The tracker never keeps an event alive. Their
//!   number is bounded by the receivers' queues;
//! * the **list-handled** resourceVersions: of the objects a list that has not ended yet
//!   exported and finished (above the stream's mark until the list ends). A resourceVersion
//!   names one version of one object, so a restart's relist skips exactly those objects that
//!   have not changed since (at most [`MAX_LIST_HANDLED`] per stream; the checkpoint stores them
//!   as ranges).
//!
//! A restart skips what is at or below the mark unless it is pending, and what is uncovered.
//! One slow receiver therefore holds back nothing but its own pending deliveries: the mark
//! keeps moving, and memory stays bounded by the queues, whatever the number of updates.
//!
//! The tracker also keeps, for the checkpoint, the last `recent_capacity` finished occurrences
//! (a restart's filter remembers them, so an update that is not a new occurrence is not sent
//! again), the pending occurrences it was started with until this term has listed every stream
//! (they are exported again by then), and each stream's first-start age cut-off until its first
//! list has been handled.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use event_exporter_core::ReceiverId;
use event_exporter_core::sink::ReceiptBoard;
use smallvec::SmallVec;

use crate::occurrence::UidKey;

/// List-handled resourceVersions a stream keeps at most (see the module docs): a catch-up
/// larger than this, stopped part-way, may repeat some of what it delivered.
pub const MAX_LIST_HANDLED: usize = 50_000;

/// The receivers an occurrence was dispatched to.
pub type Receivers = SmallVec<[ReceiverId; 8]>;

/// An occurrence that is not finished: its key, and the receivers that still owe it (empty, in
/// what a checkpoint carried: every receiver it is routed to).
pub type Owed = ((UidKey, u32), Vec<ReceiverId>);

/// Where a tracker starts: what the checkpoint recorded (all empty without one).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// Each stream's mark.
    pub marks: Vec<Option<u64>>,
    /// The first-start age cut-offs of the streams without a mark.
    pub cutoffs: Vec<Option<i64>>,
    /// The pending occurrences.
    pub pending: Vec<Owed>,
    /// Each stream's list-handled resourceVersions.
    pub list_handled: Vec<BTreeSet<u64>>,
    /// The recently finished occurrences.
    pub recent: Vec<(UidKey, u32)>,
}

/// An exported occurrence not known to be finished yet.
#[derive(Debug)]
struct Unfinished {
    stream: usize,
    /// Exported during a list: the number of lists of its stream handled before it, and the
    /// object's resourceVersion.
    during_list: Option<(u64, Option<u64>)>,
    key: (UidKey, u32),
    board: Arc<ReceiptBoard>,
    receivers: Receivers,
}

impl Unfinished {
    fn finished(&self) -> bool {
        self.board.all_done()
    }

    fn owed(&self) -> Owed {
        let mut owed: Vec<ReceiverId> = self
            .receivers
            .iter()
            .enumerate()
            .filter(|(slot, _)| !self.board.is_done(*slot))
            .map(|(_, id)| *id)
            .collect();
        owed.sort_unstable();
        owed.dedup();
        (self.key, owed)
    }
}

/// The tracker (see the module docs).
#[derive(Debug)]
pub struct Progress {
    marks: Vec<Option<u64>>,
    lists_done: Vec<u64>,
    cutoffs: Vec<Option<i64>>,
    unfinished: Vec<Unfinished>,
    list_handled: Vec<BTreeSet<u64>>,
    recent: VecDeque<(UidKey, u32)>,
    recent_capacity: usize,
    carried: HashMap<UidKey, (u32, Vec<ReceiverId>)>,
}

/// What the tracker knows, for a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProgressSnapshot {
    /// Each stream's mark.
    pub watermarks: Vec<Option<u64>>,
    /// The most recently finished occurrences.
    pub recent: Vec<(UidKey, u32)>,
    /// Per stream, the resourceVersions of what a list under way exported and finished.
    pub list_handled: Vec<Vec<u64>>,
    /// Occurrences that are not finished, with the receivers that owe them: a restart sends
    /// them to those receivers.
    pub pending: Vec<Owed>,
    /// Each stream's first-start age cut-off (Unix ms), while its first list is under way.
    pub cutoffs: Vec<Option<i64>>,
}

impl Progress {
    /// A tracker resuming from `resume` (its pending occurrences are carried until exported
    /// again or every stream has listed), remembering at most `recent_capacity` finished
    /// occurrences.
    pub fn new(resume: Resume, recent_capacity: usize) -> Self {
        let Resume {
            marks,
            mut cutoffs,
            pending,
            mut list_handled,
            recent,
        } = resume;
        let streams = marks.len();
        list_handled.resize_with(streams, BTreeSet::new);
        cutoffs.resize(streams, None);
        let carried_map = pending
            .into_iter()
            .map(|((k, n), owed)| (k, (n, owed)))
            .collect();
        let skip = recent.len().saturating_sub(recent_capacity);
        let recent = recent.into_iter().skip(skip).collect();
        Self {
            marks,
            lists_done: vec![0; streams],
            cutoffs,
            unfinished: Vec::new(),
            list_handled,
            recent,
            recent_capacity,
            carried: carried_map,
        }
    }

    /// An exported occurrence: dispatched to `receivers`, whose deliveries mark `board`. `rv`
    /// is `None` during a list, where it must not move the mark by itself (see
    /// [`listed`](Self::listed)); `list_rv` is then the object's resourceVersion.
    pub fn exported(
        &mut self,
        stream: usize,
        rv: Option<u64>,
        list_rv: Option<u64>,
        key: (UidKey, u32),
        board: Arc<ReceiptBoard>,
        receivers: Receivers,
    ) {
        if let Some(rv) = rv {
            self.raise(stream, rv);
        }
        if self.carried.get(&key.0).is_some_and(|(n, _)| *n <= key.1) {
            self.carried.remove(&key.0);
        }
        let during_list = match rv {
            Some(_) => None,
            None => Some((
                self.lists_done.get(stream).copied().unwrap_or_default(),
                list_rv,
            )),
        };
        self.unfinished.push(Unfinished {
            stream,
            during_list,
            key,
            board,
            receivers,
        });
    }

    /// An update that needed no delivery (a duplicate, or nothing routed it anywhere).
    pub fn skipped(&mut self, stream: usize, rv: Option<u64>) {
        if let Some(rv) = rv {
            self.raise(stream, rv);
        }
    }

    /// A list of `stream` has been handled to its end: its mark moves to `rv` (the list's
    /// greatest resourceVersion), and what it exported is covered by the mark from now on
    /// (pending until finished).
    pub fn listed(&mut self, stream: usize, rv: Option<u64>) {
        if let Some(rv) = rv {
            self.raise(stream, rv);
        }
        let Some(done) = self.lists_done.get_mut(stream) else {
            return;
        };
        *done += 1;
        if let Some(handled) = self.list_handled.get_mut(stream) {
            handled.clear();
        }
        if let Some(c) = self.cutoffs.get_mut(stream) {
            *c = None;
        }
        if self.lists_done.iter().all(|done| *done > 0) {
            // Every carried occurrence that still exists has been listed, and exported again.
            self.carried.clear();
        }
    }

    fn raise(&mut self, stream: usize, rv: u64) {
        if let Some(w) = self.marks.get_mut(stream) {
            *w = Some(w.map_or(rv, |cur| cur.max(rv)));
        }
    }

    fn remember(recent: &mut VecDeque<(UidKey, u32)>, capacity: usize, key: (UidKey, u32)) {
        if capacity == 0 {
            return;
        }
        if recent.len() == capacity {
            recent.pop_front();
        }
        recent.push_back(key);
    }

    /// Retires the finished occurrences: remembered as recent (and as list-handled when their
    /// list is still under way).
    pub fn advance(&mut self) {
        let Self {
            unfinished,
            list_handled,
            recent,
            recent_capacity,
            lists_done,
            ..
        } = self;
        unfinished.retain(|u| {
            if !u.finished() {
                return true;
            }
            Self::remember(recent, *recent_capacity, u.key);
            if let Some((epoch, Some(rv))) = u.during_list
                && lists_done.get(u.stream).is_some_and(|done| *done == epoch)
                && let Some(handled) = list_handled.get_mut(u.stream)
                && handled.len() < MAX_LIST_HANDLED
            {
                handled.insert(rv);
            }
            false
        });
    }

    /// Occurrences still being delivered.
    pub fn pending(&self) -> usize {
        self.unfinished.iter().filter(|u| !u.finished()).count()
    }

    /// What a checkpoint written now records.
    pub fn snapshot(&mut self) -> ProgressSnapshot {
        self.advance();
        // A delivery may finish meanwhile: an entry nobody owes any more is not pending.
        let mut pending: Vec<Owed> = self
            .unfinished
            .iter()
            .map(Unfinished::owed)
            .filter(|(_, owed)| !owed.is_empty())
            .collect();
        pending.extend(
            self.carried
                .iter()
                .map(|(k, (n, owed))| ((*k, *n), owed.clone())),
        );
        ProgressSnapshot {
            watermarks: self.marks.clone(),
            recent: self.recent.iter().copied().collect(),
            list_handled: self
                .list_handled
                .iter()
                .map(|h| h.iter().copied().collect())
                .collect(),
            pending,
            cutoffs: self.cutoffs.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use event_exporter_core::sink::Receipt;

    /// Exports `key` to receivers 0 and 1: their receipts, to drop when they finish. During a
    /// list (`rv` `None`), the object's resourceVersion is 1000 + its uid key.
    fn export(
        p: &mut Progress,
        stream: usize,
        rv: Option<u64>,
        key: (UidKey, u32),
    ) -> Vec<Receipt> {
        let board = ReceiptBoard::new(2);
        let receipts = vec![board.receipt(0), board.receipt(1)];
        let receivers = [ReceiverId(0), ReceiverId(1)].into_iter().collect();
        let list_rv = rv.is_none().then(|| 1000 + u64::try_from(key.0.0).unwrap());
        p.exported(stream, rv, list_rv, key, board, receivers);
        receipts
    }

    const BOTH: [ReceiverId; 2] = [ReceiverId(0), ReceiverId(1)];

    fn tracker(marks: Vec<Option<u64>>, capacity: usize) -> Progress {
        Progress::new(
            Resume {
                marks,
                ..Resume::default()
            },
            capacity,
        )
    }

    #[test]
    fn the_mark_moves_and_a_slow_delivery_stays_pending() {
        let mut p = tracker(vec![Some(10)], 100);
        let slow = export(&mut p, 0, Some(11), (UidKey(1), 1));
        p.skipped(0, Some(12));
        let fast = export(&mut p, 0, Some(13), (UidKey(2), 1));
        drop(fast);
        let s = p.snapshot();
        assert_eq!(s.watermarks, vec![Some(13)]);
        assert_eq!(s.pending, vec![((UidKey(1), 1), BOTH.to_vec())]);
        assert_eq!(s.recent, vec![(UidKey(2), 1)]);
        drop(slow);
        let s = p.snapshot();
        assert_eq!(s.pending, vec![]);
        assert_eq!(s.recent, vec![(UidKey(2), 1), (UidKey(1), 1)]);
    }

    #[test]
    fn a_list_moves_the_mark_only_at_its_end() {
        let mut p = tracker(vec![None, Some(5)], 100);
        let e = export(&mut p, 0, None, (UidKey(1), 1));
        let done = export(&mut p, 0, None, (UidKey(2), 1));
        drop(done);
        p.skipped(1, Some(41));
        let s = p.snapshot();
        assert_eq!(s.watermarks, vec![None, Some(41)]);
        assert_eq!(s.pending, vec![((UidKey(1), 1), BOTH.to_vec())]);
        assert_eq!(s.recent, vec![(UidKey(2), 1)]);
        assert_eq!(s.list_handled, vec![vec![1002_u64], vec![]]);
        p.listed(0, Some(40));
        let s = p.snapshot();
        assert_eq!(s.watermarks, vec![Some(40), Some(41)]);
        assert_eq!(
            s.pending,
            vec![((UidKey(1), 1), BOTH.to_vec())],
            "covered by the mark, still pending"
        );
        assert_eq!(
            s.list_handled,
            vec![Vec::<u64>::new(); 2],
            "covered by the mark"
        );
        drop(e);
        let s = p.snapshot();
        assert_eq!(s.recent, vec![(UidKey(2), 1), (UidKey(1), 1)]);
        assert_eq!(
            s.list_handled,
            vec![Vec::<u64>::new(); 2],
            "finished after its list ended"
        );
    }

    #[test]
    fn one_stuck_delivery_holds_back_nothing_else_and_memory_stays_flat() {
        // Two streams interleaving behind one delivery that never finishes.
        let mut p = tracker(vec![Some(0), Some(0)], 4096);
        let stuck = export(&mut p, 0, Some(1), (UidKey(u128::MAX), 1));
        for i in 0..100_000u64 {
            let stream = usize::try_from(i % 2).unwrap();
            if i % 3 == 0 {
                drop(export(
                    &mut p,
                    stream,
                    Some(2 + i),
                    (UidKey(u128::from(i)), 1),
                ));
            } else {
                p.skipped(stream, Some(2 + i));
            }
            if i % 1024 == 0 {
                p.advance();
            }
        }
        let s = p.snapshot();
        assert_eq!(s.watermarks, vec![Some(100_000), Some(100_001)]);
        assert_eq!(s.pending, vec![((UidKey(u128::MAX), 1), BOTH.to_vec())]);
        assert_eq!(p.unfinished.len(), 1);
        assert_eq!(s.recent.len(), 4096);
        drop(stuck);
    }

    #[test]
    fn pending_names_only_the_receivers_that_have_not_finished() {
        let mut p = tracker(vec![Some(0)], 10);
        let mut receipts = export(&mut p, 0, Some(1), (UidKey(7), 2));
        drop(receipts.remove(0));
        assert_eq!(
            p.snapshot().pending,
            vec![((UidKey(7), 2), vec![ReceiverId(1)])]
        );
        drop(receipts);
        assert_eq!(p.snapshot().pending, vec![]);
    }

    #[test]
    fn carried_occurrences_stay_pending_until_exported_or_every_stream_listed() {
        let mut p = Progress::new(
            Resume {
                marks: vec![Some(10), Some(20)],
                pending: vec![
                    ((UidKey(1), 3), vec![ReceiverId(1)]),
                    ((UidKey(2), 1), vec![]),
                ],
                recent: vec![(UidKey(5), 1)],
                ..Resume::default()
            },
            100,
        );
        assert_eq!(
            p.snapshot().recent,
            vec![(UidKey(5), 1)],
            "kept from the checkpoint"
        );
        let mut s = p.snapshot();
        s.pending.sort();
        assert_eq!(
            s.pending,
            vec![
                ((UidKey(1), 3), vec![ReceiverId(1)]),
                ((UidKey(2), 1), vec![])
            ]
        );
        // Exported again (its list found it): now it is tracked as any other export.
        drop(export(&mut p, 0, None, (UidKey(1), 3)));
        assert_eq!(p.snapshot().pending, vec![((UidKey(2), 1), vec![])]);
        p.listed(0, Some(15));
        assert_eq!(
            p.snapshot().pending,
            vec![((UidKey(2), 1), vec![])],
            "stream 1 has not listed"
        );
        p.listed(1, Some(25));
        assert_eq!(p.snapshot().pending, vec![], "gone from the cluster");
    }

    #[test]
    fn a_first_start_cut_off_is_kept_until_its_list_is_handled() {
        let mut p = Progress::new(
            Resume {
                marks: vec![None, Some(3)],
                cutoffs: vec![Some(1_000), None],
                ..Resume::default()
            },
            10,
        );
        assert_eq!(p.snapshot().cutoffs, vec![Some(1_000), None]);
        p.listed(0, Some(9));
        assert_eq!(p.snapshot().cutoffs, vec![None, None]);
    }

    #[test]
    fn recent_is_bounded_and_a_list_keeps_what_it_handled_until_it_ends() {
        let mut p = Progress::new(
            Resume {
                marks: vec![Some(0)],
                list_handled: vec![BTreeSet::from([7, 8])],
                ..Resume::default()
            },
            3,
        );
        for i in 0..10u128 {
            drop(export(&mut p, 0, None, (UidKey(i), 1)));
        }
        let s = p.snapshot();
        assert_eq!(s.recent.len(), 3);
        assert_eq!(s.list_handled[0].len(), 12, "the carried two and ten more");
        assert_eq!(s.pending, vec![]);
        p.listed(0, Some(2_000));
        let s = p.snapshot();
        assert_eq!(s.list_handled, vec![Vec::<u64>::new()]);
        assert_eq!(s.watermarks, vec![Some(2_000)]);
    }
}
