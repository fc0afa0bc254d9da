//! Runs storage queries on a thread of their own, so that neither server's
//! event loop ever waits on the disk.

use crate::storage::Storage;
use rookery_core::{RequestId, StorageAnswer, StorageRequest};
use std::sync::mpsc;

/// Run one query. A backend that panics is not silent and leaves no one
/// waiting: the panic is logged, the query answered as failed (a login
/// gets `<temporary-auth-failure/>`, a roster set an error), and the
/// worker goes on with the next.
fn execute(storage: &mut dyn Storage, query: &StorageRequest) -> StorageAnswer {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| storage.execute(query))) {
        Ok(answer) => answer,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            crate::log!("storage panicked on a query ({why}); answered as failed");
            StorageAnswer::Failed(format!("storage panicked: {why}"))
        }
    }
}

pub struct StorageWorker {
    /// `None` once told to finish.
    queries: Option<mpsc::Sender<(RequestId, StorageRequest)>>,
    thread: std::thread::JoinHandle<()>,
}

impl StorageWorker {
    /// Start the worker; `deliver` is called on the worker thread with each
    /// answer, and must hand it to the server's event loop.
    pub fn spawn(
        mut storage: Box<dyn Storage>,
        deliver: impl Fn(RequestId, StorageAnswer) + Send + 'static,
    ) -> std::io::Result<StorageWorker> {
        let (queries, incoming) = mpsc::channel::<(RequestId, StorageRequest)>();
        let thread = std::thread::Builder::new()
            .name("storage".into())
            .spawn(move || {
                for (request, query) in incoming {
                    deliver(request, execute(&mut *storage, &query));
                }
            })?;
        Ok(StorageWorker {
            queries: Some(queries),
            thread,
        })
    }

    pub fn submit(&self, request: RequestId, query: StorageRequest) {
        // The worker thread only ends when this sender is dropped, so the
        // send cannot fail while the worker is not finishing.
        match &self.queries {
            Some(queries) => {
                let _ = queries.send((request, query));
            }
            None => crate::log!("storage is closed for shutdown; a query was dropped"),
        }
    }

    /// Run what is queued, then stop: see [`StorageWorker::finished`].
    pub fn finish(&mut self) {
        self.queries = None;
    }

    /// Every query submitted before [`StorageWorker::finish`] has run and
    /// been answered.
    pub fn finished(&self) -> bool {
        self.thread.is_finished()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Account;
    use rookery_core::sasl::StoredCredentials;

    /// A backend that panics on every query.
    struct Broken;

    impl Storage for Broken {
        fn execute(&mut self, _: &StorageRequest) -> StorageAnswer {
            panic!("disk on fire")
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
    fn a_panicking_backend_answers_every_query_as_failed() {
        let (tx, rx) = mpsc::channel();
        let worker = StorageWorker::spawn(Box::new(Broken), move |request, answer| {
            let _ = tx.send((request, answer));
        })
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
