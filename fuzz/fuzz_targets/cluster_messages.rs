//! What crosses between nodes, decoded from arbitrary bytes as a node receives it from NATS:
//! WAMP events (`ClusterEvent`), WAMP calls, answers and cancels (`RpcMessage`), presence
//! reports, chat log entries, and a chat URL's query. No panic, and whatever decodes encodes to
//! bytes that decode to the same encoding (floats may be NaN, so encodings are compared, not
//! values).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_cluster::presence::Report;
use sockeye_cluster::room::{JoinQuery, Posted};
use sockeye_wamp_proto::cluster::rpc::RpcMessage;
use sockeye_wamp_proto::ClusterEvent;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Ok(event) = ClusterEvent::decode(bytes) {
                let once = event.encode();
                let again = ClusterEvent::decode(&once).expect("an encoded event decodes");
                assert_eq!(again.encode(), once);
            }
        }
        1 => {
            if let Ok(message) = RpcMessage::decode(bytes) {
                let once = message.encode();
                let again = RpcMessage::decode(&once).expect("an encoded message decodes");
                assert_eq!(again.encode(), once);
            }
        }
        2 => {
            if let Some(report) = Report::decode(bytes) {
                assert_eq!(Report::decode(&report.encode()), Some(report));
            }
        }
        3 => {
            if let Some(posted) = Posted::decode(bytes) {
                assert_eq!(Posted::decode(&posted.encode()), Some(posted));
            }
        }
        _ => {
            if let Ok(query) = std::str::from_utf8(bytes) {
                let _ = JoinQuery::parse(Some(query));
            }
        }
    }
});
