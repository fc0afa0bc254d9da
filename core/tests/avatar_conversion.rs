//! One avatar for old and new clients (XEP-0398): a vCard photo becomes
//! the PEP avatar, and a PEP avatar the vCard photo.

mod support;
use rookery_core::DocumentStore;
use support::*;

/// "GIF89a" (six bytes), base64: its SHA-1 is the avatar's id.
const IMAGE: &str = "R0lGODlh";
const IMAGE_ID: &str = "25c9b37ae36a0a08318d4dca7ca57ea98d776821";

fn vcard(user: &str, b: &Bench) -> Option<String> {
    b.documents
        .get(&(user.to_owned(), DocumentStore::VCard, String::new()))
        .cloned()
}

fn pep_node(user: &str, node: &str, b: &Bench) -> Option<String> {
    b.documents
        .get(&(user.to_owned(), DocumentStore::Pep, node.to_owned()))
        .cloned()
}

#[test]
fn a_vcard_photo_is_published_as_the_pep_avatar() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        &format!(
            "<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>J</FN>\
             <PHOTO><TYPE>image/gif</TYPE><BINVAL>{IMAGE}</BINVAL></PHOTO></vCard></iq>"
        ),
    );
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='v' to='juliet@localhost/balcony'/>"
    );
    let data = pep_node("juliet@localhost", "urn:xmpp:avatar:data", &b).unwrap();
    assert!(
        data.contains(&format!(
            "<item id='{IMAGE_ID}'><data xmlns='urn:xmpp:avatar:data'>{IMAGE}</data></item>"
        )),
        "{data}"
    );
    let metadata = pep_node("juliet@localhost", "urn:xmpp:avatar:metadata", &b).unwrap();
    assert!(
        metadata.contains(&format!(
            "<info bytes='6' id='{IMAGE_ID}' type='image/gif'/>"
        )),
        "{metadata}"
    );
    // Open, as the vCard is: a stranger reads the avatar.
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(
        romeo,
        "<iq type='get' id='i' to='juliet@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <items node='urn:xmpp:avatar:metadata'/></pubsub></iq>",
    );
    assert!(b.take(romeo).contains(IMAGE_ID));
}

#[test]
fn a_vcard_without_a_photo_leaves_the_avatar_alone() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        "<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>J</FN></vCard></iq>",
    );
    b.take(juliet);
    assert_eq!(
        pep_node("juliet@localhost", "urn:xmpp:avatar:metadata", &b),
        None
    );
}

#[test]
fn a_pep_avatar_becomes_the_vcard_photo() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        "<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard></iq>",
    );
    for (node, payload) in [
        (
            "urn:xmpp:avatar:data",
            format!("<data xmlns='urn:xmpp:avatar:data'>{IMAGE}</data>"),
        ),
        (
            "urn:xmpp:avatar:metadata",
            format!(
                "<metadata xmlns='urn:xmpp:avatar:metadata'>\
                 <info bytes='6' id='{IMAGE_ID}' type='image/gif'/></metadata>"
            ),
        ),
    ] {
        b.send(
            juliet,
            &format!(
                "<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                 <publish node='{node}'><item id='{IMAGE_ID}'>{payload}</item></publish></pubsub></iq>"
            ),
        );
    }
    b.take(juliet);
    assert_eq!(
        vcard("juliet@localhost", &b).as_deref(),
        Some(
            format!(
                "<vCard xmlns='vcard-temp'><FN>Juliet</FN><PHOTO><TYPE>image/gif</TYPE>\
                 <BINVAL>{IMAGE}</BINVAL></PHOTO></vCard>"
            )
            .as_str()
        )
    );
}

#[test]
fn the_account_advertises_the_conversion() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    assert!(b
        .own_account_info(juliet, "juliet@localhost")
        .contains("<feature var='urn:xmpp:pep-vcard-conversion:0'/>"));
}

#[test]
fn a_vcard_set_while_an_avatar_converts_wins() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    b.send(
        juliet,
        &format!(
            "<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <publish node='urn:xmpp:avatar:data'><item id='{IMAGE_ID}'>\
             <data xmlns='urn:xmpp:avatar:data'>{IMAGE}</data></item></publish></pubsub></iq>"
        ),
    );
    b.take(juliet);
    b.auto_storage = false;
    b.send(
        juliet,
        &format!(
            "<iq type='set' id='m'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <publish node='urn:xmpp:avatar:metadata'><item id='{IMAGE_ID}'>\
             <metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='6' id='{IMAGE_ID}' type='image/gif'/>\
             </metadata></item></publish></pubsub></iq>"
        ),
    );
    // The node is read, written; the conversion reads the data node,
    // then the vCard...
    for _ in 0..3 {
        b.answer_storage();
    }
    // ...while the client sets its vCard.
    let card = "<vCard xmlns='vcard-temp'><FN>New</FN></vCard>";
    b.send(juliet, &format!("<iq type='set' id='v'>{card}</iq>"));
    for _ in 0..3 {
        b.answer_storage();
    }
    assert!(b
        .take(juliet)
        .ends_with("<iq type='result' id='v' to='juliet@localhost/balcony'/>"));
    assert_eq!(vcard("juliet@localhost", &b).as_deref(), Some(card));
}

#[test]
fn an_avatar_kept_elsewhere_leaves_the_vcard_photo_alone() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let card = format!(
        "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/gif</TYPE><BINVAL>{IMAGE}</BINVAL></PHOTO></vCard>"
    );
    b.send(juliet, &format!("<iq type='set' id='v'>{card}</iq>"));
    b.send(
        juliet,
        "<iq type='set' id='m'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <publish node='urn:xmpp:avatar:metadata'><item id='u'>\
         <metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='6' id='u' type='image/gif' \
         url='https://example.org/a.gif'/></metadata></item></publish></pubsub></iq>",
    );
    b.take(juliet);
    assert_eq!(vcard("juliet@localhost", &b), Some(card));
}

#[test]
fn the_same_photo_set_again_is_not_published_again() {
    let mut b = Bench::new();
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let set = format!(
        "<iq type='set' id='v'><vCard xmlns='vcard-temp'>\
         <PHOTO><TYPE>image/gif</TYPE><BINVAL>{IMAGE}</BINVAL></PHOTO></vCard></iq>"
    );
    b.send(juliet, &set);
    b.take(juliet);
    let writes = |b: &Bench| {
        b.log
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    rookery_core::Output::Storage {
                        query: rookery_core::StorageRequest::StoreDocuments {
                            store: DocumentStore::Pep,
                            ..
                        },
                        ..
                    }
                )
            })
            .count()
    };
    let before = writes(&b);
    b.send(juliet, &set);
    assert_eq!(
        b.take(juliet),
        "<iq type='result' id='v' to='juliet@localhost/balcony'/>"
    );
    assert_eq!(writes(&b), before, "no PEP write for an unchanged photo");
}
