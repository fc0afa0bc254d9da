//! Runs storage queries on a thread of their own, so that neither server's
//! event loop ever waits on the disk.

use crate::storage::Storage;
use rookery_core::{RequestId, StorageAnswer, StorageRequest};
use std::sync::mpsc;

pub struct StorageWorker {
    queries: mpsc::Sender<(RequestId, StorageRequest)>,
}

impl StorageWorker {
    /// Start the worker; `deliver` is called on the worker thread with each
    /// answer, and must hand it to the server's event loop.
    pub fn spawn(
        mut storage: Box<dyn Storage>,
        deliver: impl Fn(RequestId, StorageAnswer) + Send + 'static,
    ) -> std::io::Result<StorageWorker> {
        let (queries, incoming) = mpsc::channel::<(RequestId, StorageRequest)>();
        std::thread::Builder::new()
            .name("storage".into())
            .spawn(move || {
                for (request, query) in incoming {
                    deliver(request, storage.execute(&query));
                }
            })?;
        Ok(StorageWorker { queries })
    }

    pub fn submit(&self, request: RequestId, query: StorageRequest) {
        // The worker thread only ends when this sender is dropped, so the
        // send cannot fail while `self` lives; if it somehow did, the
        // connection would time out in its login deadline.
        let _ = self.queries.send((request, query));
    }
}
