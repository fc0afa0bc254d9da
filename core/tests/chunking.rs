//! The outcome of a session must not depend on how its bytes were split.

mod support;
use proptest::prelude::*;
use support::*;

fn transcript() -> Vec<u8> {
    format!(
        "{HEADER}{}{HEADER}<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <resource>bälcony ☃</resource></bind></iq>\
         <iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>\
         <message to='juliet@localhost/bälcony ☃'><body>ça va? 🦜</body></message></stream:stream>",
        plain("juliet", "r0m30")
    )
    .into_bytes()
}

fn run(chunks: &[&[u8]]) -> (String, bool) {
    let mut b = Bench::new();
    let c = b.connect();
    for chunk in chunks {
        b.send_bytes(c, chunk);
    }
    (b.take(c), b.is_closed(c))
}

fn split_at(data: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.sort_unstable();
    cuts.dedup();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(&data[start..cut]);
        start = cut;
    }
    chunks.push(&data[start..]);
    chunks
}

#[test]
fn whole_transcript_logs_in_binds_and_closes() {
    let (out, closed) = run(&[&transcript()]);
    assert!(
        out.contains("<jid>juliet@localhost/bälcony ☃</jid>"),
        "{out}"
    );
    assert!(out.contains("<body>ça va? 🦜</body>"), "{out}");
    assert!(out.ends_with("</stream:stream>"));
    assert!(closed);
}

#[test]
fn byte_at_a_time_gives_the_same_effects() {
    let data = transcript();
    let chunks: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(run(&chunks), run(&[&data]));
}

proptest! {
    #[test]
    fn any_split_gives_the_same_effects(cuts in prop::collection::vec(0usize..1000, 0..40)) {
        let data = transcript();
        let cuts = cuts.into_iter().map(|c| c % data.len()).collect();
        prop_assert_eq!(run(&split_at(&data, cuts)), run(&[&data]));
    }
}
