//! The mailbox: what a handler causes is handled after it, in order, and nothing is dropped;
//! a wait or a request whose handle is gone posts nothing.

use crate::support::sleep;
use client::dom::{Listener, Timeout};
use client::mailbox::{Mailbox, Pump, Task};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen_test::wasm_bindgen_test;

struct Log {
    seen: Rc<RefCell<Vec<String>>>,
    mailbox: Mailbox<u32>,
}

fn log(seen: &Rc<RefCell<Vec<String>>>) -> Rc<Pump<Log, u32>> {
    let seen = seen.clone();
    Pump::new(
        |mailbox| Log { seen, mailbox },
        |log: &mut Log, n| {
            log.seen.borrow_mut().push(format!("{n} begins"));
            // What a callback re-entered by this message would post.
            if n == 1 {
                log.mailbox.post(2);
                log.mailbox.post(3);
            }
            if n == 2 {
                log.mailbox.post(4);
            }
            log.seen.borrow_mut().push(format!("{n} ends"));
        },
    )
}

#[wasm_bindgen_test]
fn messages_posted_while_one_is_handled_follow_it_in_order() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let pump = log(&seen);
    pump.post(1);
    let order: Vec<String> = (1..=4)
        .flat_map(|n| [format!("{n} begins"), format!("{n} ends")])
        .collect();
    assert_eq!(*seen.borrow(), order);
    // The pump is free again.
    pump.post(5);
    assert_eq!(seen.borrow().last().unwrap(), "5 ends");
}

#[wasm_bindgen_test]
async fn a_timeout_dropped_before_it_fires_never_fires() {
    // A callback freed but still scheduled would throw when the browser calls it.
    let errors = Rc::new(Cell::new(0));
    let _errors = {
        let errors = errors.clone();
        Listener::new(&web_sys::window().unwrap(), "error", move |_| {
            errors.set(errors.get() + 1)
        })
    };
    let fired = Rc::new(Cell::new(0));
    let kept = {
        let fired = fired.clone();
        Timeout::new(10, move || fired.set(fired.get() + 1))
    };
    let dropped = {
        let fired = fired.clone();
        Timeout::new(10, move || fired.set(fired.get() + 10))
    };
    drop(dropped);
    sleep(60).await;
    assert_eq!(fired.get(), 1);
    assert_eq!(errors.get(), 0);
    drop(kept);
}

#[wasm_bindgen_test]
async fn a_task_posts_only_while_its_handle_lives() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let pump = log(&seen);
    let to = pump.mailbox();
    let kept = Task::spawn(&to, async {
        sleep(10).await;
        7
    });
    let dropped = Task::spawn(&to, async {
        sleep(10).await;
        8
    });
    assert!(kept.is_running());
    drop(dropped);
    sleep(60).await;
    assert!(!kept.is_running());
    assert_eq!(*seen.borrow(), vec!["7 begins", "7 ends"]);
}
