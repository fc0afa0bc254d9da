//! Incremental parsing of one XML stream into a header, top-level elements
//! and the stream's end.
//!
//! `rxml` does the XML work (well-formedness, namespaces, UTF-8 split across
//! reads); this layer cuts the event flow into stanzas and enforces the
//! stream-level limits. It hands out one event per call so that the caller can
//! stop mid-read (for instance at a stream restart) and keep the rest.

use super::element::{Element, Namespace, Node};
use crate::ns;
use rxml::error::EndOrError;
use rxml::{Event, Parse, Parser, WithOptions};
use std::mem::size_of;
use std::sync::Arc;

/// Limits on what a peer may make us hold in memory for one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XmlLimits {
    /// Largest top-level element (stanza or nonza): bytes of markup, plus
    /// [`NODE_COST`] per element and text run and [`ATTRIBUTE_COST`] per
    /// attribute, so that what a stanza holds in memory, not just what it
    /// takes on the wire, is bounded.
    pub max_stanza_size: usize,
    /// Deepest nesting inside a top-level element (the stanza itself is 1).
    pub max_depth: usize,
    /// Attributes on one element.
    pub max_attributes: usize,
    /// Bytes of an element or attribute name.
    pub max_name_length: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        // Prosody's default c2s_stanza_size_limit is 256 KiB.
        XmlLimits {
            max_stanza_size: 256 * 1024,
            max_depth: 32,
            max_attributes: 64,
            max_name_length: 256,
        }
    }
}

/// The opening `<stream:stream>` tag as the peer sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    pub name: String,
    pub ns: String,
    /// `to`, `from`, `version`, `id`, and `xml:lang` under that name.
    pub attrs: Vec<(String, String)>,
}

impl StreamHeader {
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XmlEvent {
    Header(StreamHeader),
    /// A complete child of the stream root: a stanza or a nonza.
    Element(Element),
    /// The peer closed its stream (`</stream:stream>`).
    StreamEnd,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XmlError {
    /// Malformed XML (RFC 6120 `not-well-formed`).
    NotWellFormed(String),
    /// XML features XMPP forbids: comments, PIs, DTDs (`restricted-xml`).
    Restricted(String),
    /// A stanza over `max_stanza_size` or deeper than `max_depth`
    /// (`policy-violation`).
    TooLarge(&'static str),
    /// Our fault, not the peer's: replaying a recorded stream header
    /// failed (`internal-server-error`).
    Internal(&'static str),
}

pub struct StreamParser {
    /// `None` while parked (see [`StreamParser::park`]); boxed, so that a
    /// parked stream does not carry its room.
    parser: Option<Box<Parser>>,
    /// The stream header as the peer sent it, up to its `>`: fed to a
    /// fresh parser to restore the namespace context after parking.
    /// Empty while it is still arriving, or when too large to keep.
    header: Box<[u8]>,
    /// Bytes of the header received so far (until it is complete).
    header_so_far: Vec<u8>,
    /// The header outgrew [`MAX_REPLAYED_HEADER`]: this stream never parks.
    header_too_large: bool,
    /// The last byte rxml consumed: a `<` it holds (it reads one past a
    /// run of text) belongs to the next stanza.
    last_byte: u8,
    limits: XmlLimits,
    /// Open elements of the current top-level element, outermost first.
    open: Vec<Element>,
    /// Whether the stream root has been seen (and not yet closed).
    in_stream: bool,
    /// Whether the first non-whitespace byte (which must be `<`) was seen.
    started: bool,
    ended: bool,
    /// Cost so far of the current top-level element: markup bytes and
    /// the tree's overhead (see [`XmlLimits::max_stanza_size`]).
    stanza_bytes: usize,
    /// Namespaces the current stanza uses, by rxml's shared name: an
    /// inherited namespace is looked up by pointer, not compared or copied.
    namespaces: Vec<(rxml::Namespace<'static>, Namespace)>,
}

/// What one element or text run costs beyond its markup: its node in the
/// parent's child list (doubled: the list grows by doubling), and the
/// allocation of its name.
pub const NODE_COST: usize = 2 * size_of::<Node>() + 32;

/// What one attribute costs beyond its markup: its slot (doubled, as above)
/// and the allocations of its name and value.
pub const ATTRIBUTE_COST: usize = 2 * size_of::<(String, String)>() + 64;

/// Namespaces that need no allocation of their own.
const KNOWN_NAMESPACES: [&str; 8] = [
    ns::CLIENT,
    ns::STREAM,
    ns::STREAMS,
    ns::STANZAS,
    ns::SASL,
    ns::BIND,
    ns::SESSION,
    ns::TLS,
];

/// Distinct namespaces remembered per stanza; more are still shared with
/// their children, just not with each other.
const NAMESPACE_CACHE: usize = 8;

impl StreamParser {
    pub fn new(limits: XmlLimits) -> Self {
        StreamParser {
            parser: Some(Self::rxml(&limits)),
            header: Box::default(),
            header_so_far: Vec::new(),
            header_too_large: false,
            last_byte: 0,
            limits,
            open: Vec::new(),
            in_stream: false,
            started: false,
            ended: false,
            stanza_bytes: 0,
            namespaces: Vec::new(),
        }
    }

    fn rxml(limits: &XmlLimits) -> Box<Parser> {
        let mut options = rxml::parser::Options::default();
        // rxml reserves this much scratch space while a token is being
        // read, so it stays small: names and attribute values are bounded
        // by it, and long text is handed over in chunks of it.
        options.max_token_length = options.max_token_length.min(limits.max_stanza_size.max(64));
        Box::new(Parser::with_options(options))
    }

    /// Between stanzas, drop the XML parser and its namespace context
    /// (together about 1.5 KiB) until the next byte arrives; then a fresh
    /// one is fed the stream header again. Worth it for a stream idle for a
    /// while, not between two reads of a busy one. Returns whether it
    /// parked.
    pub fn park(&mut self) -> bool {
        let parkable = self.may_park();
        if parkable {
            self.parser = None;
            self.open = Vec::new();
            self.namespaces = Vec::new();
        }
        parkable
    }

    /// Whether [`StreamParser::park`] would drop the parser now: it holds
    /// nothing of a stanza (not even the `<` that starts one), and the
    /// header is kept for the replay.
    pub fn may_park(&self) -> bool {
        self.parser.is_some()
            && self.in_stream
            && !self.ended
            && self.open.is_empty()
            && self.stanza_bytes == 0
            && (self.last_byte == b'>' || self.last_byte.is_ascii_whitespace())
            && !self.header.is_empty()
    }

    /// The parser, restored with the stream's namespace context if parked.
    fn active(&mut self) -> Result<&mut Parser, XmlError> {
        if self.parser.is_none() {
            let mut parser = Self::rxml(&self.limits);
            let mut header: &[u8] = &self.header;
            loop {
                match parser.parse(&mut header, false) {
                    Ok(Some(Event::StartElement(..))) => break,
                    Ok(Some(_)) => {}
                    _ => return Err(XmlError::Internal("stream header replay failed")),
                }
            }
            self.parser = Some(parser);
        }
        // Just ensured.
        self.parser
            .as_deref_mut()
            .ok_or(XmlError::Internal("no parser"))
    }

    /// Keep the header's bytes (before its event) for replay after parking.
    fn record_header(&mut self, consumed: &[u8]) {
        if self.header_too_large {
            return;
        }
        if self.header_so_far.len() + consumed.len() <= MAX_REPLAYED_HEADER {
            self.header_so_far.extend_from_slice(consumed);
        } else {
            self.header_too_large = true;
            self.header_so_far = Vec::new();
        }
    }

    /// The header event came: cut what was recorded at the header's `>`.
    fn header_complete(&mut self) {
        let recorded = std::mem::take(&mut self.header_so_far);
        self.header = match root_tag_end(&recorded) {
            Some(end) if !self.header_too_large => recorded[..=end].into(),
            _ => Box::default(),
        };
    }

    /// Parse from `input` until one event is complete, advancing `input` past
    /// what was consumed. `Ok(None)` means all of `input` was consumed
    /// without completing an event.
    pub fn next_event(&mut self, input: &mut &[u8]) -> Result<Option<XmlEvent>, XmlError> {
        if !self.started {
            // Whitespace before a stream's first markup belongs to no
            // document: go-sendxmpp ends its `</auth>` with a newline that
            // arrives before the restarted stream's XML declaration, which
            // may not follow anything. rxml would hold leading text until
            // it sees markup; a peer speaking another protocol (an HTTP
            // request, a TLS ClientHello) is told at once instead.
            let blank = input.iter().take_while(|b| b.is_ascii_whitespace()).count();
            *input = &input[blank..];
            match input.first() {
                Some(b'<') => self.started = true,
                Some(_) => {
                    return Err(XmlError::NotWellFormed(
                        "stream does not start with markup".into(),
                    ))
                }
                None => return Ok(None),
            }
        }
        loop {
            if self.ended {
                // Nothing may follow the end of the stream root; bytes that do
                // are ignored, as the stream is being closed.
                *input = &[];
                return Ok(None);
            }
            let before: &[u8] = input;
            let result = self.active()?.parse(input, false);
            let consumed = &before[..before.len() - input.len()];
            if !self.in_stream && !self.ended {
                self.record_header(consumed);
            }
            self.account(consumed)?;
            let event = match result {
                Ok(Some(event)) => event,
                // rxml reports the end of the document only at EOF, which
                // never comes from this call.
                Ok(None) => return Ok(None),
                Err(EndOrError::NeedMoreData) => return Ok(None),
                Err(EndOrError::Error(e)) => return Err(classify(e)),
            };
            if let Some(done) = self.handle(event)? {
                return Ok(Some(done));
            }
        }
    }

    /// Whether a top-level element (or its start tag) has begun and not
    /// yet ended.
    pub fn in_stanza(&self) -> bool {
        !self.open.is_empty() || self.stanza_bytes > 0
    }

    /// Between stanzas, give back the parser's scratch buffers, so that an
    /// idle stream holds no buffer. Call when a read has been consumed.
    pub fn release_if_idle(&mut self) {
        if self.open.is_empty() {
            if let Some(parser) = &mut self.parser {
                parser.release_temporaries();
            }
        }
    }

    fn handle(&mut self, event: Event) -> Result<Option<XmlEvent>, XmlError> {
        match event {
            Event::XmlDeclaration(..) => Ok(None),
            Event::StartElement(_, (ns, name), attrs) => {
                if attrs.len() > self.limits.max_attributes {
                    return Err(XmlError::TooLarge("too many attributes"));
                }
                let too_long = |n: &str| n.len() > self.limits.max_name_length;
                if too_long(&name) || attrs.iter().any(|((_, n), _)| too_long(n)) {
                    return Err(XmlError::TooLarge("name too long"));
                }
                if !self.in_stream {
                    self.in_stream = true;
                    self.header_complete();
                    let attrs = attrs
                        .into_iter()
                        .filter_map(|((ans, aname), value)| {
                            attr_name(&ans, &aname).map(|n| (n, value))
                        })
                        .collect();
                    self.stanza_bytes = 0;
                    return Ok(Some(XmlEvent::Header(StreamHeader {
                        name: name.to_string(),
                        ns: ns.as_str().to_owned(),
                        attrs,
                    })));
                }
                if self.open.len() >= self.limits.max_depth {
                    return Err(XmlError::TooLarge("element nesting too deep"));
                }
                self.charge(NODE_COST + attrs.len() * ATTRIBUTE_COST)?;
                let (ns, copied) = self.share(ns);
                // A namespace that differs from the parent's is written
                // out again (`xmlns='…'`, the output has no prefixes), and
                // a name not met before in the stanza is copied: a long
                // name behind a short prefix costs what it will cost.
                let parent = self.open.last().map_or(ns::CLIENT, |p| p.ns());
                let written = ns.as_str() != parent;
                self.charge(ns.as_str().len() * (usize::from(written) + usize::from(copied)))?;
                let mut element = Element::in_namespace(&name, ns);
                for ((ans, aname), value) in attrs {
                    if let Some(n) = attr_name(&ans, &aname) {
                        element.set_attr(&n, &value);
                    }
                }
                self.open.push(element);
                Ok(None)
            }
            Event::Text(_, text) => {
                match self.open.last_mut() {
                    Some(current) => {
                        if current.push_text(&text) {
                            self.charge(NODE_COST)?;
                        }
                    }
                    // Between stanzas: the next one starts its count
                    // afresh, with the `<` rxml read to end the text.
                    None => self.stanza_bytes = usize::from(self.last_byte == b'<'),
                }
                // Text directly inside the stream root is whitespace
                // keepalive (or junk): it carries nothing and is dropped.
                Ok(None)
            }
            Event::EndElement(_) => {
                let Some(element) = self.open.pop() else {
                    self.ended = true;
                    self.in_stream = false;
                    return Ok(Some(XmlEvent::StreamEnd));
                };
                match self.open.last_mut() {
                    Some(parent) => {
                        parent.push_child(element);
                        Ok(None)
                    }
                    None => {
                        self.stanza_bytes = 0;
                        self.namespaces.clear();
                        Ok(Some(XmlEvent::Element(element)))
                    }
                }
            }
        }
    }

    /// The element tree's share of `ns`: a constant for the namespaces
    /// the server knows, else one [`Arc`] per distinct name in the stanza;
    /// and whether it had to be copied.
    fn share(&mut self, ns: rxml::Namespace<'static>) -> (Namespace, bool) {
        let name = ns.as_str();
        if let Some(known) = KNOWN_NAMESPACES.iter().find(|k| **k == name) {
            return (Namespace::Static(known), false);
        }
        let same = |(seen, _): &&(rxml::Namespace<'static>, Namespace)| {
            std::ptr::eq(seen.as_str(), name) || seen.as_str() == name
        };
        if let Some((_, shared)) = self.namespaces.iter().find(same) {
            return (shared.clone(), false);
        }
        let shared = Namespace::Shared(Arc::from(name));
        if self.namespaces.len() == NAMESPACE_CACHE {
            self.namespaces.remove(0);
        }
        self.namespaces.push((ns, shared.clone()));
        (shared, true)
    }

    /// Count `cost` towards the current top-level element.
    fn charge(&mut self, cost: usize) -> Result<(), XmlError> {
        self.stanza_bytes += cost;
        if self.stanza_bytes > self.limits.max_stanza_size {
            Err(XmlError::TooLarge("stanza too large"))
        } else {
            Ok(())
        }
    }

    /// Count every byte rxml consumed towards the current top-level element
    /// (or header), including bytes it holds inside a tag not yet closed,
    /// so that no input escapes the size limit. Whitespace between stanzas
    /// (keepalives) does not count.
    fn account(&mut self, consumed: &[u8]) -> Result<(), XmlError> {
        if let Some(&last) = consumed.last() {
            self.last_byte = last;
        }
        let keepalive = self.open.is_empty()
            && self.stanza_bytes == 0
            && consumed.iter().all(u8::is_ascii_whitespace);
        if keepalive {
            return Ok(());
        }
        self.charge(consumed.len())
    }
}

/// Longest stream header kept for replay; real ones are about 200 bytes.
const MAX_REPLAYED_HEADER: usize = 2048;

/// Where the root element's start tag ends in `bytes` (past any XML
/// declaration, processing instructions or comments before it): the index
/// of its `>`, outside quoted attribute values.
fn root_tag_end(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let start = i + bytes[i..].iter().position(|&b| b == b'<')?;
        match bytes.get(start + 1) {
            Some(b'?') | Some(b'!') => {
                i = start + 1 + bytes[start + 1..].iter().position(|&b| b == b'>')? + 1;
            }
            Some(_) => {
                let mut quote = None;
                for (j, &b) in bytes.iter().enumerate().skip(start + 1) {
                    match (quote, b) {
                        (None, b'\'' | b'"') => quote = Some(b),
                        (Some(q), _) if b == q => quote = None,
                        (None, b'>') => return Some(j),
                        _ => {}
                    }
                }
                return None;
            }
            None => return None,
        }
    }
}

fn attr_name(ns: &rxml::Namespace, name: &str) -> Option<String> {
    if ns.is_none() {
        Some(name.to_owned())
    } else if ns.as_str() == rxml::Namespace::XML.as_str() {
        Some(format!("xml:{name}"))
    } else {
        None
    }
}

fn classify(error: rxml::Error) -> XmlError {
    match error {
        rxml::Error::RestrictedXml(what @ ("long name or reference" | "event too long")) => {
            XmlError::TooLarge(what)
        }
        rxml::Error::RestrictedXml(what) => XmlError::Restricted(what.to_owned()),
        other => XmlError::NotWellFormed(other.to_string()),
    }
}

/// Parse one stanza the server serialized itself (one it kept as text),
/// as a child of a `jabber:client` stream; `None` if it is not one
/// well-formed element within `limits`.
pub fn parse_stanza(text: &str, limits: XmlLimits) -> Option<Element> {
    const OPEN: &str = "<stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams'>";
    let mut parser = StreamParser::new(limits);
    let mut input: &[u8] = OPEN.as_bytes();
    match parser.next_event(&mut input).ok()?? {
        XmlEvent::Header(_) => {}
        _ => return None,
    }
    let mut input = text.as_bytes();
    match parser.next_event(&mut input).ok()?? {
        XmlEvent::Element(element) if input.is_empty() => Some(element),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

    fn parse_all(parser: &mut StreamParser, mut data: &[u8]) -> Result<Vec<XmlEvent>, XmlError> {
        let mut out = Vec::new();
        while let Some(ev) = parser.next_event(&mut data)? {
            out.push(ev);
        }
        Ok(out)
    }

    #[test]
    fn header_carries_to_and_version() {
        let mut p = StreamParser::new(XmlLimits::default());
        let evs = parse_all(&mut p, HEADER.as_bytes()).unwrap();
        let XmlEvent::Header(h) = &evs[0] else {
            panic!("{evs:?}")
        };
        assert_eq!(h.name, "stream");
        assert_eq!(h.ns, "http://etherx.jabber.org/streams");
        assert_eq!(h.get_attr("to"), Some("localhost"));
        assert_eq!(h.get_attr("version"), Some("1.0"));
    }

    #[test]
    fn stanza_inherits_the_stream_default_namespace() {
        let mut p = StreamParser::new(XmlLimits::default());
        let doc = format!("{HEADER}<message to='a@b'><body>hi</body></message>");
        let evs = parse_all(&mut p, doc.as_bytes()).unwrap();
        let XmlEvent::Element(m) = &evs[1] else {
            panic!()
        };
        assert!(m.is("message", "jabber:client"));
        assert_eq!(
            m.get_child("body", "jabber:client").unwrap().text_content(),
            "hi"
        );
    }

    #[test]
    fn a_parked_parser_resumes_with_the_stream_namespaces() {
        let mut p = StreamParser::new(XmlLimits::default());
        let header = "<?xml version='1.0'?><s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' xmlns:x='urn:x' to='a>b'>";
        let evs = parse_all(&mut p, format!("{header}<message/>").as_bytes()).unwrap();
        assert_eq!(evs.len(), 2);
        assert!(p.park());
        let evs = parse_all(&mut p, b"<iq><x:q/></iq></s:stream>").unwrap();
        let XmlEvent::Element(iq) = &evs[0] else {
            panic!("{evs:?}")
        };
        assert!(iq.is("iq", "jabber:client"));
        assert!(iq.get_child("q", "urn:x").is_some());
        assert_eq!(evs[1], XmlEvent::StreamEnd);
    }

    #[test]
    fn a_parser_holding_the_next_stanzas_first_byte_does_not_park() {
        let mut p = StreamParser::new(XmlLimits::default());
        parse_all(&mut p, format!("{HEADER}<a/>\n<").as_bytes()).unwrap();
        assert!(!p.park());
        let evs = parse_all(&mut p, b"iq/>").unwrap();
        let XmlEvent::Element(iq) = &evs[0] else {
            panic!("{evs:?}")
        };
        assert!(iq.is("iq", "jabber:client"));
    }

    #[test]
    fn a_parser_inside_a_stanza_does_not_park() {
        let mut p = StreamParser::new(XmlLimits::default());
        parse_all(&mut p, format!("{HEADER}<message><bo").as_bytes()).unwrap();
        assert!(!p.park());
        let evs = parse_all(&mut p, b"dy>hi</body></message>").unwrap();
        assert_eq!(evs.len(), 1);
    }

    #[test]
    fn root_tag_end_skips_the_declaration_and_quoted_brackets() {
        assert_eq!(root_tag_end(b"<?xml v='1'?><a b='>'>x"), Some(21));
        assert_eq!(root_tag_end(b"<a b='>"), None);
    }

    #[test]
    fn oversized_stanza_is_refused() {
        let mut p = StreamParser::new(XmlLimits {
            max_stanza_size: 100,
            ..XmlLimits::default()
        });
        let doc = format!(
            "{HEADER}<message><body>{}</body></message>",
            "x".repeat(200)
        );
        assert_eq!(
            parse_all(&mut p, doc.as_bytes()),
            Err(XmlError::TooLarge("stanza too large"))
        );
    }

    #[test]
    fn whitespace_before_a_streams_xml_declaration_is_skipped() {
        let mut p = StreamParser::new(XmlLimits::default());
        let doc = format!("\n \r\n{HEADER}<message/>");
        let evs = parse_all(&mut p, doc.as_bytes()).unwrap();
        assert!(matches!(evs[0], XmlEvent::Header(_)), "{evs:?}");
        assert_eq!(evs.len(), 2);
    }

    #[test]
    fn children_share_their_parents_namespace() {
        let mut p = StreamParser::new(XmlLimits::default());
        let doc = format!(
            "{HEADER}<iq><q xmlns='urn:{}'><a/><b/></q></iq>",
            "x".repeat(500)
        );
        let evs = parse_all(&mut p, doc.as_bytes()).unwrap();
        let XmlEvent::Element(iq) = &evs[1] else {
            panic!("{evs:?}")
        };
        let q = iq.children().next().unwrap();
        let (a, b) = (q.children().next().unwrap(), q.children().nth(1).unwrap());
        assert!(std::ptr::eq(q.ns(), a.ns()) && std::ptr::eq(a.ns(), b.ns()));
    }

    #[test]
    fn each_element_counts_its_node_against_the_stanza_limit() {
        let limits = XmlLimits {
            max_stanza_size: 100 * NODE_COST,
            ..XmlLimits::default()
        };
        let mut p = StreamParser::new(limits);
        let under = format!("{HEADER}<message>{}</message>", "<y/>".repeat(90));
        assert_eq!(parse_all(&mut p, under.as_bytes()).map(|e| e.len()), Ok(2));
        let mut p = StreamParser::new(limits);
        let over = format!("{HEADER}<message>{}</message>", "<y/>".repeat(100));
        assert_eq!(
            parse_all(&mut p, over.as_bytes()),
            Err(XmlError::TooLarge("stanza too large"))
        );
    }

    #[test]
    fn a_long_namespace_behind_a_short_prefix_costs_its_length_each_time_it_is_written() {
        let mut p = StreamParser::new(XmlLimits {
            max_stanza_size: 64 * 1024,
            ..XmlLimits::default()
        });
        let ns = format!("urn:{}", "n".repeat(8000));
        let doc = format!(
            "{HEADER}<message xmlns:p='{ns}'>{}</message>",
            "<p:x/>".repeat(10)
        );
        assert_eq!(
            parse_all(&mut p, doc.as_bytes()),
            Err(XmlError::TooLarge("stanza too large"))
        );
    }

    #[test]
    fn too_many_attributes_are_refused() {
        let mut p = StreamParser::new(XmlLimits {
            max_attributes: 3,
            ..XmlLimits::default()
        });
        let doc = format!("{HEADER}<message a='1' b='2' c='3' d='4'/>");
        assert_eq!(
            parse_all(&mut p, doc.as_bytes()),
            Err(XmlError::TooLarge("too many attributes"))
        );
    }

    #[test]
    fn overlong_element_name_is_refused() {
        let mut p = StreamParser::new(XmlLimits::default());
        let doc = format!("{HEADER}<{}/>", "a".repeat(300));
        assert_eq!(
            parse_all(&mut p, doc.as_bytes()),
            Err(XmlError::TooLarge("name too long"))
        );
    }

    #[test]
    fn an_endless_start_tag_hits_the_size_limit() {
        let mut p = StreamParser::new(XmlLimits {
            max_stanza_size: 1000,
            ..XmlLimits::default()
        });
        let doc = format!("{HEADER}<message");
        assert_eq!(
            parse_all(&mut p, doc.as_bytes()).map(|events| events.len()),
            Ok(1)
        );
        let mut result = Ok(None);
        for _ in 0..100 {
            let mut chunk: &[u8] = b" a='xxxxxxxxxxxxxxxxxxxx'";
            result = p.next_event(&mut chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(XmlError::TooLarge("stanza too large")));
    }

    #[test]
    fn whitespace_keepalives_do_not_count_as_a_stanza() {
        let mut p = StreamParser::new(XmlLimits::default());
        let _ = parse_all(&mut p, HEADER.as_bytes());
        let _ = parse_all(&mut p, b"   \n ");
        assert!(!p.in_stanza());
        let _ = parse_all(&mut p, b"<message");
        assert!(p.in_stanza());
    }

    #[test]
    fn comments_are_restricted_xml() {
        let mut p = StreamParser::new(XmlLimits::default());
        let doc = format!("{HEADER}<!-- hi -->");
        assert!(matches!(
            parse_all(&mut p, doc.as_bytes()),
            Err(XmlError::Restricted(_))
        ));
    }

    #[test]
    fn closing_the_root_ends_the_stream() {
        let mut p = StreamParser::new(XmlLimits::default());
        let doc = format!("{HEADER}</stream:stream>");
        let evs = parse_all(&mut p, doc.as_bytes()).unwrap();
        assert_eq!(evs.last(), Some(&XmlEvent::StreamEnd));
    }
}
