//! `Serializer::MsgPack.decode` (`wamp.2.msgpack`) on arbitrary bytes: no panic, and what it decodes
//! survives re-encoding, in MessagePack and in the other serializers (see `wamp/mod.rs`).
#![no_main]

mod wamp;

use libfuzzer_sys::fuzz_target;
use sockeye_wamp_proto::Serializer;

fuzz_target!(|data: &[u8]| wamp::run(Serializer::MsgPack, data));
