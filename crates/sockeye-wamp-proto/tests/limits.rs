//! What any client can make the router hold, bounded: realms a HELLO creates are freed with
//! their last session and capped in number, and retained events are capped per realm in count
//! and bytes, the oldest forgotten first (issue 19). On the sans-I/O router.

mod common;

use common::*;
use sockeye_wamp_proto::router::{ConnId, RouterConfig};
use sockeye_wamp_proto::{Message, Value};

fn leave(h: &mut H, c: ConnId) {
    let _ = h.send(c, r#"[6,{},"wamp.close.close_realm"]"#);
    h.r.disconnect(c);
}

#[test]
fn a_realm_a_hello_created_is_freed_with_its_last_session_and_configured_ones_stay() {
    let mut h = H::new();
    assert_eq!(h.r.realm_count(), 1); // realm1
    for i in 0..100 {
        let (a, _) = h.join_with(&format!("com.example.room{i}"), ALL_ROLES);
        let (b, _) = h.join_with(&format!("com.example.room{i}"), ALL_ROLES);
        // Retained events go with the realm.
        let _ = h.send(a, r#"[16,1,{"retain":true},"com.example.topic",["kept"]]"#);
        assert_eq!(h.r.realm_count(), 2);
        leave(&mut h, a);
        assert_eq!(h.r.realm_count(), 2, "b is still in it");
        leave(&mut h, b);
        assert_eq!(h.r.realm_count(), 1);
    }
    let (c, _) = h.join();
    leave(&mut h, c);
    assert_eq!(h.r.realm_count(), 1, "realm1 is configured and stays");
    // A freed realm starts afresh: nothing retained.
    let (d, _) = h.join_with("com.example.room0", ALL_ROLES);
    let out = h.send_msgs(d, r#"[32,2,{"get_retained":true},"com.example.topic"]"#);
    assert_eq!(out.len(), 1, "{out:?}");
}

#[test]
fn hellos_for_new_realms_past_the_limit_are_aborted() {
    let mut h = H::with({
        let mut config = RouterConfig::default();
        config.max_auto_realms = 2;
        config
    });
    h.join_with("com.example.a", ALL_ROLES);
    let (b, _) = h.join_with("com.example.b", ALL_ROLES);
    let c = h.r.connect();
    let out = h.send(c, &format!(r#"[1,"com.example.c",{ALL_ROLES}]"#));
    assert!(
        matches!(&out[..], [Out::Msg(_, abort), Out::Close(_)] if abort.contains("wamp.error.no_such_realm")),
        "{out:?}"
    );
    // Configured realms do not count, and a freed one makes room.
    h.join();
    leave(&mut h, b);
    h.join_with("com.example.c", ALL_ROLES);
}

/// The retained events a fresh subscriber to everything in realm1 gets, as their first args.
fn retained(h: &mut H) -> Vec<Value> {
    let (c, _) = h.join();
    let out = h.send_msgs(c, r#"[32,9,{"get_retained":true,"match":"prefix"},"com."]"#);
    leave(h, c);
    out.into_iter()
        .filter_map(|(_, m)| match m {
            Message::Event { payload, .. } => Some(payload.args()[0].clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn retained_events_are_capped_per_realm_in_number_oldest_forgotten_first() {
    let mut h = H::with({
        let mut config = RouterConfig::default();
        config.max_retained_events = 3;
        config
    });
    let (p, _) = h.join();
    for i in 0..5 {
        let _ = h.send(
            p,
            &format!(r#"[16,{},{{"retain":true}},"com.t{i}",[{i}]]"#, i + 1),
        );
    }
    // Publishing on a topic again replaces its event and makes it the newest.
    let _ = h.send(p, r#"[16,9,{"retain":true},"com.t2",[22]]"#);
    assert_eq!(
        retained(&mut h),
        [Value::from(3), Value::from(4), Value::from(22)]
    );
}

#[test]
fn retained_events_are_capped_per_realm_in_bytes_and_a_larger_one_is_not_kept() {
    let mut h = H::with({
        let mut config = RouterConfig::default();
        config.max_retained_bytes = 3000;
        config
    });
    let (p, _) = h.join();
    let text = |n: usize| "x".repeat(n);
    for (i, n) in [(1, 1000), (2, 1000), (3, 1000)] {
        let _ = h.send(
            p,
            &format!(r#"[16,{i},{{"retain":true}},"com.t{i}",["{}"]]"#, text(n)),
        );
    }
    // Three events of about 1 KB do not fit in 3,000 bytes with their topics: the first went.
    let kept = retained(&mut h);
    assert_eq!(kept, [Value::from(text(1000)), Value::from(text(1000))]);
    let _ = h.send(
        p,
        &format!(r#"[16,7,{{"retain":true}},"com.t3",["{}"]]"#, text(5000)),
    );
    // Too large to keep at all; and it replaced com.t3's event, which is gone too.
    assert_eq!(retained(&mut h).len(), 1);
}
