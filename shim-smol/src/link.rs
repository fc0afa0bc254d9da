//! What ties one connection's core handle to its reader and writer tasks:
//! the output queue, the verdicts on reads, and the hand-over at STARTTLS.
//!
//! One small allocation instead of three async channels: an idle
//! connection holds an empty link (its queues are freed once drained), and
//! memory per idle session is a headline figure. For the same reason a
//! plaintext connection has a writer task only while it has output: the
//! core's end says when one must be started, and the writer stops when the
//! queue is empty.

use rookery_host::{Outgoing, Verdict};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

/// Who writes the queue out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Writer {
    /// Nobody now; the next item needs a plaintext writer started.
    #[default]
    Idle,
    /// A plaintext writer is draining the queue.
    Running,
    /// A long-lived writer waits on the queue (TLS, after the STARTTLS
    /// hand-over or from the start).
    External,
    /// Writing failed or the connection was closed: items are refused.
    Stopped,
}

/// What became of a queued item.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued {
    /// A writer has it (or will).
    Taken,
    /// Queued; start a plaintext writer for it.
    StartWriter,
    /// Writing has stopped: the item was dropped.
    Refused,
}

/// What a plaintext writer gets next.
pub enum Next {
    Item(Outgoing),
    /// The queue is empty; the writer is done until more comes.
    Empty,
    /// The core dropped the connection and everything was written.
    Closed,
}

#[derive(Default)]
struct State {
    outgoing: VecDeque<Outgoing>,
    writer_state: Writer,
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
    /// A link whose writing starts as `writer` says.
    pub fn new(writer: Writer) -> (Link, CoreEnd) {
        let link = Link::default();
        link.state().writer_state = writer;
        (link.clone(), CoreEnd(link))
    }

    /// For a plaintext writer: the next item, or stop (the queue is empty:
    /// the core's end will ask for a new writer when output comes).
    pub fn next_or_stop(&self) -> Next {
        let mut state = self.state();
        if let Some(item) = take(&mut state.outgoing) {
            return Next::Item(item);
        }
        if state.closed {
            return Next::Closed;
        }
        state.writer_state = Writer::Idle;
        Next::Empty
    }

    /// Writing ended for good (a failed write, a close): refuse more.
    pub fn stop_writing(&self) {
        let mut state = self.state();
        state.writer_state = Writer::Stopped;
        state.outgoing = VecDeque::new();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next item to write; `None` once the core is gone and the queue
    /// is drained.
    pub async fn next_outgoing(&self) -> Option<Outgoing> {
        self.wait(|s| &mut s.writer, |s| take(&mut s.outgoing))
            .await
    }

    /// Wait until `ready` has something, with the waker kept in `slot`;
    /// `None` once the core is gone and `ready` still has nothing.
    async fn wait<T>(
        &self,
        slot: fn(&mut State) -> &mut Option<Waker>,
        mut ready: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        poll_fn(|cx| {
            let mut state = self.state();
            if let Some(value) = ready(&mut state) {
                return Poll::Ready(Some(value));
            }
            if state.closed {
                return Poll::Ready(None);
            }
            *slot(&mut state) = Some(cx.waker().clone());
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
        self.wait(|s| &mut s.reader, |s| take(&mut s.verdicts))
            .await
    }

    /// The plaintext writer is done (it flushed `<proceed/>`); a TLS
    /// writer will wait on the queue from now on.
    pub fn park_writer(&self) {
        let mut state = self.state();
        state.writer_parked = true;
        state.writer_state = Writer::External;
        if let Some(w) = state.reader.take() {
            w.wake();
        }
    }

    /// Wait until the plaintext writer parked; `false` if the core went
    /// away first.
    pub async fn writer_parked(&self) -> bool {
        self.wait(|s| &mut s.reader, |s| s.writer_parked.then_some(()))
            .await
            .is_some()
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
    /// Queue `item` for the writer.
    #[must_use]
    pub fn queue(&self, item: Outgoing) -> Queued {
        let mut state = self.0.state();
        if state.writer_state == Writer::Stopped {
            return Queued::Refused;
        }
        state.outgoing.push_back(item);
        if let Some(w) = state.writer.take() {
            w.wake();
        }
        if state.writer_state == Writer::Idle {
            state.writer_state = Writer::Running;
            return Queued::StartWriter;
        }
        Queued::Taken
    }

    /// The link, for a writer to be started on.
    pub fn link(&self) -> &Link {
        &self.0
    }

    /// Whether nobody is writing (so nobody will shut the socket down when
    /// the connection is dropped).
    pub fn writer_idle(&self) -> bool {
        self.0.state().writer_state == Writer::Idle
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
        let (link, core) = Link::new(Writer::External);
        assert_eq!(core.queue(Outgoing::Data(b"a".to_vec())), Queued::Taken);
        assert_eq!(core.queue(Outgoing::Close), Queued::Taken);
        drop(core);
        smol::block_on(async {
            assert!(matches!(link.next_outgoing().await, Some(Outgoing::Data(d)) if d == b"a"));
            assert!(matches!(link.next_outgoing().await, Some(Outgoing::Close)));
            assert!(link.next_outgoing().await.is_none());
        });
    }

    #[test]
    fn a_plaintext_writer_is_asked_for_once_per_burst_of_output() {
        let (link, core) = Link::new(Writer::Idle);
        assert_eq!(
            core.queue(Outgoing::Data(b"a".to_vec())),
            Queued::StartWriter
        );
        assert_eq!(core.queue(Outgoing::Data(b"b".to_vec())), Queued::Taken);
        assert!(matches!(link.next_or_stop(), Next::Item(_)));
        assert!(matches!(link.next_or_stop(), Next::Item(_)));
        assert!(matches!(link.next_or_stop(), Next::Empty));
        assert!(core.writer_idle());
        assert_eq!(core.queue(Outgoing::Close), Queued::StartWriter);
    }

    #[test]
    fn after_the_starttls_hand_over_no_plaintext_writer_is_asked_for() {
        let (link, core) = Link::new(Writer::Idle);
        assert_eq!(core.queue(Outgoing::StartTls), Queued::StartWriter);
        assert!(matches!(
            link.next_or_stop(),
            Next::Item(Outgoing::StartTls)
        ));
        link.park_writer();
        assert_eq!(core.queue(Outgoing::Data(b"a".to_vec())), Queued::Taken);
    }

    #[test]
    fn after_a_failed_write_items_are_refused() {
        let (link, core) = Link::new(Writer::Idle);
        assert_eq!(
            core.queue(Outgoing::Data(b"a".to_vec())),
            Queued::StartWriter
        );
        link.stop_writing();
        assert_eq!(core.queue(Outgoing::Data(b"b".to_vec())), Queued::Refused);
    }

    #[test]
    fn a_waiting_reader_is_woken_by_a_verdict() {
        let (link, core) = Link::new(Writer::External);
        let waiting = smol::spawn({
            let link = link.clone();
            async move { link.verdict().await }
        });
        core.verdict(Verdict::StartTls);
        assert!(matches!(smol::block_on(waiting), Some(Verdict::StartTls)));
    }

    #[test]
    fn drained_queues_hold_no_memory() {
        let (link, core) = Link::new(Writer::External);
        assert_eq!(core.queue(Outgoing::Close), Queued::Taken);
        smol::block_on(link.next_outgoing());
        assert_eq!(link.state().outgoing.capacity(), 0);
    }
}
