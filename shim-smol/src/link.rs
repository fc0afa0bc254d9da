//! What ties one connection's core handle to its reader and writer tasks:
//! the output queue, the verdicts on reads, and the hand-over at STARTTLS.
//!
//! One small allocation instead of three async channels: an idle
//! connection holds an empty link (its queues are freed once drained), and
//! memory per idle session is a headline figure.

use rookery_host::{Outgoing, Verdict};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

#[derive(Default)]
struct State {
    outgoing: VecDeque<Outgoing>,
    verdicts: VecDeque<Verdict>,
    /// The core dropped the connection: nothing more will come.
    closed: bool,
    /// The plaintext writer flushed everything before STARTTLS and stopped.
    writer_parked: bool,
    writer: Option<Waker>,
    reader: Option<Waker>,
}

#[derive(Clone, Default)]
pub struct Link(Arc<Mutex<State>>);

/// The core's end: dropping it closes the link, as dropping a channel's
/// last sender would.
pub struct CoreEnd(Link);

impl Link {
    pub fn new() -> (Link, CoreEnd) {
        let link = Link::default();
        (link.clone(), CoreEnd(link))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next item to write; `None` once the core is gone and the queue
    /// is drained.
    pub async fn next_outgoing(&self) -> Option<Outgoing> {
        poll_fn(|cx| {
            let mut state = self.state();
            if let Some(item) = take(&mut state.outgoing) {
                return Poll::Ready(Some(item));
            }
            if state.closed {
                return Poll::Ready(None);
            }
            state.writer = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// A verdict if one came back, without waiting.
    pub fn try_verdict(&self) -> Option<Verdict> {
        take(&mut self.state().verdicts)
    }

    /// Wait for the next verdict; `None` once the core is gone.
    pub async fn verdict(&self) -> Option<Verdict> {
        poll_fn(|cx| {
            let mut state = self.state();
            if let Some(v) = take(&mut state.verdicts) {
                return Poll::Ready(Some(v));
            }
            if state.closed {
                return Poll::Ready(None);
            }
            state.reader = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// The plaintext writer is done (it flushed `<proceed/>`).
    pub fn park_writer(&self) {
        let mut state = self.state();
        state.writer_parked = true;
        if let Some(w) = state.reader.take() {
            w.wake();
        }
    }

    /// Wait until the plaintext writer parked; `false` if the core went
    /// away first.
    pub async fn writer_parked(&self) -> bool {
        poll_fn(|cx| {
            let mut state = self.state();
            if state.writer_parked {
                return Poll::Ready(true);
            }
            if state.closed {
                return Poll::Ready(false);
            }
            state.reader = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// Pop the front, freeing the queue's memory once it is empty.
fn take<T>(queue: &mut VecDeque<T>) -> Option<T> {
    let item = queue.pop_front();
    if queue.is_empty() && queue.capacity() > 0 {
        *queue = VecDeque::new();
    }
    item
}

impl CoreEnd {
    pub fn queue(&self, item: Outgoing) {
        let mut state = self.0.state();
        state.outgoing.push_back(item);
        if let Some(w) = state.writer.take() {
            w.wake();
        }
    }

    pub fn verdict(&self, verdict: Verdict) {
        let mut state = self.0.state();
        state.verdicts.push_back(verdict);
        if let Some(w) = state.reader.take() {
            w.wake();
        }
    }
}

impl Drop for CoreEnd {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.closed = true;
        let (writer, reader) = (state.writer.take(), state.reader.take());
        drop(state);
        for w in [writer, reader].into_iter().flatten() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_items_come_out_in_order_then_none_after_close() {
        let (link, core) = Link::new();
        core.queue(Outgoing::Data(b"a".to_vec()));
        core.queue(Outgoing::Close);
        drop(core);
        smol::block_on(async {
            assert!(matches!(link.next_outgoing().await, Some(Outgoing::Data(d)) if d == b"a"));
            assert!(matches!(link.next_outgoing().await, Some(Outgoing::Close)));
            assert!(link.next_outgoing().await.is_none());
        });
    }

    #[test]
    fn a_waiting_reader_is_woken_by_a_verdict() {
        let (link, core) = Link::new();
        let waiting = smol::spawn({
            let link = link.clone();
            async move { link.verdict().await }
        });
        core.verdict(Verdict::StartTls);
        assert!(matches!(smol::block_on(waiting), Some(Verdict::StartTls)));
    }

    #[test]
    fn drained_queues_hold_no_memory() {
        let (link, core) = Link::new();
        core.queue(Outgoing::Close);
        smol::block_on(link.next_outgoing());
        assert_eq!(link.state().outgoing.capacity(), 0);
    }
}
