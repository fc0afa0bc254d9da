//! The load generator's whole XML "parser": it finds where the stream
//! header and each top-level element end, and builds nothing. A full parser
//! would make the generator, not the server, the bottleneck.
//!
//! It assumes what every server sends: no comments, no CDATA, no DOCTYPE.
//! Quoted attribute values may hold `>` and `/`.

use std::ops::Range;

#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// `<stream:stream …>` (with any `<?xml?>` before it).
    Header(Range<usize>),
    /// One complete top-level element: a stanza or a nonza.
    Element(Range<usize>),
    /// `</stream:stream>`.
    End,
}

#[derive(Default)]
pub struct Splitter {
    /// Bytes of the buffer already looked at.
    scanned: usize,
    /// Where the current top-level item began.
    start: usize,
    depth: u32,
    in_tag: bool,
    /// The quote character of the attribute value we are inside, or 0.
    quote: u8,
    /// The first byte after `<`, once seen.
    tag_kind: u8,
    previous: u8,
}

impl Splitter {
    /// Forget everything: a stream restart (after SASL or STARTTLS).
    pub fn reset(&mut self) {
        *self = Splitter::default();
    }

    /// The buffer was emptied between two top-level elements.
    pub fn reset_positions(&mut self) {
        self.scanned = 0;
        self.start = 0;
    }

    /// The buffer dropped its first `n` bytes, all of them consumed.
    pub fn consumed(&mut self, n: usize) {
        self.scanned -= n;
        self.start = self.start.saturating_sub(n);
    }

    /// The next complete item in `buffer`, which must start with the bytes
    /// scanned before (minus those [`Splitter::consumed`]).
    pub fn next(&mut self, buffer: &[u8]) -> Option<Event> {
        while self.scanned < buffer.len() {
            let i = self.scanned;
            let byte = buffer[i];
            self.scanned += 1;
            if !self.in_tag {
                if byte == b'<' {
                    self.in_tag = true;
                    self.tag_kind = 0;
                    if self.depth == 1 {
                        self.start = i;
                    }
                }
                continue;
            }
            if self.tag_kind == 0 {
                self.tag_kind = byte;
                self.previous = byte;
                continue;
            }
            if self.quote != 0 {
                if byte == self.quote {
                    self.quote = 0;
                }
                continue;
            }
            match byte {
                b'"' | b'\'' => self.quote = byte,
                b'>' => {
                    self.in_tag = false;
                    let event = self.tag_closed(i, self.previous == b'/');
                    self.previous = byte;
                    if event.is_some() {
                        return event;
                    }
                    continue;
                }
                _ => {}
            }
            self.previous = byte;
        }
        None
    }

    fn tag_closed(&mut self, at: usize, empty: bool) -> Option<Event> {
        match self.tag_kind {
            b'?' | b'!' => None,
            b'/' => {
                self.depth = self.depth.saturating_sub(1);
                match self.depth {
                    0 => Some(Event::End),
                    1 => Some(Event::Element(self.start..at + 1)),
                    _ => None,
                }
            }
            _ if empty => (self.depth == 1).then(|| Event::Element(self.start..at + 1)),
            _ => {
                self.depth += 1;
                if self.depth == 1 {
                    let header = self.start..at + 1;
                    self.start = at + 1;
                    Some(Event::Header(header))
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&str]) -> Vec<String> {
        let mut splitter = Splitter::default();
        let mut buffer = String::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buffer.push_str(chunk);
            while let Some(event) = splitter.next(buffer.as_bytes()) {
                out.push(match event {
                    Event::Header(r) => format!("H {}", &buffer[r]),
                    Event::Element(r) => buffer[r].to_owned(),
                    Event::End => "END".to_owned(),
                });
            }
        }
        out
    }

    #[test]
    fn header_elements_and_end_are_found_whole() {
        assert_eq!(
            split(&["<?xml version='1.0'?><stream:stream a='1'><x/> <m to='a'><b>1</b></m></stream:stream>"]),
            [
                "H <?xml version='1.0'?><stream:stream a='1'>",
                "<x/>",
                "<m to='a'><b>1</b></m>",
                "END"
            ]
        );
    }

    #[test]
    fn elements_split_across_reads_at_every_byte_are_found_once() {
        let stream = "<s><m a='x>/y'><b>hi</b></m><p/></s>";
        for cut in 1..stream.len() {
            assert_eq!(
                split(&[&stream[..cut], &stream[cut..]]),
                ["H <s>", "<m a='x>/y'><b>hi</b></m>", "<p/>", "END"],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn consumed_bytes_shift_positions() {
        let mut splitter = Splitter::default();
        let mut buffer = b"<s><a/><b".to_vec();
        assert!(matches!(splitter.next(&buffer), Some(Event::Header(_))));
        assert_eq!(splitter.next(&buffer), Some(Event::Element(3..7)));
        assert_eq!(splitter.next(&buffer), None);
        buffer.drain(..7);
        splitter.consumed(7);
        buffer.extend_from_slice(b"/>");
        assert_eq!(splitter.next(&buffer), Some(Event::Element(0..4)));
    }
}
