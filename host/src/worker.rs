//! Runs storage queries on threads of their own, so that neither server's
//! event loop ever waits on the disk, and logins never wait behind writes.

use crate::storage::Storage;
use rookery_core::{RequestId, StorageAnswer, StorageRequest};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Run one query. A backend that panics is not silent and leaves no one
/// waiting: the panic is logged, the query answered as failed (a login
/// gets `<temporary-auth-failure/>`, a roster set an error), and the
/// worker goes on with the next.
fn execute_all(storage: &mut dyn Storage, queries: &[StorageRequest]) -> Vec<StorageAnswer> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        storage.execute_all(queries)
    })) {
        Ok(answers) if answers.len() == queries.len() => answers,
        Ok(_) => vec![StorageAnswer::Failed("storage lost answers".into()); queries.len()],
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            crate::log!("storage panicked on a query ({why}); answered as failed");
            storage.after_panic();
            vec![StorageAnswer::Failed(format!("storage panicked: {why}")); queries.len()]
        }
    }
}

/// Failed queries, told to the operator: their answers go to the event
/// loop, which tells the client where there is one (a roster set gets an
/// error), but an archive write or an expiry has no one else to tell. A
/// full disk fails every query, so at most one line a second, counting
/// those in between.
#[derive(Default)]
struct Failures {
    last: Option<Instant>,
    unreported: usize,
    latest: String,
}

impl Failures {
    /// The line to log after a batch's answers at `now`, if any: what
    /// failed since the last line, once a second has passed since it.
    fn report(&mut self, answers: &[StorageAnswer], now: Instant) -> Option<String> {
        for answer in answers {
            if let StorageAnswer::Failed(why) = answer {
                self.unreported += 1;
                self.latest.clone_from(why);
            }
        }
        if self.unreported == 0
            || self
                .last
                .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            return None;
        }
        self.last = Some(now);
        self.line()
    }

    /// The line to log when storage stops, if anything failed unsaid.
    fn report_at_end(&mut self) -> Option<String> {
        (self.unreported > 0).then(|| self.line()).flatten()
    }

    fn line(&mut self) -> Option<String> {
        let n = std::mem::take(&mut self.unreported);
        Some(format!(
            "{n} storage queries failed since the last report, the latest with: {}",
            self.latest
        ))
    }
}

/// Most queries in one group commit.
const GROUP_COMMIT: usize = 512;

/// How long a write waits for others to share its commit. A commit costs
/// a disk flush and the WAL's bookkeeping, a hundred times a row: without
/// the wait, a steady trickle of archived chats commits one by one and
/// the storage thread takes the core from the event loop.
const COMMIT_DELAY: Duration = Duration::from_millis(2);

/// The answers to one batch of queries, handed to the event loop at once.
pub type Answers = Vec<(RequestId, StorageAnswer)>;
type Deliver = Arc<dyn Fn(Answers) + Send + Sync>;

/// One storage thread: its queue and its handle.
struct Lane {
    /// `None` once told to finish.
    queries: Option<mpsc::Sender<(RequestId, StorageRequest)>>,
    thread: std::thread::JoinHandle<()>,
}

impl Lane {
    /// A lane running up to `group` queries per commit.
    fn spawn(
        name: &str,
        (group, delay): (usize, Duration),
        mut storage: Box<dyn Storage>,
        deliver: Deliver,
    ) -> std::io::Result<Lane> {
        let (queries, incoming) = mpsc::channel::<(RequestId, StorageRequest)>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut failures = Failures::default();
                loop {
                    // Awake once a second while idle, to tell what
                    // failed last.
                    let first = match incoming.recv_timeout(Duration::from_secs(1)) {
                        Ok(first) => first,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            if let Some(line) = failures.report(&[], Instant::now()) {
                                crate::log!("{line}");
                            }
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    };
                    let mut batch: Vec<_> = std::iter::once(first)
                        .chain(incoming.try_iter().take(group - 1))
                        .collect();
                    // What queues up meanwhile goes in the same commit.
                    // The thread sleeps rather than waits on the queue:
                    // a waiting receiver is woken by every query sent,
                    // a switch between threads per archived chat on a
                    // busy core. A full batch goes at once.
                    if batch.len() < group && !delay.is_zero() {
                        std::thread::sleep(delay);
                        batch.extend(incoming.try_iter().take(group - batch.len()));
                    }
                    let (requests, queries): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    let answers = execute_all(&mut *storage, &queries);
                    if let Some(line) = failures.report(&answers, Instant::now()) {
                        crate::log!("{line}");
                    }
                    // One event for the whole batch: the event loop
                    // handles it in one turn.
                    deliver(requests.into_iter().zip(answers).collect());
                }
                if let Some(line) = failures.report_at_end() {
                    crate::log!("{line}");
                }
            })?;
        Ok(Lane {
            queries: Some(queries),
            thread,
        })
    }

    fn submit(&self, request: RequestId, query: StorageRequest) {
        // The thread only ends when this sender is dropped, so the send
        // cannot fail while the lane is not finishing.
        match &self.queries {
            Some(queries) => {
                let _ = queries.send((request, query));
            }
            None => crate::log!("storage is closed for shutdown; a query was dropped"),
        }
    }
}

/// Storage on two threads of their own, so that neither server's event
/// loop ever waits on the disk: one for what a login reads (credentials,
/// PLAIN's PBKDF2, the roster), one for everything else in order. SQLite
/// in WAL mode lets the reader run beside the writer, so a backlog of
/// offline stores never delays a login.
///
/// How many queries wait here is bounded by the core, which caps what it
/// has in flight (`max_offline_in_flight`, `max_queued_operations`, one
/// login exchange per connection).
pub struct StorageWorker {
    reader: Lane,
    writer: Lane,
}

impl StorageWorker {
    /// Start the threads, each with its own handle on the store;
    /// `deliver` is called on them with each answer, and must hand it to
    /// the server's event loop.
    pub fn spawn(
        reader: Box<dyn Storage>,
        writer: Box<dyn Storage>,
        deliver: impl Fn(Answers) + Send + Sync + 'static,
    ) -> std::io::Result<StorageWorker> {
        let deliver: Deliver = Arc::new(deliver);
        Ok(StorageWorker {
            // Reads run one by one, each in its own read transaction.
            reader: Lane::spawn("storage-read", (1, Duration::ZERO), reader, deliver.clone())?,
            writer: Lane::spawn(
                "storage-write",
                (GROUP_COMMIT, COMMIT_DELAY),
                writer,
                deliver,
            )?,
        })
    }

    pub fn submit(&self, request: RequestId, query: StorageRequest) {
        if query.is_login_read() {
            self.reader.submit(request, query);
        } else {
            self.writer.submit(request, query);
        }
    }

    /// Run what is queued, then stop: see [`StorageWorker::finished`].
    pub fn finish(&mut self) {
        self.reader.queries = None;
        self.writer.queries = None;
    }

    /// Every query submitted before [`StorageWorker::finish`] has run and
    /// been answered.
    pub fn finished(&self) -> bool {
        self.reader.thread.is_finished() && self.writer.thread.is_finished()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_queries_are_reported_at_most_once_a_second_with_a_count() {
        let mut failures = Failures::default();
        let start = Instant::now();
        let full = || StorageAnswer::Failed("database or disk is full".into());
        let ok = StorageAnswer::Written;
        assert_eq!(failures.report(std::slice::from_ref(&ok), start), None);
        assert_eq!(
            failures.report(&[full(), ok.clone()], start).as_deref(),
            Some("1 storage queries failed since the last report, the latest with: database or disk is full")
        );
        let later = start + Duration::from_millis(500);
        assert_eq!(failures.report(&[full(), full()], later), None);
        // Told with the next batch a second on, failed or not (or with
        // none, as an idle thread wakes each second).
        assert_eq!(
            failures.report(&[ok], start + Duration::from_secs(1)).as_deref(),
            Some("2 storage queries failed since the last report, the latest with: database or disk is full")
        );
        assert_eq!(
            failures.report(&[full()], start + Duration::from_secs(1)),
            None
        );
        assert_eq!(
            failures.report_at_end().as_deref(),
            Some("1 storage queries failed since the last report, the latest with: database or disk is full")
        );
        assert_eq!(failures.report_at_end(), None);
    }

    use crate::storage::Account;
    use rookery_core::sasl::StoredCredentials;

    /// Backends that misbehave: one panics on every query, the other's
    /// writes wait until told to go on.
    enum Fake {
        Broken,
        Stalled(mpsc::Receiver<()>),
    }

    impl Storage for Fake {
        fn execute(&mut self, query: &StorageRequest) -> StorageAnswer {
            match self {
                Fake::Broken => panic!("disk on fire"),
                Fake::Stalled(go) => {
                    if !query.is_login_read() {
                        let _ = go.recv();
                    }
                    StorageAnswer::Credentials(None)
                }
            }
        }
        fn create_account(&mut self, _: &Account, _: &StoredCredentials) -> anyhow::Result<()> {
            Ok(())
        }
        fn set_credentials(&mut self, _: &Account, _: &StoredCredentials) -> anyhow::Result<()> {
            Ok(())
        }
        fn delete_account(&mut self, _: &Account) -> anyhow::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_login_read_is_answered_while_writes_are_stuck() {
        let (go, wait) = mpsc::channel();
        let (_, never) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let worker = StorageWorker::spawn(
            Box::new(Fake::Stalled(never)),
            Box::new(Fake::Stalled(wait)),
            move |answers: Answers| {
                for (request, _) in answers {
                    let _ = tx.lock().unwrap().send(request);
                }
            },
        )
        .unwrap();
        let user: jid::BareJid = "juliet@localhost".parse().unwrap();
        worker.submit(
            RequestId(1),
            StorageRequest::DeleteOffline { user, up_to: 1 },
        );
        worker.submit(
            RequestId(2),
            StorageRequest::LoadCredentials {
                username: "juliet".into(),
                domain: "localhost".into(),
            },
        );
        let first = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(first, RequestId(2), "the login read went first");
        go.send(()).unwrap();
        assert_eq!(rx.recv().unwrap(), RequestId(1));
    }

    #[test]
    fn a_panicking_backend_answers_every_query_as_failed() {
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let worker = StorageWorker::spawn(
            Box::new(Fake::Broken),
            Box::new(Fake::Broken),
            move |answers: Answers| {
                for answer in answers {
                    let _ = tx.lock().unwrap().send(answer);
                }
            },
        )
        .unwrap();
        for id in [1, 2] {
            worker.submit(
                RequestId(id),
                StorageRequest::LoadCredentials {
                    username: "juliet".into(),
                    domain: "localhost".into(),
                },
            );
        }
        for id in [1, 2] {
            let (request, answer) = rx.recv().unwrap();
            assert_eq!(request, RequestId(id));
            assert_eq!(
                answer,
                StorageAnswer::Failed("storage panicked: disk on fire".into())
            );
        }
    }
}
