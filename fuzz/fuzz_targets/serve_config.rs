//! The `sockeye serve --config FILE` parser on arbitrary text: `Settings::parse` of
//! crates/sockeye-cli/src/config.rs itself, compiled into this target with `#[path]` (the CLI is
//! a binary crate, so it cannot be a dependency).
//!
//! What must hold:
//! - no panic, whatever the TOML;
//! - an accepted file is valid TOML, and `toml`'s own re-serialisation of it (`toml::Value` to
//!   text) is accepted too and gives the same configuration: the parser depends on what the
//!   file says, not on how it is written;
//! - what `parse` checks holds afterwards: compression level 0..=9, window bits 8..=15, every
//!   `trust_proxy` entry a CIDR, and the `[wamp]` section turns into a router configuration
//!   whose realms take a HELLO (each realm configured once, with a valid name).
//!
//! Input: the file's text (invalid UTF-8 is refused before parsing, as `load` does).
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/sockeye-cli/src/config.rs"]
mod config;

use config::Settings;
use libfuzzer_sys::fuzz_target;
use sockeye_wamp_proto::router::{Action, Router};
use sockeye_wamp_proto::{Dict, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Settings::parse(text) else {
        return;
    };

    let value: toml::Value = match toml::from_str(text) {
        Ok(value) => value,
        // TOML integers are i64, but serde lets the `u64` keys (`seed`, the timeouts) take
        // 2^63 and more, which `toml::Value` cannot hold: nothing to rewrite then.
        Err(e) if e.message().contains("u64 value was too large") => return,
        Err(e) => panic!("accepted, but not TOML to toml::Value: {e}\n{text}"),
    };
    let rewritten = toml::to_string(&value)
        .unwrap_or_else(|e| panic!("toml cannot write what it read: {e}\n{text}"));
    let again = Settings::parse(&rewritten).unwrap_or_else(|e| {
        panic!(
            "accepted, but not once rewritten: {e}\n--- file\n{text}\n--- rewritten\n{rewritten}"
        )
    });
    assert_eq!(
        format!("{config:?}"),
        format!("{again:?}"),
        "\n--- file\n{text}\n--- rewritten\n{rewritten}"
    );

    let c = &config.compression;
    assert!(c.level.is_none_or(|l| l <= 9));
    assert!(c
        .server_max_window_bits
        .is_none_or(|b| (8..=15).contains(&b)));
    for entry in &config.trust_proxy {
        assert!(
            entry.parse::<sockeye::forwarded::Cidr>().is_ok(),
            "{entry:?}"
        );
    }

    let router_config = config
        .wamp
        .router_config()
        .expect("parse checked the [wamp] section");
    let mut names: Vec<&str> = router_config
        .realm_configs
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "a realm configured twice");

    // Every configured realm exists in a router built from it: an anonymous HELLO gets
    // WELCOME, or ABORT when the realm admits no anonymous sessions, never no_such_realm.
    let mut router = Router::with_seed(router_config.clone(), 1);
    for realm in &router_config.realm_configs {
        let conn = router.connect();
        router.handle(
            conn,
            Message::Hello {
                realm: realm.name.clone(),
                details: Dict::new().with("roles", Dict::new().with("subscriber", Dict::new())),
            },
        );
        let first = router.poll();
        match first.as_ref() {
            Some(Action::Send(to, msg)) if *to == conn => match &**msg {
                Message::Welcome { .. } => {}
                Message::Abort { reason, .. } => {
                    assert_ne!(reason, "wamp.error.no_such_realm", "{}", realm.name);
                    let anonymous = realm.auth.as_ref().is_none_or(|a| a.allow_anonymous);
                    assert!(
                        !anonymous,
                        "{}: anonymous HELLO refused: {msg:?}",
                        realm.name
                    );
                }
                other => panic!("{}: {other:?}", realm.name),
            },
            other => panic!("{}: {other:?}", realm.name),
        }
        while router.poll().is_some() {}
        router.disconnect(conn);
        while router.poll().is_some() {}
    }
});
