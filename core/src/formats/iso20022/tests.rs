use super::*;

fn tree(xml: &str) -> Node {
    let mut s = XmlStream::new(xml, "t.xml");
    let o = s.next_child().unwrap().unwrap();
    s.subtree(&o).unwrap()
}

#[test]
fn paths_index_repeating_elements() {
    let n = tree("<Ntfctn><Ntry><Amt/></Ntry><Ntry><Amt Ccy='EUR'>1</Amt></Ntry></Ntfctn>");
    let second = n.all("Ntry").nth(1).unwrap();
    assert_eq!(second.path, "/Ntfctn[1]/Ntry[2]");
    assert_eq!(second.child("Amt").unwrap().path, "/Ntfctn[1]/Ntry[2]/Amt");
    assert_eq!(second.child("Amt").unwrap().ccy.as_deref(), Some("EUR"));
}

#[test]
fn entities_and_cdata_are_text() {
    let n = tree("<Ustrd>A &amp; B &#x41;<![CDATA[<x>]]></Ustrd>");
    assert_eq!(n.text(), Some("A & B A<x>"));
    let mut s = XmlStream::new("<a>&bogus;</a>", "t.xml");
    let o = s.next_child().unwrap().unwrap();
    let e = s.subtree(&o).unwrap_err();
    assert!(e.message.contains("unknown entity"), "{e}");
}

#[test]
fn money_refuses_signs_and_junk() {
    let ok = tree("<Amt Ccy='chf'>1537.00</Amt>");
    assert_eq!(money(&ok, "f").unwrap().ccy, Some("CHF".parse().unwrap()));
    for bad in [
        "<Amt>-5</Amt>",
        "<Amt>1,5</Amt>",
        "<Amt>1e5</Amt>",
        "<Amt>.</Amt>",
    ] {
        assert!(money(&tree(bad), "f").is_err(), "{bad}");
    }
    let huge = format!("<Amt>{}</Amt>", "9".repeat(40));
    assert!(money(&tree(&huge), "f").is_err());
}

#[test]
fn latin1_declaration_is_honoured() {
    let bytes = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>\xC4</a>";
    assert!(decode_input(bytes, "f").unwrap().contains('Ä'));
    let e = decode_input(b"<a>\xC4</a>", "f").unwrap_err();
    assert!(e.message.contains("UTF-8 at byte 3"), "{e}");
}

#[test]
fn repeated_ids_get_suffixes() {
    let mut ids = PaymentIds::default();
    let mut w = Vec::new();
    assert_eq!(ids.unique("A".into(), &mut w), "A");
    assert_eq!(ids.unique("A".into(), &mut w), "A#2");
    assert_eq!(ids.unique("A#2".into(), &mut w), "A#2#2");
    assert_eq!(ids.unique("A".into(), &mut w), "A#3");
    assert_eq!(w.len(), 3);
}
