//! The XML layer: an incremental stream parser on `rxml` and the element tree.

mod element;
mod parser;

pub use element::{escape_into, Element, Namespace, Node};
pub use parser::{parse_stanza, StreamHeader, StreamParser, XmlError, XmlEvent, XmlLimits};
