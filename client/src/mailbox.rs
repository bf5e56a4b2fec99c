//! How work reaches the app's state: every callback (a DOM event, a timer, the mesh, the server's
//! stream, a finished request) posts a message to a [`Mailbox`], and one loop, the [`Pump`],
//! hands the messages to the state one at a time, in the order they came.
//!
//! Why a queue: callbacks re-enter. Closing the text input blurs it, which fires its `blur`
//! listener; closing a session's mesh reports its peers gone; a broadcast that finds a peer
//! hopelessly behind drops it, which reports the peers again. When each callback borrowed the
//! state itself, the one that came second found it borrowed and its work (a pen event, a peer's
//! message) was dropped. Here a callback never borrows the state: it queues its message and
//! starts the pump. A pump started while one runs returns at once; the running one takes the
//! message next. The state is borrowed only inside the pump's loop, so no borrow can fail and
//! nothing is dropped, and every message sees the state as the previous one left it.
//!
//! Timers are [`Timeout`]s and requests are [`Task`]s, owned by what waits on them: when the
//! owner goes (a session is replaced, a wait is rescheduled), so does the wait, and its message
//! is never posted.

use crate::dom::Timeout;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::{Rc, Weak};
use wasm_bindgen_futures::spawn_local;

/// Where callbacks post messages of type `M`. Cheap to clone; once the pump is gone, posting
/// does nothing.
pub struct Mailbox<M> {
    post: Rc<dyn Fn(M)>,
}

impl<M> Clone for Mailbox<M> {
    fn clone(&self) -> Self {
        Mailbox {
            post: self.post.clone(),
        }
    }
}

impl<M: 'static> Mailbox<M> {
    /// Queues `message` and runs the pump unless it is running already.
    pub fn post(&self, message: M) {
        (self.post)(message);
    }

    /// A mailbox for a part of the app: its messages arrive here wrapped by `wrap`.
    pub fn map<N: 'static>(&self, wrap: fn(N) -> M) -> Mailbox<N> {
        let to = self.clone();
        Mailbox {
            post: Rc::new(move |message| to.post(wrap(message))),
        }
    }

    /// A callback that posts what `message` makes of its argument.
    pub fn hook<A>(&self, message: impl Fn(A) -> M + 'static) -> impl Fn(A) + 'static {
        let to = self.clone();
        move |a| to.post(message(a))
    }

    /// Posts `message` in `ms` milliseconds, unless the handle is dropped first.
    pub fn post_after(&self, ms: i32, message: M) -> Timeout {
        let to = self.clone();
        Timeout::new(ms, move || to.post(message))
    }

    /// Runs `work` and posts the message it ends with, however long that takes (a save, the
    /// load: nothing makes their outcome moot).
    pub fn spawn(&self, work: impl Future<Output = M> + 'static) {
        let to = self.clone();
        spawn_local(async move { to.post(work.await) });
    }
}

/// Work under way whose message is wanted only while this handle lives: dropping it cancels
/// the delivery. (The work itself runs on: a `fetch` cannot be taken back.)
pub struct Task {
    wanted: Rc<()>,
}

impl Task {
    /// Runs `work` and posts its message to `mailbox` if the handle still lives by then.
    pub fn spawn<M: 'static>(
        mailbox: &Mailbox<M>,
        work: impl Future<Output = M> + 'static,
    ) -> Task {
        let wanted = Rc::new(());
        let (still, to) = (Rc::downgrade(&wanted), mailbox.clone());
        spawn_local(async move {
            let message = work.await;
            if still.strong_count() > 0 {
                to.post(message);
            }
        });
        Task { wanted }
    }

    /// True until the work has ended (its message posted, or not wanted).
    pub fn is_running(&self) -> bool {
        Rc::weak_count(&self.wanted) > 0
    }
}

/// The queue of messages and the state they are for, run by one loop.
pub struct Pump<S, M> {
    queue: RefCell<VecDeque<M>>,
    running: Cell<bool>,
    state: RefCell<S>,
    handle: fn(&mut S, M),
}

impl<S: 'static, M: 'static> Pump<S, M> {
    /// A pump whose state `make` builds, given the mailbox its callbacks post to; `handle`
    /// takes each message. (`make` runs before the pump exists: it builds, and posts nothing.)
    pub fn new(make: impl FnOnce(Mailbox<M>) -> S, handle: fn(&mut S, M)) -> Rc<Self> {
        Rc::new_cyclic(|me: &Weak<Self>| Pump {
            queue: RefCell::new(VecDeque::new()),
            running: Cell::new(false),
            state: RefCell::new(make(Self::mailbox_of(me.clone()))),
            handle,
        })
    }

    /// Where to post to this pump.
    pub fn mailbox(self: &Rc<Self>) -> Mailbox<M> {
        Self::mailbox_of(Rc::downgrade(self))
    }

    fn mailbox_of(pump: Weak<Self>) -> Mailbox<M> {
        Mailbox {
            post: Rc::new(move |message| {
                if let Some(pump) = pump.upgrade() {
                    pump.post(message);
                }
            }),
        }
    }

    /// Queues `message`; unless the pump is running already (this is a callback it caused),
    /// handles everything queued, in order.
    pub fn post(&self, message: M) {
        self.queue.borrow_mut().push_back(message);
        if self.running.replace(true) {
            return;
        }
        // Only this outermost call borrows the state, and holds it until the queue is empty.
        let mut state = self.state.borrow_mut();
        loop {
            // Popped in a statement of its own: the queue is free while the message is handled.
            let next = self.queue.borrow_mut().pop_front();
            let Some(message) = next else {
                break;
            };
            (self.handle)(&mut state, message);
        }
        drop(state);
        self.running.set(false);
    }
}
