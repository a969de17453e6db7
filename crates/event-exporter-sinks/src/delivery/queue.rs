//! A receiver's bounded delivery queue. When it is full the oldest delivery is dropped (and
//! handed back so the caller counts it): fresh events matter more than stale ones, and the
//! input never waits on a slow receiver.

use std::collections::VecDeque;
use std::sync::Mutex;

use event_exporter_core::sink::Delivery;
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Delivery>,
    closed: bool,
}

/// A bounded multi-producer, single-consumer queue that drops the oldest item when full.
#[derive(Debug)]
pub struct DeliveryQueue {
    // A short critical section around a VecDeque; never held across an await.
    state: Mutex<State>,
    /// Signalled when an item is pushed (or the queue closes).
    notify: Notify,
    /// Signalled when an item is taken (or the queue closes).
    space: Notify,
    capacity: usize,
}

/// What happened to a pushed delivery.
#[derive(Debug)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued, and the oldest delivery was dropped to make room.
    DroppedOldest(Box<Delivery>),
    /// The queue is closed: the delivery was not queued.
    Closed(Box<Delivery>),
}

impl DeliveryQueue {
    /// A queue holding at most `capacity` deliveries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            space: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the deque inconsistent (every
        // operation is a single VecDeque call), so a poisoned lock is safe to keep using.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `delivery`, dropping the oldest one if the queue is full.
    pub fn push(&self, delivery: Delivery) -> Pushed {
        let outcome = {
            let mut state = self.lock();
            if state.closed {
                return Pushed::Closed(Box::new(delivery));
            }
            let dropped = if state.items.len() >= self.capacity {
                state.items.pop_front()
            } else {
                None
            };
            state.items.push_back(delivery);
            match dropped {
                Some(old) => Pushed::DroppedOldest(Box::new(old)),
                None => Pushed::Queued,
            }
        };
        self.notify.notify_one();
        outcome
    }

    /// Queues `delivery`, waiting for room instead of dropping (for replays, where every event
    /// must be delivered). Gives the delivery back if the queue is closed.
    pub async fn push_wait(&self, delivery: Delivery) -> Result<(), Box<Delivery>> {
        let mut delivery = Some(delivery);
        loop {
            let room = self.space.notified();
            {
                let mut state = self.lock();
                if let Some(d) = delivery.take() {
                    if state.closed {
                        return Err(Box::new(d));
                    }
                    if state.items.len() < self.capacity {
                        state.items.push_back(d);
                        drop(state);
                        self.notify.notify_one();
                        return Ok(());
                    }
                    delivery = Some(d);
                }
            }
            room.await;
        }
    }

    /// Queues `delivery`, waiting up to `patience` for room; after that, drops the oldest
    /// delivery as [`push`](Self::push) does. A cancelled call loses `delivery` (neither
    /// queued nor handed back): await it to completion.
    pub async fn push_within(&self, delivery: Delivery, patience: std::time::Duration) -> Pushed {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let room = self.space.notified();
            {
                let mut state = self.lock();
                if state.closed {
                    return Pushed::Closed(Box::new(delivery));
                }
                if state.items.len() < self.capacity {
                    state.items.push_back(delivery);
                    drop(state);
                    self.notify.notify_one();
                    return Pushed::Queued;
                }
            }
            tokio::select! {
                () = room => {}
                () = tokio::time::sleep_until(deadline) => return self.push(delivery),
            }
        }
    }

    /// The next delivery; `None` once the queue is closed and empty.
    pub async fn pop(&self) -> Option<Delivery> {
        loop {
            // Register interest before checking, so a push between the check and the wait
            // is not missed.
            let notified = self.notify.notified();
            {
                let mut state = self.lock();
                if let Some(d) = state.items.pop_front() {
                    drop(state);
                    self.space.notify_one();
                    return Some(d);
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Stops accepting deliveries; queued ones are still handed out.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
        self.space.notify_waiters();
    }

    /// Takes every queued delivery out (for counting what a shutdown left undelivered).
    pub fn drain(&self) -> Vec<Delivery> {
        self.lock().items.drain(..).collect()
    }

    /// Deliveries waiting.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use event_exporter_core::EnrichedEvent;

    use super::*;

    fn delivery(uid: &str) -> Delivery {
        let ev = EnrichedEvent::from_json_str(&format!(
            r#"{{"metadata":{{"uid":"{uid}"}},"involvedObject":{{}},"count":1}}"#
        ))
        .unwrap();
        Delivery::new(Arc::new(ev))
    }

    #[tokio::test]
    async fn fifo_drop_oldest_and_close() {
        let q = DeliveryQueue::new(2);
        assert!(matches!(q.push(delivery("a")), Pushed::Queued));
        assert!(matches!(q.push(delivery("b")), Pushed::Queued));
        match q.push(delivery("c")) {
            Pushed::DroppedOldest(d) => assert_eq!(d.id.uid, "a"),
            other => panic!("{other:?}"),
        }
        assert_eq!(q.len(), 2);
        q.close();
        assert!(matches!(q.push(delivery("d")), Pushed::Closed(_)));
        assert_eq!(q.pop().await.unwrap().id.uid, "b");
        assert_eq!(q.pop().await.unwrap().id.uid, "c");
        assert!(q.pop().await.is_none());
    }

    #[tokio::test]
    async fn push_wait_waits_for_room() {
        let q = Arc::new(DeliveryQueue::new(1));
        q.push_wait(delivery("a")).await.unwrap();
        let producer = tokio::spawn({
            let q = Arc::clone(&q);
            async move { q.push_wait(delivery("b")).await.is_ok() }
        });
        tokio::task::yield_now().await;
        assert_eq!(q.len(), 1, "b must wait, not drop a");
        assert_eq!(q.pop().await.unwrap().id.uid, "a");
        assert!(producer.await.unwrap());
        assert_eq!(q.pop().await.unwrap().id.uid, "b");
        q.close();
        assert!(q.push_wait(delivery("c")).await.is_err());
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let q = Arc::new(DeliveryQueue::new(4));
        let consumer = tokio::spawn({
            let q = Arc::clone(&q);
            async move { q.pop().await.map(|d| d.id.uid) }
        });
        tokio::task::yield_now().await;
        q.push(delivery("x"));
        assert_eq!(consumer.await.unwrap().as_deref(), Some("x"));
    }
}
