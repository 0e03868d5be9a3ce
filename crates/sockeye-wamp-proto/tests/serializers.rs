//! What the fuzzers found in the serializers (issue 19): JSON floats come back exactly, and
//! the three serializers agree on how deep a message may nest, so that whatever one session
//! sends reaches a session on any other serializer.

use sockeye_wamp_proto::serializer::MAX_NESTING;
use sockeye_wamp_proto::{Message, Payload, Serializer, Value};

#[test]
fn json_floats_round_trip_exactly() {
    for text in [
        "7.770000000000001e158",
        "1.0418558049669955e300",
        "0.1",
        "5e-324",
    ] {
        let json = format!("[16,1,{{}},\"t\",[{text}]]");
        let msg = Serializer::Json.decode(json.as_bytes()).unwrap();
        let Message::Publish { payload, .. } = &msg else {
            panic!("{msg:?}")
        };
        let expected: f64 = text.parse().unwrap();
        assert_eq!(payload.args(), &[Value::Float(expected)], "{text}");
        let again = Serializer::Json
            .decode(&Serializer::Json.encode(&msg))
            .unwrap();
        assert_eq!(again, msg);
    }
}

/// A PUBLISH whose message nests `levels` deep: the message's list, the args list, then lists.
fn nested_publish(levels: usize) -> Message {
    let mut v = Value::from(1);
    for _ in 0..levels - 2 {
        v = Value::List(vec![v]);
    }
    Message::Publish {
        request: 1,
        options: Default::default(),
        topic: "t".into(),
        payload: Payload::Args(vec![v]),
    }
}

#[test]
fn every_serializer_takes_the_same_nesting_and_refuses_one_level_more() {
    for serializer in Serializer::ALL {
        let deepest = nested_publish(MAX_NESTING);
        let bytes = serializer.encode(&deepest);
        assert_eq!(serializer.decode(&bytes).unwrap(), deepest, "{serializer}");
        let deeper = serializer.encode(&nested_publish(MAX_NESTING + 1));
        assert!(serializer.decode(&deeper).is_err(), "{serializer}");
    }
}
