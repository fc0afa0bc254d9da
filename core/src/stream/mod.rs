//! The stream layer (RFC 6120 section 4): header validation, the server's
//! header, stream features and stream errors.

mod error;
mod header;

pub use error::{StreamError, StreamErrorCondition};
pub(crate) use header::{features, response_header, validate_header, Features};
