//! Contact Addresses for XMPP Services (XEP-0157): where to report abuse
//! or reach the operator, from the configuration, in the server's
//! disco#info as an extended form (XEP-0128).

use super::Module;
use crate::config::Config;
use crate::xml::Element;

const DATA: &str = "jabber:x:data";
pub const FORM_TYPE: &str = "http://jabber.org/network/serverinfo";

/// The kinds of address XEP-0157 names; each becomes `<kind>-addresses`.
pub const KINDS: [&str; 7] = [
    "abuse", "admin", "feedback", "sales", "security", "status", "support",
];

pub(crate) const MODULE: Module = Module {
    name: "contact_info",
    info_forms: form,
    ..Module::NONE
};

/// The form, when the operator configured any address.
fn form(config: &Config) -> Vec<Element> {
    if config
        .contact_info
        .iter()
        .all(|(_, addresses)| addresses.is_empty())
    {
        return Vec::new();
    }
    let mut form = Element::new("x", DATA).attr("type", "result").child(
        Element::new("field", DATA)
            .attr("var", "FORM_TYPE")
            .attr("type", "hidden")
            .child(Element::new("value", DATA).text(FORM_TYPE)),
    );
    for (kind, addresses) in &config.contact_info {
        let mut field = Element::new("field", DATA)
            .attr("var", &format!("{kind}-addresses"))
            .attr("type", "list-multi");
        for address in addresses {
            field.push_child(Element::new("value", DATA).text(address));
        }
        form.push_child(field);
    }
    vec![form]
}
