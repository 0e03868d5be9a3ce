//! Authorization by role (WAMP spec, "Authorization"), on the sans-I/O router: realms with
//! roles allow each of publish, subscribe, register and call per URI pattern, the most specific
//! rule decides, and anything not allowed is ERROR `wamp.error.not_authorized`. Realms without
//! roles (the default `realm1`) allow everything.

mod common;

use common::*;
use sockeye_wamp_proto::auth::{AuthConfig, AuthRole, Operation, Permission, Secret, User};
use sockeye_wamp_proto::router::{ConnId, RealmConfig, RouterConfig};
use sockeye_wamp_proto::{MatchPolicy, Message};

use MatchPolicy::{Exact, Prefix, Wildcard};
use Operation::{Call, Publish, Subscribe};

/// Realm `shop`: anonymous visitors may call and subscribe under `com.shop.` but not touch
/// `com.shop.admin`; the ticket user `clerk` (role `staff`) may do everything under `com.shop.`
/// and is disclosed when calling `com.shop.audit`.
fn shop() -> RouterConfig {
    let mut config = RouterConfig::default();
    config.realm_configs = vec![{
        let mut config = RealmConfig::default();
        config.name = "shop".into();
        config.auth = Some({
            let mut config = AuthConfig::default();
            config.allow_anonymous = true;
            config.users = vec![User {
                authid: "clerk".into(),
                authrole: "staff".into(),
                secrets: vec![Secret::Ticket("counter".into())],
            }];
            config
        });
        config.roles = Some(vec![
            AuthRole {
                name: "anonymous".into(),
                permissions: vec![
                    Permission::only("com.shop.", Prefix, &[Call, Subscribe]),
                    Permission::only("com.shop.admin", Prefix, &[]),
                    Permission::only("com.shop..price", Wildcard, &[Subscribe]),
                    Permission::only("com.shop.news", Exact, &[Subscribe, Publish]),
                    Permission::only("wamp.session.count", Exact, &[Call]),
                ],
            },
            AuthRole {
                name: "staff".into(),
                permissions: vec![
                    Permission::all("com.shop.", Prefix),
                    Permission {
                        disclose: true,
                        ..Permission::all("com.shop.audit", Exact)
                    },
                ],
            },
        ]);
        config
    }];
    config
}

fn join_clerk(h: &mut H) -> ConnId {
    let c = h.r.connect();
    let _ = h.send(
        c,
        r#"[1,"shop",{"roles":{"caller":{},"callee":{},"publisher":{},"subscriber":{}},"authmethods":["ticket"],"authid":"clerk"}]"#,
    );
    let out = h.send_msgs(c, r#"[5,"counter",{}]"#);
    let [(_, Message::Welcome { details, .. })] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(details.get_str("authrole"), Some("staff"));
    c
}

fn not_authorized(c: ConnId, request_type: u64, request: u64) -> Vec<Out> {
    vec![msg(
        c,
        &format!(r#"[8,{request_type},{request},{{}},"wamp.error.not_authorized"]"#),
    )]
}

#[test]
fn each_action_not_allowed_by_the_role_gets_not_authorized() {
    let mut h = H::with(shop());
    let (v, _) = h.join_with("shop", ALL_ROLES);
    assert_eq!(
        h.send(v, r#"[64,1,{},"com.shop.order"]"#),
        not_authorized(v, 64, 1)
    );
    assert_eq!(
        h.send(v, r#"[16,2,{"acknowledge":true},"com.shop.order"]"#),
        not_authorized(v, 16, 2)
    );
    // Without acknowledge a denied publication is dropped without an answer, like an invalid
    // one.
    assert_eq!(h.send(v, r#"[16,3,{},"com.shop.order"]"#), vec![]);
    assert_eq!(
        h.send(v, r#"[32,4,{},"com.other"]"#),
        not_authorized(v, 32, 4)
    );
    assert_eq!(
        h.send(v, r#"[48,5,{},"com.other"]"#),
        not_authorized(v, 48, 5)
    );
    // What is allowed goes through: the call finds no callee, the subscription is made.
    assert_eq!(
        h.send(v, r#"[48,6,{},"com.shop.order"]"#),
        vec![msg(v, r#"[8,48,6,{},"wamp.error.no_such_procedure"]"#)]
    );
    assert!(matches!(
        &h.send_msgs(v, r#"[32,7,{},"com.shop.order"]"#)[..],
        [(_, Message::Subscribed { request: 7, .. })]
    ));
}

#[test]
fn the_most_specific_rule_decides() {
    let mut h = H::with(shop());
    let (v, _) = h.join_with("shop", ALL_ROLES);
    // The longer prefix "com.shop.admin" (nothing allowed) beats "com.shop.".
    assert_eq!(
        h.send(v, r#"[48,1,{},"com.shop.admin.refund"]"#),
        not_authorized(v, 48, 1)
    );
    // The exact rule beats both prefixes: publishing to com.shop.news is allowed.
    assert!(matches!(
        &h.send_msgs(v, r#"[16,2,{"acknowledge":true},"com.shop.news"]"#)[..],
        [(_, Message::Published { request: 2, .. })]
    ));
    // A prefix beats a wildcard: "com.shop.x.price" is under "com.shop." (no publish).
    assert_eq!(
        h.send(v, r#"[16,3,{"acknowledge":true},"com.shop.x.price"]"#),
        not_authorized(v, 16, 3)
    );
    // A pattern subscription is judged by its pattern.
    assert_eq!(
        h.send(v, r#"[32,4,{"match":"prefix"},"com"]"#),
        not_authorized(v, 32, 4)
    );
    assert!(matches!(
        &h.send_msgs(v, r#"[32,5,{"match":"prefix"},"com.shop.o"]"#)[..],
        [(_, Message::Subscribed { request: 5, .. })]
    ));
}

#[test]
fn meta_procedures_need_the_call_permission_too() {
    let mut h = H::with(shop());
    let (v, _) = h.join_with("shop", ALL_ROLES);
    assert_eq!(
        result_of(h.send_msgs(v, r#"[48,1,{},"wamp.session.count"]"#)),
        1.into()
    );
    assert_eq!(
        h.send(v, r#"[48,2,{},"wamp.session.list"]"#),
        not_authorized(v, 48, 2)
    );
}

#[test]
fn roles_differ_within_a_realm_and_a_rule_can_disclose_the_caller() {
    let mut h = H::with(shop());
    let clerk = join_clerk(&mut h);
    let (v, vid) = h.join_with("shop", ALL_ROLES);
    // The visitor may not register; the clerk may.
    assert_eq!(
        h.send(v, r#"[64,1,{},"com.shop.audit"]"#),
        not_authorized(v, 64, 1)
    );
    let reg = h.register(clerk, "{}", "com.shop.order");
    h.register(clerk, "{}", "com.shop.audit");
    let out = h.send_msgs(v, r#"[48,2,{},"com.shop.order"]"#);
    let [(
        to,
        Message::Invocation {
            registration,
            details,
            ..
        },
    )] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!((*to, *registration), (clerk, reg));
    assert!(details.get("caller").is_none());
    // The clerk calls its own audit procedure: the rule discloses it to the callee.
    let out = h.send_msgs(clerk, r#"[48,3,{},"com.shop.audit"]"#);
    let [(_, Message::Invocation { details, .. })] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(details.get_str("caller_authrole"), Some("staff"));
    assert_eq!(details.get_str("caller_authid"), Some("clerk"));
    let _ = vid;
}

#[test]
fn a_role_the_realm_does_not_know_may_do_nothing() {
    let mut config = shop();
    config.realm_configs[0].roles.as_mut().unwrap().remove(0); // no rules for "anonymous"
    let mut h = H::with(config);
    let (v, _) = h.join_with("shop", ALL_ROLES);
    for (i, json) in [
        r#"[32,1,{},"com.shop.news"]"#,
        r#"[64,2,{},"com.shop.news"]"#,
        r#"[48,3,{},"com.shop.news"]"#,
        r#"[16,4,{"acknowledge":true},"com.shop.news"]"#,
    ]
    .iter()
    .enumerate()
    {
        let code = [32, 64, 48, 16][i];
        assert_eq!(h.send(v, json), not_authorized(v, code, i as u64 + 1));
    }
}

#[test]
fn realm1_stays_anonymous_with_every_permission() {
    // Another realm having roles and users changes nothing for realm1.
    let mut h = H::with(shop());
    let (a, _) = h.join();
    let (b, _) = h.join();
    h.register(a, "{}", "com.anything.at.all");
    h.subscribe(a, r#"{"match":"prefix"}"#, "com.");
    assert!(matches!(
        &h.send_msgs(b, r#"[48,1,{},"com.anything.at.all"]"#)[..],
        [(_, Message::Invocation { .. })]
    ));
    let out = h.send_msgs(b, r#"[16,2,{"acknowledge":true},"com.shop.admin"]"#);
    assert!(matches!(
        &out[..],
        [(_, Message::Event { .. }), (_, Message::Published { .. })]
    ));
    // The realm's users are its own: the clerk's ticket means nothing in realm1.
    let c = h.r.connect();
    let out = h.send(
        c,
        r#"[1,"realm1",{"roles":{"caller":{}},"authmethods":["ticket"],"authid":"clerk"}]"#,
    );
    assert!(
        matches!(&out[0], Out::Msg(_, t) if t.contains("wamp.error.no_auth_method")),
        "{out:?}"
    );
}

#[test]
fn a_trusted_component_joins_without_authenticating_and_is_not_restricted_by_roles() {
    let mut h = H::with(shop());
    let component = h.r.connect();
    let session = h.r.join_trusted(component, "shop", "market").unwrap();
    match &messages_of(h.drain())[..] {
        [(
            to,
            Message::Welcome {
                session: id,
                details,
            },
        )] => {
            assert_eq!((*to, *id), (component, session));
            assert_eq!(details.get_str("authrole"), Some("trusted"));
            assert_eq!(details.get_str("authid"), Some("market"));
        }
        other => panic!("{other:?}"),
    }
    // Anonymous visitors may not register anything; the component registers under the
    // admin prefix that no role of the realm opens.
    let out = h.send_msgs(component, r#"[64,1,{},"com.shop.admin.report"]"#);
    assert!(
        matches!(out[..], [(_, Message::Registered { request: 1, .. })]),
        "{out:?}"
    );
    // A second join on the same connection is refused.
    assert_eq!(h.r.join_trusted(component, "shop", "market"), None);
}

#[test]
fn only_the_router_and_trusted_components_publish_in_the_reserved_wamp_namespace() {
    let (mut h, watcher, liar) = H::two_sessions();
    let sub = h.subscribe(watcher, "{}", "wamp.subscription.on_delete");
    let out = h.send_msgs(
        liar,
        r#"[16,7,{"acknowledge":true,"exclude_me":false},"wamp.subscription.on_delete",[1,2]]"#,
    );
    assert_eq!(
        out,
        vec![(liar, Message::error(16, 7, "wamp.error.not_authorized"))]
    );
    // The router's own event still reaches the watcher.
    let other = h.subscribe(liar, "{}", "com.example.topic");
    let out = h.send_msgs(liar, &format!("[34,8,{other}]"));
    assert!(
        out.iter().any(|(to, m)| *to == watcher
            && matches!(m, Message::Event { subscription, .. } if *subscription == sub)),
        "{out:?}"
    );
}

fn messages_of(out: Vec<Out>) -> Vec<(ConnId, Message)> {
    out.into_iter()
        .map(|o| match o {
            Out::Msg(c, t) => (
                c,
                sockeye_wamp_proto::Serializer::Json
                    .decode(t.as_bytes())
                    .unwrap(),
            ),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}
