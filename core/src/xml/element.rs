//! A small owned element tree for stanzas and nonzas.
//!
//! Rookery keeps its own tree rather than a general DOM because the stream
//! layer needs exact control over what is kept per element (size accounting,
//! depth limits) and over how stanzas are serialised onto a `jabber:client`
//! stream (no redundant `xmlns` on stanzas, prefix-free output).

use std::fmt::Write as _;
use std::sync::Arc;

/// A namespace name, held once however many elements are in it.
///
/// A peer chooses namespace names, and every child of an element inherits
/// its parent's: if each element kept its own copy, one long name declared
/// on an open element would be copied into every child, so a few bytes of
/// input (`<y/>`) would cost kilobytes of memory. The parser hands out
/// clones of one [`Arc`] instead, and the server's own elements use
/// constants.
#[derive(Clone, Debug)]
pub enum Namespace {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Namespace {
    pub fn as_str(&self) -> &str {
        match self {
            Namespace::Static(s) => s,
            Namespace::Shared(s) => s,
        }
    }
}

impl PartialEq for Namespace {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Namespace {}

/// A child of an element: another element or character data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// An XML element with its resolved namespace.
///
/// Attributes without a namespace are kept by local name; `xml:lang` is kept
/// as `xml:lang`. Other namespaced attributes are dropped on parse (clients
/// such as mcabber send foreign attributes that carry no meaning for us).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    name: String,
    ns: Namespace,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

impl Element {
    pub fn new(name: &str, ns: &'static str) -> Self {
        Self::in_namespace(name, Namespace::Static(ns))
    }

    /// An element in a namespace the peer named (see [`Namespace`]).
    pub fn in_namespace(name: &str, ns: Namespace) -> Self {
        Element {
            name: name.to_owned(),
            ns,
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder: set an attribute.
    pub fn attr(mut self, name: &str, value: &str) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder: append a child element.
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: append character data.
    pub fn text(mut self, text: &str) -> Self {
        self.children.push(Node::Text(text.to_owned()));
        self
    }

    /// The element with its attributes, without its children.
    pub fn shallow(&self) -> Element {
        Element {
            name: self.name.clone(),
            ns: self.ns.clone(),
            attrs: self.attrs.clone(),
            children: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ns(&self) -> &str {
        self.ns.as_str()
    }

    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns() == ns
    }

    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set_attr(&mut self, name: &str, value: &str) {
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.attrs.push((name.to_owned(), value.to_owned())),
        }
    }

    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let index = self.attrs.iter().position(|(n, _)| n == name)?;
        Some(self.attrs.remove(index).1)
    }

    pub fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn push_child(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// Append character data; returns whether it began a new text node
    /// (the parser hands long text over in chunks, kept as one node).
    pub(crate) fn push_text(&mut self, text: &str) -> bool {
        match self.children.last_mut() {
            Some(Node::Text(last)) => {
                last.push_str(text);
                false
            }
            _ => {
                self.children.push(Node::Text(text.to_owned()));
                true
            }
        }
    }

    /// Child elements, in document order.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.is(name, ns))
    }

    /// Remove every child element `name` in `ns`; returns whether there
    /// was one.
    pub fn remove_children(&mut self, name: &str, ns: &str) -> bool {
        let before = self.children.len();
        self.children
            .retain(|n| !matches!(n, Node::Element(e) if e.is(name, ns)));
        self.children.len() != before
    }

    /// Keep only the child elements `keep` accepts (and all text).
    pub fn retain_children(&mut self, keep: impl Fn(&Element) -> bool) {
        self.children
            .retain(|n| !matches!(n, Node::Element(e) if !keep(e)));
    }

    /// The concatenated character data directly inside this element.
    pub fn text_content(&self) -> String {
        let mut out = String::new();
        for node in &self.children {
            if let Node::Text(t) = node {
                out.push_str(t);
            }
        }
        out
    }

    /// Serialise as it appears inside a stream whose default namespace is
    /// `parent_ns`: `xmlns` is written only where the namespace changes.
    pub fn write_to(&self, out: &mut String, parent_ns: &str) {
        out.push('<');
        out.push_str(&self.name);
        if self.ns() != parent_ns {
            write_attr(out, "xmlns", self.ns());
        }
        for (name, value) in &self.attrs {
            write_attr(out, name, value);
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for node in &self.children {
            match node {
                Node::Element(e) => e.write_to(out, self.ns()),
                Node::Text(t) => escape_text(out, t),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }

    /// Serialise for a `jabber:client` stream.
    pub fn to_stream_string(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out, crate::ns::CLIENT);
        out
    }
}

/// Escape an attribute value for single quotes (the stream header's).
pub fn escape_into(out: &mut String, text: &str) {
    escape_value(out, text, '\'');
}

/// ` name='value'`, quoted with whichever quote the value holds fewer of:
/// what is written stays about the size of what the peer sent, whose
/// own markup had to escape one of the two (a value of 250,000 `'`
/// written as `&apos;` each would make 1.5 MB of it).
fn write_attr(out: &mut String, name: &str, value: &str) {
    let singles = value.matches('\'').count();
    let doubles = value.matches('"').count();
    let quote = if singles > doubles { '"' } else { '\'' };
    let _ = write!(out, " {name}={quote}");
    escape_value(out, value, quote);
    out.push(quote);
}

fn escape_value(out: &mut String, text: &str, quote: char) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '\'' if quote == '\'' => out.push_str("&apos;"),
            '"' if quote == '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Escape character data: only what XML requires (`&`, `<`, and the `>`
/// of a `]]>`), so that no character a peer sent costs more to write
/// than it cost the peer to send.
fn escape_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' if out.ends_with("]]") => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omits_xmlns_matching_the_stream_namespace() {
        let iq = Element::new("iq", crate::ns::CLIENT)
            .attr("type", "result")
            .child(
                Element::new("bind", crate::ns::BIND)
                    .child(Element::new("jid", crate::ns::BIND).text("a@b/c")),
            );
        assert_eq!(
            iq.to_stream_string(),
            "<iq type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>a@b/c</jid></bind></iq>"
        );
    }

    #[test]
    fn escapes_text_and_attribute_values() {
        let m = Element::new("body", crate::ns::CLIENT)
            .attr("x", "a'b<")
            .text("1 < 2 & 3");
        assert_eq!(
            m.to_stream_string(),
            "<body x=\"a'b&lt;\">1 &lt; 2 &amp; 3</body>"
        );
    }

    #[test]
    fn quotes_in_text_are_written_as_they_are() {
        let m = Element::new("body", crate::ns::CLIENT).text("'\"> ]]>");
        assert_eq!(m.to_stream_string(), "<body>'\"> ]]&gt;</body>");
    }

    #[test]
    fn attribute_values_take_the_quote_they_hold_fewer_of() {
        let m = Element::new("x", crate::ns::CLIENT)
            .attr("a", "it's")
            .attr("b", "say \"hi\"")
            .attr("c", "'\"'");
        assert_eq!(
            m.to_stream_string(),
            "<x a=\"it's\" b='say \"hi\"' c=\"'&quot;'\"/>"
        );
    }
}
