//! vCard-based avatars (XEP-0153): an account's presence names the hash
//! of its avatar, however the avatar was set.

mod support;
use rookery_core::roster::Subscription::Both;
use support::*;

/// "GIF89a" (six bytes), base64, and its SHA-1.
const IMAGE: &str = "R0lGODlh";
const IMAGE_ID: &str = "25c9b37ae36a0a08318d4dca7ca57ea98d776821";

/// Juliet and Romeo share presence; Romeo is online and available.
fn lovers() -> (
    Bench,
    rookery_core::ConnectionId,
    rookery_core::ConnectionId,
) {
    let mut b = Bench::new();
    b.stored_contact("juliet@localhost", "romeo@localhost", Both);
    b.stored_contact("romeo@localhost", "juliet@localhost", Both);
    let juliet = b.bound("juliet", "r0m30", "balcony");
    let romeo = b.bound("romeo", "j00l13t", "orchard");
    b.send(romeo, "<presence/>");
    b.take(romeo);
    (b, juliet, romeo)
}

fn metadata(info: &str) -> String {
    format!(
        "<iq type='set' id='m'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <publish node='urn:xmpp:avatar:metadata'><item id='{IMAGE_ID}'>\
         <metadata xmlns='urn:xmpp:avatar:metadata'>{info}</metadata></item></publish></pubsub></iq>"
    )
}

/// Juliet publishes avatar metadata holding `infos`, then presence: what
/// Romeo sees of it.
fn presence_after_metadata(infos: &str) -> String {
    let (mut b, juliet, romeo) = lovers();
    b.send(juliet, &metadata(infos));
    b.take(juliet);
    b.send(juliet, "<presence/>");
    b.take(romeo)
}

fn presence_with_photo(photo: &str) -> String {
    format!(
        "<presence from='juliet@localhost/balcony'>\
         <x xmlns='vcard-temp:x:update'><photo>{photo}</photo></x></presence>"
    )
}

#[test]
fn presence_after_a_pep_avatar_names_its_hash() {
    assert_eq!(
        presence_after_metadata(&format!(
            "<info id='{IMAGE_ID}' bytes='6' type='image/gif'/>"
        )),
        presence_with_photo(IMAGE_ID)
    );
}

#[test]
fn presence_after_a_vcard_photo_names_its_hash() {
    let (mut b, juliet, romeo) = lovers();
    b.send(
        juliet,
        &format!(
            "<iq type='set' id='v'><vCard xmlns='vcard-temp'>\
             <PHOTO><TYPE>image/gif</TYPE><BINVAL>{IMAGE}</BINVAL></PHOTO></vCard></iq>"
        ),
    );
    b.take(juliet);
    b.send(juliet, "<presence><show>away</show></presence>");
    assert_eq!(
        b.take(romeo),
        format!(
            "<presence from='juliet@localhost/balcony'><show>away</show>\
             <x xmlns='vcard-temp:x:update'><photo>{IMAGE_ID}</photo></x></presence>"
        )
    );
}

#[test]
fn an_avatar_taken_down_leaves_an_empty_photo_and_the_hash_survives_the_session() {
    let (mut b, juliet, romeo) = lovers();
    b.send(juliet, &metadata(""));
    b.take(juliet);
    b.send(juliet, "<presence/>");
    assert_eq!(
        b.take(romeo),
        "<presence from='juliet@localhost/balcony'>\
         <x xmlns='vcard-temp:x:update'><photo/></x></presence>"
    );
    assert_eq!(
        b.rosters["juliet@localhost"].photo.as_deref(),
        Some(""),
        "kept with the roster for the next login"
    );
}

#[test]
fn a_presence_saying_something_of_its_photo_is_left_alone_and_one_never_with_an_avatar_too() {
    let (mut b, juliet, romeo) = lovers();
    b.send(juliet, "<presence/>");
    assert_eq!(b.take(romeo), "<presence from='juliet@localhost/balcony'/>");
    b.send(
        juliet,
        &metadata(&format!(
            "<info id='{IMAGE_ID}' bytes='6' type='image/gif'/>"
        )),
    );
    b.take(juliet);
    // Not ready to say (XEP-0153 section 4.2).
    b.send(
        juliet,
        "<presence><x xmlns='vcard-temp:x:update'/></presence>",
    );
    assert_eq!(
        b.take(romeo),
        "<presence from='juliet@localhost/balcony'>\
         <x xmlns='vcard-temp:x:update'/></presence>"
    );
}

#[test]
fn the_photo_is_the_first_avatar_kept_on_pep_not_one_hosted_elsewhere() {
    assert_eq!(
        presence_after_metadata(&format!(
            "<info id='aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' bytes='9' type='image/png' \
             url='https://example.org/a.png'/><info id='{IMAGE_ID}' bytes='6' type='image/gif'/>"
        )),
        presence_with_photo(IMAGE_ID)
    );
}

#[test]
fn an_avatar_change_leaves_the_roster_version_alone() {
    let (mut b, juliet, _) = lovers();
    let before = b.rosters["juliet@localhost"].version;
    b.send(
        juliet,
        &metadata(&format!(
            "<info id='{IMAGE_ID}' bytes='6' type='image/gif'/>"
        )),
    );
    b.take(juliet);
    let roster = &b.rosters["juliet@localhost"];
    assert_eq!(roster.photo.as_deref(), Some(IMAGE_ID));
    assert_eq!(roster.version, before);
}
