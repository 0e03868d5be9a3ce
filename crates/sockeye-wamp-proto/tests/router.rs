//! The sans-I/O router, driven message by message without sockets: session lifecycle,
//! protocol violations, broker, dealer. Messages are written as their JSON wire form.

mod common;

use common::*;
use sockeye_wamp_proto::message::code;
use sockeye_wamp_proto::router::{ConnId, RouterConfig};
use sockeye_wamp_proto::{Message, Payload, Serializer, UriCheck, Value};

// ---- session lifecycle ----

#[test]
fn welcome_announces_exactly_the_implemented_features() {
    let mut h = H::new();
    let c = h.r.connect();
    let out = h.send_msgs(c, r#"[1,"realm1",{"roles":{"subscriber":{}}}]"#);
    let [(_, Message::Welcome { session, details })] = &out[..] else {
        panic!("{out:?}")
    };
    assert!((1..=1u64 << 53).contains(session));
    let roles =
        Serializer::Json.encode_value(&Value::Dict(details.get_dict("roles").unwrap().clone()));
    assert_eq!(
        String::from_utf8(roles).unwrap(),
        concat!(
            r#"{"broker":{"features":{"publisher_exclusion":true,"publisher_identification":true,"#,
            r#""subscriber_blackwhite_listing":true,"pattern_based_subscription":true,"payload_passthru_mode":true,"#,
            r#""session_meta_api":true,"subscription_meta_api":true,"event_retention":true}},"#,
            r#""dealer":{"features":{"caller_identification":true,"progressive_call_results":true,"#,
            r#""call_canceling":true,"pattern_based_registration":true,"payload_passthru_mode":true,"#,
            r#""session_meta_api":true,"registration_meta_api":true,"shared_registration":true,"call_timeout":true}}}"#
        )
    );
    assert_eq!(details.get_str("authrole"), Some("anonymous"));
    assert_eq!(h.r.session_id(c), Some(*session));
}

#[test]
fn a_message_before_hello_is_a_protocol_violation() {
    let mut h = H::new();
    let c = h.r.connect();
    assert_eq!(
        h.send(c, r#"[32,1,{},"a.b"]"#),
        abort(c, "SUBSCRIBE received before HELLO")
    );
    // The connection is forgotten: later input is ignored.
    assert_eq!(h.send(c, r#"[1,"realm1",{"roles":{"caller":{}}}]"#), vec![]);
}

#[test]
fn a_second_hello_is_a_protocol_violation() {
    let mut h = H::new();
    let (c, _) = h.join();
    assert_eq!(
        h.send(c, &format!(r#"[1,"realm1",{ALL_ROLES}]"#)),
        abort(c, "HELLO received in a session")
    );
    assert_eq!(h.r.session_count("realm1"), 0);
}

#[test]
fn router_to_client_messages_from_a_client_are_violations() {
    for m in [
        r#"[2,1,{"roles":{"broker":{}}}]"#,
        r#"[36,1,2,{}]"#,
        r#"[50,1,{}]"#,
        r#"[68,1,2,{}]"#,
        r#"[33,1,2]"#,
        r#"[8,48,1,{},"x.y"]"#,
    ] {
        let mut h = H::new();
        let (c, _) = h.join();
        let out = h.send(c, m);
        assert_eq!(out.len(), 2, "{m}: {out:?}");
        assert!(
            matches!(&out[0], Out::Msg(_, t) if t.ends_with(r#""wamp.error.protocol_violation"]"#)),
            "{m}: {out:?}"
        );
        assert_eq!(out[1], Out::Close(c));
    }
}

#[test]
fn malformed_messages_abort_only_their_session() {
    let cases = [
        ("not json", "invalid JSON"),
        (r#"{"a":1}"#, "a message must be a list"),
        ("[]", "empty message"),
        (r#"[999,1]"#, "unknown message code 999"),
        (r#"["16",1]"#, "message code must be an integer"),
        (r#"[16,1,{},"t",{}]"#, "PUBLISH: Arguments must be a list"),
        (r#"[16,0,{},"t"]"#, "PUBLISH: Request 0 is not in [1, 2^53]"),
        (
            r#"[16,9007199254740993,{},"t"]"#,
            "PUBLISH: Request 9007199254740993 is not in [1, 2^53]",
        ),
        (
            r#"[16,1,{"acknowledge":1},"t"]"#,
            "PUBLISH: invalid Options.acknowledge",
        ),
        (
            r#"[32,1,{"match":"regex"},"t"]"#,
            "SUBSCRIBE: invalid Options.match",
        ),
        (r#"[48,1,{},5]"#, "CALL: Procedure must be a string"),
        (r#"[70,1]"#, "YIELD: missing Options"),
    ];
    for (input, text) in cases {
        let mut h = H::new();
        let (bystander, _) = h.join();
        let sub = h.subscribe(bystander, "{}", "t");
        let (c, _) = h.join();
        let out = h.send(c, input);
        assert_eq!(out.len(), 2, "{input}: {out:?}");
        match &out[0] {
            Out::Msg(to, t) => {
                assert_eq!(*to, c);
                assert!(
                    t.contains(text) && t.ends_with(r#""wamp.error.protocol_violation"]"#),
                    "{input}: {t}"
                );
            }
            other => panic!("{other:?}"),
        }
        // The router keeps serving the others.
        let (p, _) = h.join();
        let out = h.send_msgs(p, r#"[16,5,{},"t",["still here"]]"#);
        assert!(
            matches!(&out[..], [(to, Message::Event { subscription, .. })] if *to == bystander && *subscription == sub),
            "{out:?}"
        );
    }
}

#[test]
fn hello_checks_realm_and_roles() {
    let mut h = H::with({
        let mut config = RouterConfig::default();
        config.auto_create_realms = false;
        config
    });
    let c = h.r.connect();
    assert_eq!(
        h.send(c, r#"[1,"other",{"roles":{"caller":{}}}]"#),
        vec![
            msg(
                c,
                r#"[3,{"message":"no realm \"other\""},"wamp.error.no_such_realm"]"#
            ),
            Out::Close(c)
        ]
    );
    let c = h.r.connect();
    assert_eq!(
        h.send(c, r#"[1,"bad realm",{"roles":{"caller":{}}}]"#),
        vec![
            msg(
                c,
                r#"[3,{"message":"invalid realm \"bad realm\""},"wamp.error.invalid_uri"]"#
            ),
            Out::Close(c)
        ]
    );
    let c = h.r.connect();
    let out = h.send(c, r#"[1,"realm1",{"roles":{"dealer":{}}}]"#);
    assert!(
        matches!(&out[0], Out::Msg(_, t) if t.contains("at least one of")),
        "{out:?}"
    );
    let c = h.r.connect();
    let out = h.send(
        c,
        r#"[1,"realm1",{"roles":{"caller":{"features":{"x":"yes"}}}}]"#,
    );
    assert!(
        matches!(&out[0], Out::Msg(_, t) if t.contains("dict of booleans")),
        "{out:?}"
    );
}

#[test]
fn goodbye_is_answered_and_the_transport_closed() {
    let mut h = H::new();
    let (c, _) = h.join();
    assert_eq!(
        h.send(c, r#"[6,{},"wamp.close.normal"]"#),
        vec![
            msg(c, r#"[6,{},"wamp.close.goodbye_and_out"]"#),
            Out::Close(c)
        ]
    );
    assert_eq!(h.r.session_count("realm1"), 0);
}

#[test]
fn goodbye_is_answered_and_a_new_session_may_start() {
    let mut h = H::with({
        let mut config = RouterConfig::default();
        config.close_after_goodbye = false;
        config
    });
    let (c, first) = h.join();
    h.register(c, "{}", "p");
    assert_eq!(
        h.send(c, r#"[6,{},"wamp.close.normal"]"#),
        vec![msg(c, r#"[6,{},"wamp.close.goodbye_and_out"]"#)]
    );
    assert_eq!(h.r.session_id(c), None);
    let out = h.send_msgs(c, &format!(r#"[1,"realm1",{ALL_ROLES}]"#));
    let [(_, Message::Welcome { session, .. })] = &out[..] else {
        panic!("{out:?}")
    };
    assert_ne!(*session, first);
    // The old session's registration went with it.
    assert_eq!(h.register(c, "{}", "p"), 2);
}

#[test]
fn a_client_abort_during_the_opening_closes_quietly() {
    let mut h = H::new();
    let c = h.r.connect();
    assert_eq!(
        h.send(c, r#"[3,{},"wamp.error.no_such_realm"]"#),
        vec![Out::Close(c)]
    );
}

#[test]
fn kick_says_goodbye_and_cleans_up() {
    let mut h = H::new();
    let (c, _) = h.join();
    h.r.kick(c, "wamp.close.system_shutdown", "bye");
    assert_eq!(
        h.drain(),
        vec![
            msg(c, r#"[6,{"message":"bye"},"wamp.close.system_shutdown"]"#),
            Out::Close(c)
        ]
    );
    assert_eq!(h.r.session_count("realm1"), 0);
}

#[test]
fn goodbye_at_shutdown_waits_for_the_clients_goodbye_then_closes() {
    let (mut h, c, watcher) = H::two_sessions();
    let leave_sub = h.subscribe(watcher, "{}", "wamp.session.on_leave");
    assert!(h.r.goodbye(c, "wamp.close.system_shutdown", "stopping"));
    let out = h.drain();
    assert_eq!(
        out[0],
        msg(
            c,
            r#"[6,{"message":"stopping"},"wamp.close.system_shutdown"]"#
        )
    );
    // The session is over at once (others hear it left), the transport stays open.
    assert!(
        matches!(&out[1], Out::Msg(w, t) if *w == watcher && t.starts_with(&format!("[36,{leave_sub},")))
    );
    assert_eq!(out.len(), 2);
    assert_eq!(h.r.session_count("realm1"), 1);
    // What the client sent meanwhile is dropped; its GOODBYE closes the transport.
    assert_eq!(h.send(c, r#"[48,1,{},"p"]"#), vec![]);
    assert_eq!(
        h.send(c, r#"[6,{},"wamp.close.goodbye_and_out"]"#),
        vec![Out::Close(c)]
    );
    // No session, nobody to say goodbye to.
    let fresh = h.r.connect();
    assert!(!h.r.goodbye(fresh, "wamp.close.system_shutdown", ""));
    assert_eq!(h.drain(), vec![]);
}

#[test]
fn realms_are_separate() {
    let mut h = H::new();
    let (a, _) = h.join_with("realm1", ALL_ROLES);
    let (b, _) = h.join_with("realm2", ALL_ROLES);
    h.subscribe(a, "{}", "t");
    assert_eq!(
        h.send(b, r#"[16,1,{"acknowledge":true},"t"]"#).len(),
        1,
        "only PUBLISHED"
    );
    h.register(a, "{}", "p");
    h.register(b, "{}", "p");
}

// ---- broker ----

#[test]
fn publish_reaches_subscribers_but_not_the_publisher_by_default() {
    let (mut h, a, b) = H::two_sessions();
    let sa = h.subscribe(a, "{}", "com.myapp.topic1");
    let sb = h.subscribe(b, "{}", "com.myapp.topic1");
    assert_eq!(sa, sb, "one subscription per topic and policy");
    let out = h.send_msgs(
        a,
        r#"[16,7,{},"com.myapp.topic1",["Hello, world!"],{"k":1}]"#,
    );
    let [(
        to,
        Message::Event {
            subscription,
            publication,
            details,
            payload,
        },
    )] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!((*to, *subscription), (b, sb));
    assert!((1..=1u64 << 53).contains(publication));
    assert!(details.is_empty());
    assert_eq!(payload.args(), &[Value::from("Hello, world!")]);
    assert_eq!(payload.kwargs().unwrap().get_u64("k"), Some(1));
}

#[test]
fn exclude_me_false_delivers_to_the_publisher_and_acknowledge_answers() {
    let mut h = H::new();
    let (a, _) = h.join();
    let s = h.subscribe(a, "{}", "t");
    let out = h.send_msgs(a, r#"[16,7,{"exclude_me":false,"acknowledge":true},"t"]"#);
    let [(
        _,
        Message::Event {
            subscription,
            publication,
            ..
        },
    ), (
        _,
        Message::Published {
            request: 7,
            publication: p2,
        },
    )] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!((*subscription, publication), (s, p2));
}

#[test]
fn pattern_subscriptions_get_the_topic() {
    let (mut h, a, p) = H::two_sessions();
    let exact = h.subscribe(a, "{}", "com.myapp.topic1");
    let prefix = h.subscribe(a, r#"{"match":"prefix"}"#, "com.myapp");
    let wild = h.subscribe(a, r#"{"match":"wildcard"}"#, "com..topic1");
    let none = h.subscribe(a, r#"{"match":"wildcard"}"#, "com..topic2");
    assert_eq!(h.subscribe(p, r#"{"match":"prefix"}"#, "com.myapp"), prefix);
    let out = h.send_msgs(p, r#"[16,7,{},"com.myapp.topic1"]"#);
    let got: Vec<(u64, Option<String>)> = out
        .iter()
        .filter(|(to, _)| *to == a)
        .map(|(_, m)| match m {
            Message::Event {
                subscription,
                details,
                ..
            } => (*subscription, details.get_str("topic").map(str::to_owned)),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (exact, None),
            (prefix, Some("com.myapp.topic1".into())),
            (wild, Some("com.myapp.topic1".into()))
        ]
    );
    assert!(!got.iter().any(|(s, _)| *s == none));
}

#[test]
fn exclude_and_eligible_by_session_id_and_auth() {
    let mut h = H::new();
    let (p, _) = h.join();
    let (a, ida) = h.join();
    let (b, idb) = h.join();
    let (c, _) = h.join();
    for s in [a, b, c] {
        h.subscribe(s, "{}", "t");
    }
    let receivers = |h: &mut H, options: String| -> Vec<ConnId> {
        h.send_msgs(p, &format!(r#"[16,1,{options},"t"]"#))
            .into_iter()
            .map(|(to, _)| to)
            .collect()
    };
    assert_eq!(
        receivers(&mut h, format!(r#"{{"exclude":[{ida}]}}"#)),
        vec![b, c]
    );
    assert_eq!(
        receivers(&mut h, format!(r#"{{"eligible":[{ida},{idb}]}}"#)),
        vec![a, b]
    );
    assert_eq!(
        receivers(
            &mut h,
            format!(r#"{{"eligible":[{ida},{idb}],"exclude":[{idb}]}}"#)
        ),
        vec![a]
    );
    assert_eq!(
        receivers(
            &mut h,
            format!(r#"{{"exclude_authid":["anonymous-{ida}"]}}"#)
        ),
        vec![b, c]
    );
    assert_eq!(
        receivers(
            &mut h,
            format!(r#"{{"eligible_authid":["anonymous-{idb}"]}}"#)
        ),
        vec![b]
    );
    assert_eq!(
        receivers(&mut h, r#"{"exclude_authrole":["anonymous"]}"#.into()),
        vec![]
    );
    assert_eq!(
        receivers(&mut h, r#"{"eligible_authrole":["anonymous"]}"#.into()),
        vec![a, b, c]
    );
    assert_eq!(receivers(&mut h, r#"{"eligible":[]}"#.into()), vec![]);
}

#[test]
fn disclose_me_names_the_publisher() {
    let mut h = H::new();
    let (p, idp) = h.join();
    let (a, _) = h.join();
    h.subscribe(a, "{}", "t");
    let out = h.send_msgs(p, r#"[16,1,{"disclose_me":true},"t"]"#);
    let [(_, Message::Event { details, .. })] = &out[..] else {
        panic!()
    };
    assert_eq!(details.get_u64("publisher"), Some(idp));
    assert_eq!(details.get_str("publisher_authrole"), Some("anonymous"));
}

#[test]
fn unsubscribe_stops_events_and_unknown_ids_are_errors() {
    let (mut h, p, a) = H::two_sessions();
    let s = h.subscribe(a, "{}", "t");
    assert_eq!(h.send(a, &format!("[34,2,{s}]")), vec![msg(a, "[35,2]")]);
    assert_eq!(h.send(p, r#"[16,1,{},"t"]"#), vec![]);
    assert_eq!(
        h.send(a, &format!("[34,3,{s}]")),
        vec![msg(a, r#"[8,34,3,{},"wamp.error.no_such_subscription"]"#)]
    );
}

#[test]
fn invalid_uris_are_errors_not_aborts() {
    let mut h = H::with({
        let mut config = RouterConfig::default();
        config.uri_check = UriCheck::Strict;
        config
    });
    let (a, _) = h.join();
    assert_eq!(
        h.send(a, r#"[32,4,{},"com.MyApp"]"#),
        vec![msg(a, r#"[8,32,4,{},"wamp.error.invalid_uri"]"#)]
    );
    assert_eq!(
        h.send(a, r#"[32,4,{},"com..x"]"#),
        vec![msg(a, r#"[8,32,4,{},"wamp.error.invalid_uri"]"#)]
    );
    assert_eq!(
        h.send(a, r#"[16,5,{"acknowledge":true},"a b"]"#),
        vec![msg(a, r#"[8,16,5,{},"wamp.error.invalid_uri"]"#)]
    );
    assert_eq!(h.send(a, r#"[16,5,{},"a b"]"#), vec![]);
    assert_eq!(
        h.send(a, r#"[64,6,{},"wamp.session.count"]"#),
        vec![msg(a, r#"[8,64,6,{},"wamp.error.invalid_uri"]"#)]
    );
    assert_eq!(
        h.send(a, r#"[48,7,{},"x..y"]"#),
        vec![msg(a, r#"[8,48,7,{},"wamp.error.invalid_uri"]"#)]
    );
}

#[test]
fn opaque_payloads_pass_through_with_their_keys() {
    let (mut h, p, a) = H::two_sessions();
    h.subscribe(a, "{}", "t");
    assert_eq!(
        h.send(
            p,
            r#"[16,1,{"enc_algo":"cryptobox","enc_serializer":"msgpack"},"t","\u0000g6Vj"]"#
        )
        .into_iter()
        .map(|o| match o {
            Out::Msg(_, t) => t
                .split_once(',')
                .unwrap()
                .1
                .split_once(',')
                .unwrap()
                .1
                .split_once(',')
                .unwrap()
                .1
                .to_owned(),
            o => panic!("{o:?}"),
        })
        .collect::<Vec<_>>(),
        vec![r#"{"enc_algo":"cryptobox","enc_serializer":"msgpack"},"\u0000g6Vj"]"#.to_owned()]
    );
}

// ---- dealer ----

#[test]
fn call_invocation_yield_result() {
    let mut h = H::new();
    let (callee, _) = h.join();
    let (caller, caller_id) = h.join();
    let reg = h.register(callee, "{}", "com.myapp.add2");
    let out = h.send(caller, r#"[48,77,{},"com.myapp.add2",[2,3]]"#);
    assert_eq!(out, vec![msg(callee, &format!("[68,1,{reg},{{}},[2,3]]"))]);
    assert_eq!(
        h.send(callee, r#"[70,1,{},[5]]"#),
        vec![msg(caller, "[50,77,{},[5]]")]
    );
    // Caller disclosure, asked by the caller.
    let out = h.send(caller, r#"[48,78,{"disclose_me":true},"com.myapp.add2"]"#);
    assert_eq!(
        out,
        vec![msg(
            callee,
            &format!(
                r#"[68,2,{reg},{{"caller":{caller_id},"caller_authid":"anonymous-{caller_id}","caller_authrole":"anonymous"}}]"#
            )
        )]
    );
    // A late or unknown YIELD goes nowhere.
    let _ = h.send(callee, "[70,2,{}]");
    assert_eq!(h.send(callee, "[70,2,{}]"), vec![]);
}

#[test]
fn registration_errors() {
    let (mut h, a, b) = H::two_sessions();
    let reg = h.register(a, "{}", "p");
    assert_eq!(
        h.send(b, r#"[64,2,{},"p"]"#),
        vec![msg(
            b,
            r#"[8,64,2,{},"wamp.error.procedure_already_exists"]"#
        )]
    );
    assert_eq!(
        h.send(b, &format!("[66,3,{reg}]")),
        vec![msg(b, r#"[8,66,3,{},"wamp.error.no_such_registration"]"#)]
    );
    assert_eq!(h.send(a, &format!("[66,3,{reg}]")), vec![msg(a, "[67,3]")]);
    assert_eq!(
        h.send(b, r#"[48,4,{},"p"]"#),
        vec![msg(b, r#"[8,48,4,{},"wamp.error.no_such_procedure"]"#)]
    );
    // A single registration cannot be shared.
    let _ = h.register(a, "{}", "q");
    assert_eq!(
        h.send(b, r#"[64,5,{"invoke":"roundrobin"},"q"]"#),
        vec![msg(
            b,
            r#"[8,64,5,{},"wamp.error.procedure_already_exists"]"#
        )]
    );
}

#[test]
fn disclose_caller_registration_and_pattern_procedures() {
    let mut h = H::new();
    let (callee, _) = h.join();
    let (caller, caller_id) = h.join();
    let exact = h.register(callee, "{}", "com.a.b.c");
    let short = h.register(callee, r#"{"match":"prefix"}"#, "com.a");
    let long = h.register(
        callee,
        r#"{"match":"prefix","disclose_caller":true}"#,
        "com.a.b",
    );
    let wild = h.register(callee, r#"{"match":"wildcard"}"#, "com..c");
    let wilder = h.register(callee, r#"{"match":"wildcard"}"#, "..c");
    let target = |h: &mut H, procedure: &str| -> (u64, Option<String>, Option<u64>) {
        match &h.send_msgs(caller, &format!(r#"[48,1,{{}},"{procedure}"]"#))[..] {
            [(
                _,
                Message::Invocation {
                    request,
                    registration,
                    details,
                    ..
                },
            )] => {
                let _ = h.send(callee, &format!("[70,{request},{{}}]"));
                (
                    *registration,
                    details.get_str("procedure").map(str::to_owned),
                    details.get_u64("caller"),
                )
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(target(&mut h, "com.a.b.c"), (exact, None, None));
    assert_eq!(
        target(&mut h, "com.a.b.d"),
        (long, Some("com.a.b.d".into()), Some(caller_id))
    );
    assert_eq!(
        target(&mut h, "com.a.x"),
        (short, Some("com.a.x".into()), None)
    );
    assert_eq!(
        target(&mut h, "com.x.c"),
        (wild, Some("com.x.c".into()), None)
    );
    assert_eq!(
        target(&mut h, "org.x.c"),
        (wilder, Some("org.x.c".into()), None)
    );
}

#[test]
fn progressive_results() {
    let (mut h, callee, caller) = H::two_sessions();
    let reg = h.register(callee, "{}", "p");
    assert_eq!(
        h.send(caller, r#"[48,9,{"receive_progress":true},"p"]"#),
        vec![msg(
            callee,
            &format!(r#"[68,1,{reg},{{"receive_progress":true}}]"#)
        )]
    );
    for i in 1..=3 {
        assert_eq!(
            h.send(callee, &format!(r#"[70,1,{{"progress":true}},[{i}]]"#)),
            vec![msg(caller, &format!(r#"[50,9,{{"progress":true}},[{i}]]"#))]
        );
    }
    assert_eq!(
        h.send(callee, r#"[70,1,{},["done"]]"#),
        vec![msg(caller, r#"[50,9,{},["done"]]"#)]
    );
    // A caller that did not ask gets no progress, only the final result.
    let _ = h.send(caller, r#"[48,10,{},"p"]"#);
    assert_eq!(h.send(callee, r#"[70,2,{"progress":true},[1]]"#), vec![]);
    assert_eq!(
        h.send(callee, r#"[70,2,{},[2]]"#),
        vec![msg(caller, "[50,10,{},[2]]")]
    );
}

#[test]
fn progress_needs_a_callee_that_supports_it() {
    let mut h = H::new();
    let (callee, _) = h.join_with("realm1", r#"{"roles":{"callee":{}}}"#);
    let (caller, _) = h.join();
    let reg = h.register(callee, "{}", "p");
    assert_eq!(
        h.send(caller, r#"[48,9,{"receive_progress":true},"p"]"#),
        vec![msg(callee, &format!("[68,1,{reg},{{}}]"))]
    );
}

#[test]
fn invocation_errors_reach_the_caller_with_args_and_kwargs() {
    let (mut h, callee, caller) = H::callee_of_p_and_caller();
    let _ = h.send(caller, r#"[48,5,{},"p"]"#);
    assert_eq!(
        h.send(
            callee,
            r#"[8,68,1,{"x":1},"com.myapp.error.overflow",[1,"two"],{"limit":10}]"#
        ),
        vec![msg(
            caller,
            r#"[8,48,5,{"x":1},"com.myapp.error.overflow",[1,"two"],{"limit":10}]"#
        )]
    );
    // ERROR for a request type a client cannot answer is a violation.
    let out = h.send(callee, r#"[8,16,1,{},"x"]"#);
    assert_eq!(out.last(), Some(&Out::Close(callee)));
}

#[test]
fn a_callee_leaving_mid_call_fails_the_call() {
    let (mut h, callee, caller) = H::callee_of_p_and_caller();
    let _ = h.send(caller, r#"[48,5,{},"p"]"#);
    let _ = h.send(caller, r#"[48,6,{},"p"]"#);
    h.r.disconnect(callee);
    assert_eq!(
        {
            let mut out = h.drain();
            out.sort_by_key(|o| format!("{o:?}"));
            out
        },
        vec![
            msg(
                caller,
                r#"[8,48,5,{},"wamp.error.canceled",["callee left the session"]]"#
            ),
            msg(
                caller,
                r#"[8,48,6,{},"wamp.error.canceled",["callee left the session"]]"#
            ),
        ]
    );
    assert_eq!(
        h.send(caller, r#"[48,7,{},"p"]"#),
        vec![msg(caller, r#"[8,48,7,{},"wamp.error.no_such_procedure"]"#)]
    );
}

#[test]
fn a_caller_leaving_mid_call_interrupts_the_callee() {
    let (mut h, callee, caller) = H::callee_of_p_and_caller();
    let _ = h.send(caller, r#"[48,5,{},"p"]"#);
    h.r.disconnect(caller);
    assert_eq!(
        h.drain(),
        vec![msg(callee, r#"[69,1,{"mode":"killnowait"}]"#)]
    );
    assert_eq!(h.send(callee, "[70,1,{}]"), vec![]);
}

#[test]
fn cancel_kill_waits_for_the_callee() {
    let (mut h, callee, caller) = H::callee_of_p_and_caller();
    let _ = h.send(caller, r#"[48,5,{},"p"]"#);
    assert_eq!(
        h.send(caller, "[49,5,{}]"),
        vec![msg(callee, r#"[69,1,{"mode":"kill"}]"#)]
    );
    assert_eq!(
        h.send(caller, "[49,5,{}]"),
        vec![],
        "a second CANCEL is ignored"
    );
    assert_eq!(
        h.send(callee, r#"[8,68,1,{},"wamp.error.canceled"]"#),
        vec![msg(caller, r#"[8,48,5,{},"wamp.error.canceled"]"#)]
    );
}

#[test]
fn cancel_killnowait_and_skip_answer_at_once() {
    let (mut h, callee, caller) = H::callee_of_p_and_caller();
    let _ = h.send(caller, r#"[48,5,{},"p"]"#);
    assert_eq!(
        h.send(caller, r#"[49,5,{"mode":"killnowait"}]"#),
        vec![
            msg(caller, r#"[8,48,5,{},"wamp.error.canceled"]"#),
            msg(callee, r#"[69,1,{"mode":"killnowait"}]"#)
        ]
    );
    let _ = h.send(caller, r#"[48,6,{},"p"]"#);
    assert_eq!(
        h.send(caller, r#"[49,6,{"mode":"skip"}]"#),
        vec![msg(caller, r#"[8,48,6,{},"wamp.error.canceled"]"#)]
    );
    assert_eq!(
        h.send(callee, "[70,2,{}]"),
        vec![],
        "the skipped call's result is dropped"
    );
    assert_eq!(
        h.send(caller, "[49,99,{}]"),
        vec![],
        "unknown calls are ignored"
    );
}

#[test]
fn callees_without_call_canceling_are_skipped() {
    let mut h = H::new();
    let (callee, _) = h.join_with("realm1", r#"{"roles":{"callee":{}}}"#);
    let (caller, _) = h.join();
    h.register(callee, "{}", "p");
    let _ = h.send(caller, r#"[48,5,{},"p"]"#);
    assert_eq!(
        h.send(caller, r#"[49,5,{"mode":"kill"}]"#),
        vec![msg(caller, r#"[8,48,5,{},"wamp.error.canceled"]"#)]
    );
    h.r.disconnect(caller);
    let _ = h.send(caller, r#"[48,6,{},"p"]"#);
    assert_eq!(h.drain(), vec![]);
}

#[test]
fn duplicate_call_request_ids_are_violations() {
    let (mut h, callee, caller) = H::callee_of_p_and_caller();
    let _ = h.send(caller, r#"[48,5,{},"p"]"#);
    let out = h.send(caller, r#"[48,5,{},"p"]"#);
    assert!(
        matches!(&out[0], Out::Msg(_, t) if t.contains("already in flight")),
        "{out:?}"
    );
    // The caller left, so the callee is interrupted.
    assert_eq!(
        out.last(),
        Some(&msg(callee, r#"[69,1,{"mode":"killnowait"}]"#))
    );
}

#[test]
fn payload_helpers() {
    assert_eq!(Payload::new(vec![], Default::default()), Payload::Empty);
    let m = Message::error(code::CALL, 1, "x.y");
    assert_eq!(m.name(), "ERROR");
}

// ---- authentication ----

mod auth {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use sockeye_wamp_proto::auth::{derive_key, wampcra_sign, AuthConfig, Salt, Secret, User};

    fn key_pair() -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn router() -> H {
        let pk: [u8; 32] = key_pair().public_key().as_ref().try_into().unwrap();
        H::with({
            let mut config = RouterConfig::default();
            config.auth = {
                let mut config = AuthConfig::default();
                config.allow_anonymous = false;
                config.users = vec![
                    joe(),
                    User {
                        authid: "peter".into(),
                        authrole: "backend".into(),
                        secrets: vec![
                            Secret::WampCra {
                                secret: "prq7+YkJ1/KlW1X0YczMHw==".into(),
                                salt: Some(Salt {
                                    salt: "salt123".into(),
                                    iterations: 100,
                                    keylen: 16,
                                }),
                            },
                            Secret::Cryptosign {
                                public_keys: vec![pk],
                            },
                        ],
                    },
                ];
                config
            };
            config
        })
    }

    fn welcome_of(out: &[(ConnId, Message)]) -> (String, String, String) {
        match out {
            [(_, Message::Welcome { details, .. })] => (
                details.get_str("authid").unwrap().into(),
                details.get_str("authrole").unwrap().into(),
                details.get_str("authmethod").unwrap().into(),
            ),
            other => panic!("no WELCOME: {other:?}"),
        }
    }

    #[test]
    fn ticket() {
        let mut h = router();
        let c = h.r.connect();
        let hello =
            r#"[1,"realm1",{"roles":{"caller":{}},"authmethods":["ticket"],"authid":"joe"}]"#;
        assert_eq!(h.send(c, hello), vec![msg(c, r#"[4,"ticket",{}]"#)]);
        let out = h.send_msgs(c, r#"[5,"secret!!!",{}]"#);
        assert_eq!(
            welcome_of(&out),
            ("joe".into(), "frontend".into(), "ticket".into())
        );

        let c = h.r.connect();
        let _ = h.send(c, hello);
        assert_eq!(
            h.send(c, r#"[5,"wrong",{}]"#),
            vec![
                msg(
                    c,
                    r#"[3,{"message":"authentication failed"},"wamp.error.authentication_failed"]"#
                ),
                Out::Close(c)
            ]
        );
    }

    #[test]
    fn no_acceptable_method_and_no_anonymous() {
        let mut h = router();
        for hello in [
            r#"[1,"realm1",{"roles":{"caller":{}}}]"#,
            r#"[1,"realm1",{"roles":{"caller":{}},"authmethods":["ticket"],"authid":"nobody"}]"#,
            r#"[1,"realm1",{"roles":{"caller":{}},"authmethods":["ticket"],"authid":"peter"}]"#,
            r#"[1,"realm1",{"roles":{"caller":{}},"authmethods":["scram"],"authid":"joe"}]"#,
        ] {
            let c = h.r.connect();
            let out = h.send(c, hello);
            assert!(
                matches!(&out[0], Out::Msg(_, t) if t.ends_with(r#""wamp.error.no_auth_method"]"#)),
                "{hello}: {out:?}"
            );
        }
    }

    fn challenge_extra(out: Vec<(ConnId, Message)>) -> sockeye_wamp_proto::Dict {
        match &out[..] {
            [(_, Message::Challenge { method, extra })]
                if method == "wampcra" || method == "cryptosign" =>
            {
                extra.clone()
            }
            other => panic!("no CHALLENGE: {other:?}"),
        }
    }

    #[test]
    fn wampcra_unsalted_and_salted() {
        let mut h = router();
        let c = h.r.connect();
        // The first acceptable method in the client's order wins.
        assert_eq!(
            h.send(
                c,
                r#"[1,"realm1",{"roles":{"caller":{}},"authmethods":["ticket","wampcra"],"authid":"joe"}]"#
            ),
            vec![msg(c, r#"[4,"ticket",{}]"#)]
        );
        let c = h.r.connect();
        let extra = challenge_extra(h.send_msgs(
            c,
            r#"[1,"realm1",{"roles":{"caller":{}},"authmethods":["wampcra"],"authid":"joe"}]"#,
        ));
        let challenge = extra.get_str("challenge").unwrap();
        assert!(
            challenge.contains(r#""authid":"joe""#)
                && challenge.contains(&h.r.session_id(c).map_or(String::new(), |s| s.to_string()))
        );
        let sig = wampcra_sign("cra-secret", challenge);
        let out = h.send_msgs(c, &format!(r#"[5,"{sig}",{{}}]"#));
        assert_eq!(
            welcome_of(&out),
            ("joe".into(), "frontend".into(), "wampcra".into())
        );

        let c = h.r.connect();
        let extra = challenge_extra(h.send_msgs(
            c,
            r#"[1,"realm1",{"roles":{"caller":{}},"authmethods":["wampcra"],"authid":"peter"}]"#,
        ));
        assert_eq!(extra.get_str("salt"), Some("salt123"));
        assert_eq!(extra.get_u64("iterations"), Some(100));
        assert_eq!(extra.get_u64("keylen"), Some(16));
        let key = derive_key("prq7+YkJ1/KlW1X0YczMHw==", "salt123", 100, 16);
        let sig = wampcra_sign(&key, extra.get_str("challenge").unwrap());
        let out = h.send_msgs(c, &format!(r#"[5,"{sig}",{{}}]"#));
        assert_eq!(
            welcome_of(&out),
            ("peter".into(), "backend".into(), "wampcra".into())
        );

        // Signed with the secret instead of the derived key: refused.
        let c = h.r.connect();
        let extra = challenge_extra(h.send_msgs(
            c,
            r#"[1,"realm1",{"roles":{"caller":{}},"authmethods":["wampcra"],"authid":"peter"}]"#,
        ));
        let sig = wampcra_sign(
            "prq7+YkJ1/KlW1X0YczMHw==",
            extra.get_str("challenge").unwrap(),
        );
        let out = h.send(c, &format!(r#"[5,"{sig}",{{}}]"#));
        assert!(matches!(&out[0], Out::Msg(_, t) if t.contains("authentication_failed")));
    }

    #[test]
    fn cryptosign() {
        let mut h = router();
        let kp = key_pair();
        let pk = hex(kp.public_key().as_ref());
        for (with_challenge, authid) in [(true, ""), (false, r#","authid":"peter""#)] {
            let c = h.r.connect();
            let hello = format!(
                r#"[1,"realm1",{{"roles":{{"caller":{{}}}},"authmethods":["cryptosign"],"authextra":{{"pubkey":"{pk}"}}{authid}}}]"#
            );
            let extra = challenge_extra(h.send_msgs(c, &hello));
            let challenge = extra.get_str("challenge").unwrap();
            let bytes: Vec<u8> = (0..64)
                .step_by(2)
                .map(|i| u8::from_str_radix(&challenge[i..i + 2], 16).unwrap())
                .collect();
            let mut sig = hex(kp.sign(&bytes).as_ref());
            if with_challenge {
                sig.push_str(challenge); // Autobahn's form: signature || challenge
            }
            let out = h.send_msgs(c, &format!(r#"[5,"{sig}",{{}}]"#));
            assert_eq!(
                welcome_of(&out),
                ("peter".into(), "backend".into(), "cryptosign".into())
            );
        }
        // A wrong signature, an unknown key, an authid that does not own the key.
        let c = h.r.connect();
        let hello = format!(
            r#"[1,"realm1",{{"roles":{{"caller":{{}}}},"authmethods":["cryptosign"],"authextra":{{"pubkey":"{pk}"}}}}]"#
        );
        let _ = h.send(c, &hello);
        let out = h.send(c, &format!(r#"[5,"{}",{{}}]"#, "00".repeat(64)));
        assert!(matches!(&out[0], Out::Msg(_, t) if t.contains("authentication_failed")));
        for hello in [
            format!(
                r#"[1,"realm1",{{"roles":{{"caller":{{}}}},"authmethods":["cryptosign"],"authextra":{{"pubkey":"{}"}}}}]"#,
                "11".repeat(32)
            ),
            format!(
                r#"[1,"realm1",{{"roles":{{"caller":{{}}}},"authmethods":["cryptosign"],"authid":"joe","authextra":{{"pubkey":"{pk}"}}}}]"#
            ),
        ] {
            let c = h.r.connect();
            let out = h.send(c, &hello);
            assert!(
                matches!(&out[0], Out::Msg(_, t) if t.contains("no_auth_method")),
                "{out:?}"
            );
        }
    }

    #[test]
    fn anything_but_authenticate_during_the_challenge_is_a_violation() {
        let mut h = router();
        let c = h.r.connect();
        let _ = h.send(
            c,
            r#"[1,"realm1",{"roles":{"caller":{}},"authmethods":["ticket"],"authid":"joe"}]"#,
        );
        assert_eq!(
            h.send(c, r#"[48,1,{},"p"]"#),
            abort(c, "CALL received while authenticating")
        );
        // And the half-open session's id is free again.
        assert_eq!(h.r.session_count("realm1"), 0);
    }
}

// ---- meta API ----

#[test]
fn session_meta_procedures() {
    let mut h = H::new();
    let (a, ida) = h.join();
    let (_b, idb) = h.join();
    let (_other, _) = h.join_with("realm2", ALL_ROLES);
    assert_eq!(
        result_of(h.send_msgs(a, r#"[48,1,{},"wamp.session.count"]"#)),
        Value::from(2)
    );
    assert_eq!(
        result_of(h.send_msgs(a, r#"[48,1,{},"wamp.session.count",[["nobody"]]]"#)),
        Value::from(0)
    );
    let Value::List(mut ids) = result_of(h.send_msgs(a, r#"[48,1,{},"wamp.session.list"]"#)) else {
        panic!()
    };
    ids.sort_by_key(|v| v.as_u64());
    let mut want = vec![Value::from(ida), Value::from(idb)];
    want.sort_by_key(|v| v.as_u64());
    assert_eq!(ids, want);
    let info = result_of(h.send_msgs(a, &format!(r#"[48,1,{{}},"wamp.session.get",[{idb}]]"#)));
    let info = info.as_dict().unwrap();
    assert_eq!(info.get_u64("session"), Some(idb));
    assert_eq!(info.get_str("authmethod"), Some("anonymous"));
    assert_eq!(
        h.send(a, r#"[48,2,{},"wamp.session.get",[12345]]"#),
        vec![msg(a, r#"[8,48,2,{},"wamp.error.no_such_session"]"#)]
    );
    assert_eq!(
        h.send(a, r#"[48,3,{},"wamp.session.get"]"#),
        vec![msg(a, r#"[8,48,3,{},"wamp.error.invalid_argument"]"#)]
    );
}

#[test]
fn on_join_and_on_leave_events() {
    let mut h = H::new();
    let (watcher, _) = h.join();
    let join_sub = h.subscribe(watcher, "{}", "wamp.session.on_join");
    let leave_sub = h.subscribe(watcher, "{}", "wamp.session.on_leave");
    let c = h.r.connect();
    let out = h.send_msgs(c, &format!(r#"[1,"realm1",{ALL_ROLES}]"#));
    let [(_, Message::Welcome { session, .. }), (
        to,
        Message::Event {
            subscription,
            payload,
            ..
        },
    )] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!((*to, *subscription), (watcher, join_sub));
    assert_eq!(
        payload.args()[0].as_dict().unwrap().get_u64("session"),
        Some(*session)
    );
    let id = *session;
    let out = h.send(c, r#"[6,{},"wamp.close.normal"]"#);
    assert_eq!(
        out[2..],
        [msg(
            watcher,
            &format!(
                r#"[36,{leave_sub},{},{{}},[{id},"anonymous-{id}","anonymous"]]"#,
                publication_of(&out[2..])
            )
        )]
    );
}

#[test]
fn subscription_and_registration_meta_procedures() {
    let mut h = H::new();
    let (a, ida) = h.join();
    let exact = h.subscribe(a, "{}", "com.a.b");
    let prefix = h.subscribe(a, r#"{"match":"prefix"}"#, "com.a");
    let reg = h.register(a, r#"{"match":"wildcard"}"#, "com..b");
    let call = |h: &mut H, json: &str| result_of(h.send_msgs(a, json));
    let list = call(&mut h, r#"[48,1,{},"wamp.subscription.list"]"#);
    let list = list.as_dict().unwrap();
    assert_eq!(list.get_list("exact"), Some(&[Value::from(exact)][..]));
    assert_eq!(list.get_list("prefix"), Some(&[Value::from(prefix)][..]));
    assert_eq!(
        call(
            &mut h,
            r#"[48,1,{},"wamp.subscription.lookup",["com.a",{"match":"prefix"}]]"#
        ),
        Value::from(prefix)
    );
    assert_eq!(
        call(&mut h, r#"[48,1,{},"wamp.subscription.lookup",["com.a"]]"#),
        Value::Null
    );
    assert_eq!(
        call(&mut h, r#"[48,1,{},"wamp.subscription.match",["com.a.b"]]"#),
        Value::List(vec![exact.into(), prefix.into()])
    );
    assert_eq!(
        call(
            &mut h,
            &format!(r#"[48,1,{{}},"wamp.subscription.list_subscribers",[{exact}]]"#)
        ),
        Value::List(vec![ida.into()])
    );
    assert_eq!(
        call(
            &mut h,
            &format!(r#"[48,1,{{}},"wamp.subscription.count_subscribers",[{exact}]]"#)
        ),
        Value::from(1)
    );
    let got = call(
        &mut h,
        &format!(r#"[48,1,{{}},"wamp.subscription.get",[{prefix}]]"#),
    );
    assert_eq!(got.as_dict().unwrap().get_str("match"), Some("prefix"));
    assert_eq!(
        call(&mut h, r#"[48,1,{},"wamp.registration.match",["com.x.b"]]"#),
        Value::from(reg)
    );
    assert_eq!(
        call(
            &mut h,
            r#"[48,1,{},"wamp.registration.lookup",["com..b",{"match":"wildcard"}]]"#
        ),
        Value::from(reg)
    );
    assert_eq!(
        call(
            &mut h,
            &format!(r#"[48,1,{{}},"wamp.registration.list_callees",[{reg}]]"#)
        ),
        Value::List(vec![ida.into()])
    );
    assert_eq!(
        h.send(a, r#"[48,2,{},"wamp.registration.get",[999]]"#),
        vec![msg(a, r#"[8,48,2,{},"wamp.error.no_such_registration"]"#)]
    );
    // Unknown wamp.* procedures are simply not there.
    assert_eq!(
        h.send(a, r#"[48,3,{},"wamp.nothing"]"#),
        vec![msg(a, r#"[8,48,3,{},"wamp.error.no_such_procedure"]"#)]
    );
}

#[test]
fn retained_events_reach_later_subscribers_that_ask() {
    let mut h = H::new();
    let (p, _) = h.join();
    let _ = h.send(p, r#"[16,1,{"retain":true},"com.a.b",["old"]]"#);
    let _ = h.send(
        p,
        r#"[16,2,{"retain":true,"disclose_me":true},"com.a.b",["new"]]"#,
    );
    let _ = h.send(p, r#"[16,3,{"retain":true},"com.a.c",["other"]]"#);
    let _ = h.send(p, r#"[16,4,{},"com.a.d",["not retained"]]"#);
    let (s, _) = h.join();
    // Without get_retained: nothing.
    assert_eq!(h.send_msgs(s, r#"[32,1,{},"com.a.b"]"#).len(), 1);
    let out = h.send_msgs(
        s,
        r#"[32,2,{"get_retained":true,"match":"prefix"},"com.a"]"#,
    );
    let [(_, Message::Subscribed { subscription, .. }), rest @ ..] = &out[..] else {
        panic!("{out:?}")
    };
    let got: Vec<(String, Option<bool>, bool)> = rest
        .iter()
        .map(|(to, m)| match m {
            Message::Event {
                subscription: sub,
                details,
                payload,
                ..
            } if to == &s && sub == subscription => (
                payload.args()[0].as_str().unwrap().to_owned(),
                details.get_bool("retained"),
                details.contains_key("publisher"),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    let mut got = got;
    got.sort();
    assert_eq!(
        got,
        vec![
            ("new".into(), Some(true), true),
            ("other".into(), Some(true), false)
        ]
    );
}

#[test]
fn shared_registrations() {
    let (mut h, a, b) = H::two_sessions();
    let (c, _) = h.join();
    let (caller, _) = h.join();
    let targets = |h: &mut H, procedure: &str, n: usize| -> Vec<ConnId> {
        (0..n)
            .map(|_| {
                let out = h.send_msgs(caller, &format!(r#"[48,1,{{}},"{procedure}"]"#));
                let [(to, Message::Invocation { request, .. })] = &out[..] else {
                    panic!("{out:?}")
                };
                let _ = h.send(*to, &format!("[70,{request},{{}}]"));
                *to
            })
            .collect()
    };
    for (policy, want) in [
        ("roundrobin", vec![a, b, c, a, b, c]),
        ("first", vec![a; 6]),
        ("last", vec![c; 6]),
    ] {
        let procedure = format!("p.{policy}");
        let id = h.register(a, &format!(r#"{{"invoke":"{policy}"}}"#), &procedure);
        assert_eq!(
            h.register(b, &format!(r#"{{"invoke":"{policy}"}}"#), &procedure),
            id
        );
        assert_eq!(
            h.register(c, &format!(r#"{{"invoke":"{policy}"}}"#), &procedure),
            id
        );
        assert_eq!(targets(&mut h, &procedure, 6), want, "{policy}");
        // Another policy on the same procedure is refused.
        let out = h.send(
            caller,
            &format!(r#"[64,9,{{"invoke":"random"}},"{procedure}"]"#),
        );
        assert!(matches!(&out[0], Out::Msg(_, t) if t.contains("procedure_already_exists")));
    }
    let id = h.register(a, r#"{"invoke":"random"}"#, "p.random");
    h.register(b, r#"{"invoke":"random"}"#, "p.random");
    let got = targets(&mut h, "p.random", 40);
    assert!(got.contains(&a) && got.contains(&b) && !got.contains(&c));
    // A callee leaving leaves the others serving; the last one takes the registration along.
    h.r.disconnect(a);
    assert_eq!(targets(&mut h, "p.random", 5), vec![b; 5]);
    assert_eq!(h.send(b, &format!("[66,2,{id}]")), vec![msg(b, "[67,2]")]);
    assert_eq!(
        h.send(caller, r#"[48,3,{},"p.random"]"#),
        vec![msg(caller, r#"[8,48,3,{},"wamp.error.no_such_procedure"]"#)]
    );
}

#[test]
fn a_session_calling_its_own_procedure_and_leaving_is_told_nothing_after_its_end() {
    for leave in ["goodbye", "disconnect"] {
        let mut h = H::new();
        let (c, _) = h.join();
        h.register(c, "{}", "p");
        let out = h.send_msgs(c, r#"[48,7,{},"p",[]]"#);
        assert!(
            matches!(&out[..], [(to, Message::Invocation { .. })] if *to == c),
            "{out:?}"
        );
        let out = match leave {
            "goodbye" => h.send(c, r#"[6,{},"wamp.close.close_realm"]"#),
            _ => {
                h.r.disconnect(c);
                h.drain()
            }
        };
        // Only the answer to its GOODBYE and the close: no ERROR for its own call after that.
        assert!(
            out.iter()
                .all(|o| !matches!(o, Out::Msg(_, m) if m.starts_with("[8,"))),
            "{leave}: {out:?}"
        );
    }
}
