//! Which confirm a returned message belongs to: the bookkeeping of returns.

use super::*;

fn key(target: &str, id: &str) -> ReturnKey {
    ReturnKey {
        target: target.into(),
        message_id: id.into(),
    }
}

#[test]
fn returns_are_matched_to_their_publish_whoever_carried_them() {
    let mut book = ReturnBook::default();
    book.expect(Some(&key("gone", "m1")));
    book.expect(Some(&key("here", "m2")));
    // The return of m1 rides on m2's confirm, which lapin completes first.
    let returned = lapin::message::BasicReturnMessage {
        delivery: lapin::message::Delivery::mock(0, "".into(), "gone".into(), false, vec![]),
        reply_code: 312,
        reply_text: "NO_ROUTE".into(),
    };
    let mut returned = returned;
    returned.delivery.properties = BasicProperties::default().with_message_id("m1".into());
    book.returned("me", None, &returned);
    assert!(!book.settle(&key("here", "m2")));
    assert!(book.settle(&key("gone", "m1")));
    assert!(book.entries.is_empty());
}

#[test]
fn returns_of_broadcasts_and_strangers_are_ignored() {
    let mut book = ReturnBook::default();
    book.expect(Some(&key("x", "m1")));
    let mut topic = lapin::message::BasicReturnMessage {
        delivery: lapin::message::Delivery::mock(0, "topic".into(), "x".into(), false, vec![]),
        reply_code: 312,
        reply_text: "NO_ROUTE".into(),
    };
    topic.delivery.properties = BasicProperties::default().with_message_id("m1".into());
    book.returned("me", None, &topic);
    assert!(!book.settle(&key("x", "m1")));
    let mut stranger = topic;
    stranger.delivery.exchange = "".into();
    book.returned("me", None, &stranger);
    assert!(book.entries.is_empty());
}
