//! A stream's queue of events: bounded, one sender (the hub's record of the stream), one receiver
//! (the stream's task).
//!
//! Why not tokio's `mpsc`: it allocates its first block of 32 slots when the channel is made
//! (about 1.3 KiB with its header here), and open streams are most of what the server holds,
//! nearly all of them idle. This one holds a `VecDeque` that allocates on the first event and is
//! given back once drained, so an idle stream's queue is a hundred bytes.

use super::{Delivery, lock};
use futures_util::task::AtomicWaker;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// A drained queue keeps its buffer up to this many slots (a burst's worth is given back).
const KEEP_SLOTS: usize = 4;

struct Shared {
    state: Mutex<State>,
    waker: AtomicWaker,
}

struct State {
    events: VecDeque<Delivery>,
    capacity: usize,
    sender_gone: bool,
    receiver_gone: bool,
}

/// The hub's end.
pub struct Sender(Arc<Shared>);

/// The stream's end.
pub struct Receiver(Arc<Shared>);

/// Why an event was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds `capacity` events: its reader is too slow.
    Full,
    /// The stream has ended.
    Closed,
}

/// A queue of at most `capacity` events (at least one).
pub fn bounded(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            sender_gone: false,
            receiver_gone: false,
        }),
        waker: AtomicWaker::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl Sender {
    /// Queues `event` unless the queue is full or its stream has ended.
    pub fn try_send(&self, event: Delivery) -> Result<(), Refused> {
        {
            let mut state = lock(&self.0.state);
            if state.receiver_gone {
                return Err(Refused::Closed);
            }
            if state.events.len() >= state.capacity {
                return Err(Refused::Full);
            }
            state.events.push_back(event);
        }
        self.0.waker.wake();
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        lock(&self.0.state).sender_gone = true;
        self.0.waker.wake();
    }
}

impl Receiver {
    /// The next event; `None` once the sender is gone and the queue is drained.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        // Registered before looking, so a send between the look and the return still wakes us.
        self.0.waker.register(cx.waker());
        self.try_recv()
    }

    /// The next event if one is queued now, without registering to be woken (for draining a
    /// burst right after [`Receiver::poll_recv`] gave one).
    pub fn try_recv(&mut self) -> Poll<Option<Delivery>> {
        let mut state = lock(&self.0.state);
        if let Some(event) = state.events.pop_front() {
            if state.events.is_empty() && state.events.capacity() > KEEP_SLOTS {
                state.events = VecDeque::new();
            }
            return Poll::Ready(Some(event));
        }
        if state.sender_gone {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.receiver_gone = true;
        state.events = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;

    fn event(n: usize) -> Delivery {
        Delivery {
            event: "e",
            data: n.to_string().into(),
        }
    }

    fn recv(rx: &mut Receiver) -> Poll<Option<Delivery>> {
        rx.poll_recv(&mut Context::from_waker(noop_waker_ref()))
    }

    #[test]
    fn events_come_in_order_up_to_the_capacity_then_full() {
        let (tx, mut rx) = bounded(2);
        assert!(recv(&mut rx).is_pending());
        assert_eq!(tx.try_send(event(1)), Ok(()));
        assert_eq!(tx.try_send(event(2)), Ok(()));
        assert_eq!(tx.try_send(event(3)), Err(Refused::Full));
        for n in ["1", "2"] {
            match recv(&mut rx) {
                Poll::Ready(Some(d)) => assert_eq!(&*d.data, n),
                other => panic!("{other:?}"),
            }
        }
        assert!(recv(&mut rx).is_pending());
        assert_eq!(tx.try_send(event(4)), Ok(()), "room again once drained");
    }

    #[test]
    fn the_receiver_sees_the_end_after_the_last_event_and_the_sender_sees_it_gone() {
        let (tx, mut rx) = bounded(4);
        tx.try_send(event(1)).unwrap();
        drop(tx);
        assert!(matches!(recv(&mut rx), Poll::Ready(Some(_))));
        assert!(matches!(recv(&mut rx), Poll::Ready(None)));
        let (tx, rx) = bounded(4);
        drop(rx);
        assert_eq!(tx.try_send(event(1)), Err(Refused::Closed));
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_send() {
        let (tx, mut rx) = bounded(4);
        let waiting =
            tokio::spawn(async move { std::future::poll_fn(|cx| rx.poll_recv(cx)).await });
        tokio::task::yield_now().await;
        tx.try_send(event(7)).unwrap();
        let got = waiting.await.unwrap().unwrap();
        assert_eq!(&*got.data, "7");
    }

    #[test]
    fn a_drained_queue_gives_its_buffer_back() {
        let (tx, mut rx) = bounded(64);
        for n in 0..40 {
            tx.try_send(event(n)).unwrap();
        }
        while let Poll::Ready(Some(_)) = recv(&mut rx) {}
        assert_eq!(lock(&rx.0.state).events.capacity(), 0);
    }
}
