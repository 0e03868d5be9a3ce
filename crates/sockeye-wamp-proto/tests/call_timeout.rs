//! Call timeouts (WAMP spec, "Call Timeouts": `CALL.Options.timeout` in ms, 0 = none), on the
//! sans-I/O router with virtual time: the core is told the time with `handle_timeout(now)` and
//! says when it next needs to be with `poll_timeout()`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sockeye_wamp_proto::router::ConnId;
use sockeye_wamp_proto::Message;

const NO_CANCELING: &str = r#"{"roles":{"caller":{},"callee":{}}}"#;

/// A callee with `p` registered, a caller, and the time set to `t0`.
fn setup(callee_roles: &str) -> (H, ConnId, ConnId, Instant) {
    let mut h = H::new();
    let t0 = Instant::now();
    h.r.handle_timeout(t0);
    let (callee, _) = h.join_with("realm1", callee_roles);
    let (caller, _) = h.join();
    h.register(callee, "{}", "p");
    (h, callee, caller, t0)
}

fn invocation_request(out: &[(ConnId, Message)]) -> u64 {
    match out {
        [(_, Message::Invocation { request, .. })] => *request,
        other => panic!("no INVOCATION: {other:?}"),
    }
}

#[test]
fn a_call_past_its_timeout_fails_with_timeout_and_interrupts_the_callee() {
    let (mut h, callee, caller, t0) = setup(ALL_ROLES);
    let inv = invocation_request(&h.send_msgs(caller, r#"[48,7,{"timeout":250},"p"]"#));
    assert_eq!(h.r.poll_timeout(), Some(t0 + Duration::from_millis(250)));
    h.r.handle_timeout(t0 + Duration::from_millis(249));
    assert_eq!(h.drain(), vec![]);
    h.r.handle_timeout(t0 + Duration::from_millis(250));
    assert_eq!(
        h.drain(),
        vec![
            msg(
                caller,
                r#"[8,48,7,{},"wamp.error.timeout",["the call timed out"]]"#
            ),
            msg(
                callee,
                &format!(r#"[69,{inv},{{"mode":"killnowait","reason":"wamp.error.timeout"}}]"#)
            ),
        ]
    );
    assert_eq!(h.r.poll_timeout(), None);
    // The callee's late answer goes nowhere.
    assert_eq!(
        h.send(callee, &format!(r#"[70,{inv},{{}},["late"]]"#)),
        vec![]
    );
}

#[test]
fn a_call_answered_in_time_is_not_timed_out() {
    let (mut h, callee, caller, t0) = setup(ALL_ROLES);
    let inv = invocation_request(&h.send_msgs(caller, r#"[48,1,{"timeout":100},"p"]"#));
    h.r.handle_timeout(t0 + Duration::from_millis(50));
    assert_eq!(
        h.send(callee, &format!(r#"[70,{inv},{{}},[1]]"#)),
        vec![msg(caller, r#"[50,1,{},[1]]"#)]
    );
    h.r.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(h.drain(), vec![]);
}

#[test]
fn the_deadline_counts_from_the_time_of_the_call() {
    let (mut h, _callee, caller, t0) = setup(ALL_ROLES);
    h.r.handle_timeout(t0 + Duration::from_secs(5));
    let _ = h.send_msgs(caller, r#"[48,1,{"timeout":1000},"p"]"#);
    let _ = h.send_msgs(caller, r#"[48,2,{"timeout":300},"p"]"#);
    // The earliest deadline first, whatever the order of the calls.
    assert_eq!(h.r.poll_timeout(), Some(t0 + Duration::from_millis(5300)));
    h.r.handle_timeout(t0 + Duration::from_millis(5300));
    let out = h.drain();
    assert!(
        matches!(&out[0], Out::Msg(c, t) if *c == caller && t.starts_with("[8,48,2,")),
        "{out:?}"
    );
    assert_eq!(h.r.poll_timeout(), Some(t0 + Duration::from_millis(6000)));
}

#[test]
fn timeout_zero_or_absent_means_no_timeout() {
    let (mut h, _callee, caller, _t0) = setup(ALL_ROLES);
    let _ = h.send_msgs(caller, r#"[48,1,{"timeout":0},"p"]"#);
    let _ = h.send_msgs(caller, r#"[48,2,{},"p"]"#);
    assert_eq!(h.r.poll_timeout(), None);
}

#[test]
fn a_callee_without_call_canceling_is_not_interrupted_on_timeout() {
    let (mut h, _callee, caller, t0) = setup(NO_CANCELING);
    let _ = h.send_msgs(caller, r#"[48,1,{"timeout":10},"p"]"#);
    h.r.handle_timeout(t0 + Duration::from_millis(10));
    assert_eq!(
        h.drain(),
        vec![msg(
            caller,
            r#"[8,48,1,{},"wamp.error.timeout",["the call timed out"]]"#
        )]
    );
}
