//! How far delivery has got: what the checkpoint records.
//!
//! Every update the exporter decides on is tracked in decision order. An exported occurrence
//! is pending until every receiver it was routed to has finished with it (sent, given up after
//! retries, or dropped: all three are counted by the dispatcher, and none is sent again). The
//! dispatcher's deliveries share the event's `Arc`; the tracker keeps only a `Weak`, so
//! "finished" is "no delivery holds the event any more" and the tracker never keeps an event
//! alive.
//!
//! A stream's **watermark** is the resourceVersion of its latest update such that it and every
//! update decided before it have finished. Finished occurrences — those the watermark has passed
//! and those that finished out of order (a fast receiver ahead of a slow one) — are remembered,
//! the last few thousand of them, as the checkpoint's **recent** list, so that a restart skips
//! them too.
//!
//! Memory is bounded by what is unfinished (itself bounded by the receivers' queues): an entry
//! that finished behind an unfinished one gives up its event and collapses with its finished
//! neighbours into one marker ([`advance`](Progress::advance)).

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use event_exporter_core::EnrichedEvent;

use crate::occurrence::UidKey;

#[derive(Debug)]
struct Pending {
    stream: usize,
    /// The watermark this entry moves its stream to once it and everything before it finished.
    rv: Option<u64>,
    /// The occurrence, when one was exported.
    key: Option<(UidKey, u32)>,
    /// The event its deliveries share; `None` for entries finished at once.
    event: Option<Weak<EnrichedEvent>>,
}

impl Pending {
    fn finished(&self) -> bool {
        self.event.as_ref().is_none_or(|w| w.strong_count() == 0)
    }
}

/// The tracker (see the module docs).
#[derive(Debug)]
pub struct Progress {
    pending: VecDeque<Pending>,
    watermarks: Vec<Option<u64>>,
    recent: VecDeque<(UidKey, u32)>,
    recent_capacity: usize,
}

/// What the tracker knows, for a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProgressSnapshot {
    /// Each stream's watermark.
    pub watermarks: Vec<Option<u64>>,
    /// Finished occurrences that a restart must not send again.
    pub recent: Vec<(UidKey, u32)>,
    /// Occurrences still being delivered.
    pub pending: usize,
}

impl Progress {
    /// A tracker for streams starting at `watermarks` (from the checkpoint), remembering up to
    /// `recent_capacity` finished occurrences.
    pub fn new(watermarks: Vec<Option<u64>>, recent_capacity: usize) -> Self {
        Self {
            pending: VecDeque::new(),
            watermarks,
            recent: VecDeque::new(),
            recent_capacity,
        }
    }

    /// An exported occurrence, delivered through `event`'s clones (drop your own `Arc` once
    /// the dispatcher has it). `rv` is `None` during a list, where it must not move the
    /// watermark by itself (see [`listed`](Self::listed)).
    pub fn exported(
        &mut self,
        stream: usize,
        rv: Option<u64>,
        key: (UidKey, u32),
        event: &Arc<EnrichedEvent>,
    ) {
        self.pending.push_back(Pending {
            stream,
            rv,
            key: Some(key),
            event: Some(Arc::downgrade(event)),
        });
    }

    /// An update that needed no delivery (a duplicate, or nothing routed it anywhere): it
    /// moves its stream's watermark to `rv` once everything before it has finished.
    pub fn skipped(&mut self, stream: usize, rv: Option<u64>) {
        let Some(rv) = rv else { return };
        if self.pending.is_empty() {
            self.raise(stream, rv);
            return;
        }
        if let Some(back) = self.pending.back_mut()
            && back.stream == stream
            && back.event.is_none()
            && back.key.is_none()
        {
            back.rv = Some(back.rv.map_or(rv, |r| r.max(rv)));
            return;
        }
        self.pending.push_back(Pending {
            stream,
            rv: Some(rv),
            key: None,
            event: None,
        });
    }

    /// A list of `stream` finished: once what it exported has been delivered, the stream's
    /// watermark moves to `rv` (the list's greatest resourceVersion).
    pub fn listed(&mut self, stream: usize, rv: Option<u64>) {
        self.skipped(stream, rv);
    }

    fn raise(&mut self, stream: usize, rv: u64) {
        if let Some(w) = self.watermarks.get_mut(stream) {
            *w = Some(w.map_or(rv, |cur| cur.max(rv)));
        }
    }

    fn remember(&mut self, key: (UidKey, u32)) {
        if self.recent_capacity == 0 {
            return;
        }
        if self.recent.len() == self.recent_capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(key);
    }

    /// Retires finished entries from the front, and collapses the finished ones behind an
    /// unfinished entry into markers (their occurrences remembered, their events released).
    pub fn advance(&mut self) {
        while self.pending.front().is_some_and(Pending::finished) {
            let Some(done) = self.pending.pop_front() else {
                break;
            };
            if let Some(rv) = done.rv {
                self.raise(done.stream, rv);
            }
            if let Some(key) = done.key {
                self.remember(key);
            }
        }
        if self
            .pending
            .iter()
            .skip(1)
            .any(|p| p.event.is_some() && p.finished())
        {
            let mut kept: VecDeque<Pending> = VecDeque::with_capacity(self.pending.len());
            for mut p in std::mem::take(&mut self.pending) {
                if p.finished() {
                    if let Some(key) = p.key.take() {
                        self.remember(key);
                    }
                    p.event = None;
                    if let Some(back) = kept.back_mut()
                        && back.stream == p.stream
                        && back.event.is_none()
                        && back.key.is_none()
                    {
                        back.rv = back.rv.max(p.rv);
                        continue;
                    }
                }
                kept.push_back(p);
            }
            self.pending = kept;
        }
    }

    /// Occurrences still being delivered.
    pub fn pending(&self) -> usize {
        self.pending.iter().filter(|p| !p.finished()).count()
    }

    /// What a checkpoint written now records.
    pub fn snapshot(&mut self) -> ProgressSnapshot {
        self.advance();
        ProgressSnapshot {
            watermarks: self.watermarks.clone(),
            recent: self.recent.iter().copied().collect(),
            pending: self.pending(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Arc<EnrichedEvent> {
        Arc::new(EnrichedEvent::default())
    }

    #[test]
    fn the_watermark_waits_for_the_slowest_delivery() {
        let mut p = Progress::new(vec![Some(10)], 100);
        let slow = event();
        let fast = event();
        p.exported(0, Some(11), (UidKey(1), 1), &slow);
        p.skipped(0, Some(12));
        p.exported(0, Some(13), (UidKey(2), 1), &fast);
        drop(fast);
        let s = p.snapshot();
        assert_eq!(s.watermarks, vec![Some(10)]);
        assert_eq!(s.recent, vec![(UidKey(2), 1)], "finished out of order");
        assert_eq!(s.pending, 1);
        drop(slow);
        let s = p.snapshot();
        assert_eq!(s.watermarks, vec![Some(13)]);
        assert_eq!(s.recent, vec![(UidKey(2), 1), (UidKey(1), 1)]);
        assert_eq!(s.pending, 0);
    }

    #[test]
    fn a_list_moves_the_watermark_only_when_done() {
        let mut p = Progress::new(vec![None, Some(5)], 100);
        let e = event();
        p.exported(0, None, (UidKey(1), 1), &e);
        p.listed(0, Some(40));
        p.skipped(1, Some(41));
        assert_eq!(p.snapshot().watermarks, vec![None, Some(5)]);
        drop(e);
        assert_eq!(p.snapshot().watermarks, vec![Some(40), Some(41)]);
    }

    #[test]
    fn finished_entries_behind_a_stuck_one_release_their_events() {
        let mut p = Progress::new(vec![Some(0)], 1000);
        let stuck = event();
        p.exported(0, Some(1), (UidKey(0), 1), &stuck);
        for i in 1..=500u64 {
            let e = event();
            p.exported(0, Some(i + 1), (UidKey(u128::from(i)), 1), &e);
        }
        let s = p.snapshot();
        assert_eq!(p.pending.len(), 2, "the stuck entry and one marker");
        assert_eq!(s.pending, 1);
        assert_eq!(s.recent.len(), 500);
        assert_eq!(s.watermarks, vec![Some(0)]);
        drop(stuck);
        assert_eq!(p.snapshot().watermarks, vec![Some(501)]);
    }

    #[test]
    fn skips_collapse_and_recent_is_bounded() {
        let mut p = Progress::new(vec![Some(0)], 3);
        let e = event();
        p.exported(0, Some(1), (UidKey(9), 1), &e);
        for rv in 2..10_000 {
            p.skipped(0, Some(rv));
        }
        assert_eq!(p.pending.len(), 2);
        drop(e);
        for i in 0..10u128 {
            let e = event();
            p.exported(0, Some(10_000 + i as u64), (UidKey(i), 1), &e);
        }
        let s = p.snapshot();
        assert_eq!(s.watermarks, vec![Some(10_009)]);
        assert_eq!(s.recent.len(), 3);
    }
}
