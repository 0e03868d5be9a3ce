//! The meta API's events and `wamp.session.kill*` (WAMP spec, "Registration Meta API",
//! "Subscription Meta API", "Session Meta API"), on the sans-I/O router. The meta procedures
//! are in router.rs.

mod common;

use common::*;
use sockeye_wamp_proto::router::ConnId;
use sockeye_wamp_proto::{Dict, Message, Serializer, Value};

/// The meta events `watcher` got in `out`, as (topic, args), in order.
fn meta_events(
    out: &[(ConnId, Message)],
    watcher: ConnId,
    subs: &[(u64, &str)],
) -> Vec<(String, Vec<Value>)> {
    out.iter()
        .filter_map(|(to, m)| match m {
            Message::Event {
                subscription,
                payload,
                ..
            } if *to == watcher => {
                let topic = subs.iter().find(|(id, _)| id == subscription)?.1;
                Some((topic.to_owned(), payload.args().to_vec()))
            }
            _ => None,
        })
        .collect()
}

fn watch(h: &mut H, watcher: ConnId, topics: &[&'static str]) -> Vec<(u64, &'static str)> {
    // The watcher hears about its own subscriptions to the meta topics too.
    topics
        .iter()
        .map(
            |t| match &h.send_msgs(watcher, &format!(r#"[32,1,{{}},"{t}"]"#))[..] {
                [(_, Message::Subscribed { subscription, .. }), ..] => (*subscription, *t),
                other => panic!("{other:?}"),
            },
        )
        .collect()
}

/// The messages in `out`, closes left out.
fn messages(out: Vec<Out>) -> Vec<(ConnId, Message)> {
    out.into_iter()
        .filter_map(|o| match o {
            Out::Msg(c, t) => Some((c, Serializer::Json.decode(t.as_bytes()).unwrap())),
            _ => None,
        })
        .collect()
}

fn ev(topic: &str, args: Vec<Value>) -> (String, Vec<Value>) {
    (topic.to_owned(), args)
}

#[test]
fn registration_meta_events_follow_the_lifecycle() {
    let mut h = H::new();
    let (w, _) = h.join();
    let subs = watch(
        &mut h,
        w,
        &[
            "wamp.registration.on_create",
            "wamp.registration.on_register",
            "wamp.registration.on_unregister",
            "wamp.registration.on_delete",
        ],
    );
    let (a, ida) = h.join();
    let (b, idb) = h.join();
    let out = h.send_msgs(a, r#"[64,1,{"invoke":"roundrobin"},"com.p"]"#);
    let [(
        _,
        Message::Registered {
            registration: reg, ..
        },
    ), ..] = &out[..]
    else {
        panic!("{out:?}")
    };
    let reg = *reg;
    let info = Dict::new()
        .with("id", reg)
        .with("uri", "com.p")
        .with("match", "exact")
        .with("invoke", "roundrobin");
    assert_eq!(
        meta_events(&out, w, &subs),
        vec![
            ev(
                "wamp.registration.on_create",
                vec![ida.into(), Value::Dict(info)]
            ),
            ev(
                "wamp.registration.on_register",
                vec![ida.into(), reg.into()]
            ),
        ]
    );
    // A second callee joins the shared registration: no on_create.
    let out = h.send_msgs(b, r#"[64,1,{"invoke":"roundrobin"},"com.p"]"#);
    assert_eq!(
        meta_events(&out, w, &subs),
        vec![ev(
            "wamp.registration.on_register",
            vec![idb.into(), reg.into()]
        )]
    );
    let out = h.send_msgs(a, &format!("[66,2,{reg}]"));
    assert_eq!(
        meta_events(&out, w, &subs),
        vec![ev(
            "wamp.registration.on_unregister",
            vec![ida.into(), reg.into()]
        )]
    );
    // The last callee leaving (here by disconnecting) deletes the registration.
    h.r.disconnect(b);
    let out = messages(h.drain());
    assert_eq!(
        meta_events(&out, w, &subs),
        vec![
            ev(
                "wamp.registration.on_unregister",
                vec![idb.into(), reg.into()]
            ),
            ev("wamp.registration.on_delete", vec![idb.into(), reg.into()]),
        ]
    );
}

#[test]
fn subscription_meta_events_follow_the_lifecycle() {
    let mut h = H::new();
    let (w, _) = h.join();
    let subs = watch(
        &mut h,
        w,
        &[
            "wamp.subscription.on_create",
            "wamp.subscription.on_subscribe",
            "wamp.subscription.on_unsubscribe",
            "wamp.subscription.on_delete",
        ],
    );
    let (a, ida) = h.join();
    let (b, idb) = h.join();
    let out = h.send_msgs(a, r#"[32,1,{"match":"prefix"},"com.t"]"#);
    let [(
        _,
        Message::Subscribed {
            subscription: sub, ..
        },
    ), ..] = &out[..]
    else {
        panic!("{out:?}")
    };
    let sub = *sub;
    let info = Dict::new()
        .with("id", sub)
        .with("uri", "com.t")
        .with("match", "prefix");
    assert_eq!(
        meta_events(&out, w, &subs),
        vec![
            ev(
                "wamp.subscription.on_create",
                vec![ida.into(), Value::Dict(info)]
            ),
            ev(
                "wamp.subscription.on_subscribe",
                vec![ida.into(), sub.into()]
            ),
        ]
    );
    let out = h.send_msgs(b, r#"[32,1,{"match":"prefix"},"com.t"]"#);
    assert_eq!(
        meta_events(&out, w, &subs),
        vec![ev(
            "wamp.subscription.on_subscribe",
            vec![idb.into(), sub.into()]
        )]
    );
    // Subscribing twice changes nothing and says nothing.
    let out = h.send_msgs(b, r#"[32,2,{"match":"prefix"},"com.t"]"#);
    assert_eq!(meta_events(&out, w, &subs), vec![]);
    let out = h.send_msgs(a, &format!("[34,3,{sub}]"));
    assert_eq!(
        meta_events(&out, w, &subs),
        vec![ev(
            "wamp.subscription.on_unsubscribe",
            vec![ida.into(), sub.into()]
        )]
    );
    let out = h.send_msgs(b, &format!("[34,3,{sub}]"));
    assert_eq!(
        meta_events(&out, w, &subs),
        vec![
            ev(
                "wamp.subscription.on_unsubscribe",
                vec![idb.into(), sub.into()]
            ),
            ev("wamp.subscription.on_delete", vec![idb.into(), sub.into()]),
        ]
    );
}

#[test]
fn session_kill_says_goodbye_to_that_session_and_closes_it() {
    let mut h = H::new();
    let (killer, _) = h.join();
    let (victim, vid) = h.join();
    let (bystander, _) = h.join();
    let out = h.send(
        killer,
        &format!(
            r#"[48,1,{{}},"wamp.session.kill",[{vid}],{{"reason":"com.example.bye","message":"out"}}]"#
        ),
    );
    assert_eq!(
        out,
        vec![
            msg(victim, r#"[6,{"message":"out"},"com.example.bye"]"#),
            Out::Close(victim),
            msg(killer, "[50,1,{}]"),
        ]
    );
    assert_eq!(h.r.session_id(victim), None);
    assert!(h.r.session_id(bystander).is_some());
    assert_eq!(h.r.session_count("realm1"), 2);
}

#[test]
fn session_kill_refuses_the_caller_itself_and_unknown_or_foreign_sessions() {
    let mut h = H::new();
    let (a, ida) = h.join();
    let (_elsewhere, other_realm) = h.join_with("realm2", ALL_ROLES);
    assert_eq!(
        h.send(a, &format!(r#"[48,1,{{}},"wamp.session.kill",[{ida}]]"#)),
        vec![msg(a, r#"[8,48,1,{},"wamp.error.invalid_argument"]"#)]
    );
    assert_eq!(
        h.send(
            a,
            &format!(r#"[48,2,{{}},"wamp.session.kill",[{other_realm}]]"#)
        ),
        vec![msg(a, r#"[8,48,2,{},"wamp.error.no_such_session"]"#)]
    );
    assert_eq!(
        h.send(a, r#"[48,3,{},"wamp.session.kill",[1]]"#),
        vec![msg(a, r#"[8,48,3,{},"wamp.error.no_such_session"]"#)]
    );
    assert_eq!(
        h.send(
            a,
            r#"[48,4,{},"wamp.session.kill",[2],{"reason":"not a uri"}]"#
        ),
        vec![msg(a, r#"[8,48,4,{},"wamp.error.invalid_uri"]"#)]
    );
}

#[test]
fn kill_by_authid_and_by_authrole_end_every_matching_session_but_the_callers() {
    let mut h = H::new();
    let (a, _) = h.join();
    let (b, idb) = h.join();
    let (c, _) = h.join();
    let (d, _) = h.join();
    let out = messages(h.send(
        a,
        &format!(r#"[48,1,{{}},"wamp.session.kill_by_authid",["anonymous-{idb}"]]"#),
    ));
    assert!(
        matches!(&out[0], (to, Message::Goodbye { reason, .. }) if *to == b && reason == "wamp.close.killed")
    );
    assert_eq!(result_of(out[1..].to_vec()), Value::List(vec![idb.into()]));
    let out = messages(h.send(
        a,
        r#"[48,2,{},"wamp.session.kill_by_authrole",["anonymous"]]"#,
    ));
    let goodbyes: Vec<ConnId> = out
        .iter()
        .filter(|(_, m)| matches!(m, Message::Goodbye { .. }))
        .map(|(to, _)| *to)
        .collect();
    assert_eq!(goodbyes.len(), 2);
    assert!(goodbyes.contains(&c) && goodbyes.contains(&d));
    assert_eq!(result_of(out[2..].to_vec()), Value::from(2));
    assert_eq!(h.r.session_count("realm1"), 1);
}
