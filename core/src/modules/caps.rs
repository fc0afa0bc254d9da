//! Entity Capabilities (XEP-0115) for the server itself: a hash of its
//! disco#info in the stream features, so that a client that saw this
//! server before (or this version of it) need not ask again.

use super::Module;
use crate::xml::Element;
use base64::Engine;
use sha1::{Digest, Sha1};

pub const NS: &str = "http://jabber.org/protocol/caps";
/// Where the hash's inputs can be asked for: `node#ver`.
pub const NODE: &str = "https://rookery.chat";

/// Its stream feature is built by `Loaded` from what the other modules
/// declare (see [`feature`]).
pub(crate) const MODULE: Module = Module {
    name: "caps",
    ..Module::NONE
};

/// `<c/>` for a server whose disco#info has this `identity`
/// (category, type, name), these `features` and these extended `forms`.
pub(crate) fn feature(
    identity: (&str, &str, &str),
    features: &[&str],
    forms: &[Element],
) -> Element {
    Element::new("c", NS)
        .attr("hash", "sha-1")
        .attr("node", NODE)
        .attr("ver", &verification(identity, features, forms))
}

/// XEP-0115 section 5.1: the verification string.
fn verification(identity: (&str, &str, &str), features: &[&str], forms: &[Element]) -> String {
    let (category, kind, name) = identity;
    let mut s = format!("{category}/{kind}//{name}<");
    let mut features = features.to_vec();
    features.sort_unstable();
    for feature in features {
        s.push_str(feature);
        s.push('<');
    }
    let mut forms: Vec<Form> = forms.iter().map(form_fields).collect();
    forms.sort();
    for (form_type, fields) in forms {
        s.push_str(&form_type);
        s.push('<');
        for (var, values) in fields {
            s.push_str(&var);
            s.push('<');
            for value in values {
                s.push_str(&value);
                s.push('<');
            }
        }
    }
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes()))
}

/// A field's `var` and values.
type Field = (String, Vec<String>);
/// A form's FORM_TYPE and other fields.
type Form = (String, Vec<Field>);

/// A data form's FORM_TYPE, and its other fields sorted by `var`, each
/// with its values sorted.
fn form_fields(form: &Element) -> Form {
    const DATA: &str = "jabber:x:data";
    let mut form_type = String::new();
    let mut fields = Vec::new();
    for field in form.children().filter(|c| c.is("field", DATA)) {
        let var = field.get_attr("var").unwrap_or_default().to_owned();
        let mut values: Vec<String> = field
            .children()
            .filter(|v| v.is("value", DATA))
            .map(Element::text_content)
            .collect();
        if var == "FORM_TYPE" {
            form_type = values.pop().unwrap_or_default();
            continue;
        }
        values.sort();
        fields.push((var, values));
    }
    fields.sort();
    (form_type, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0115 section 5.2's simple example.
    #[test]
    fn the_simple_example_of_the_xep_hashes_as_published() {
        let features = [
            "http://jabber.org/protocol/caps",
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "http://jabber.org/protocol/muc",
        ];
        assert_eq!(
            verification(("client", "pc", "Exodus 0.9.1"), &features, &[]),
            "QgayPKawpkPSDYmwT/WM94uAlu0="
        );
    }
}
