//! One WAMP message in one WebSocket message, in the frame type its serializer names
//! ([`Serializer::frame_type`]): the router's transport and the client use these two
//! functions, so they cannot disagree.

use sockeye::Message as WsMessage;
use sockeye_wamp_proto::{FrameType, Message, ProtocolViolation, Serializer};

/// The WebSocket message that carries `msg`.
pub fn to_frame(serializer: Serializer, msg: &Message) -> WsMessage {
    let bytes = serializer.encode(msg);
    match serializer.frame_type() {
        FrameType::Binary => WsMessage::binary(bytes),
        FrameType::Text => {
            WsMessage::text(String::from_utf8(bytes).expect("the JSON serializer writes UTF-8"))
        }
    }
}

/// The WAMP message a WebSocket message carries; `None` for a close. A message in the frame
/// type the serializer does not use is a protocol violation (WAMP spec, "WebSocket
/// Transport").
pub fn from_frame(
    serializer: Serializer,
    frame: &WsMessage,
) -> Option<Result<Message, ProtocolViolation>> {
    let decoded = match (frame, serializer.frame_type()) {
        (WsMessage::Close(_), _) => return None,
        (WsMessage::Text(t), FrameType::Text) => serializer.decode(t.as_str().as_bytes()),
        (WsMessage::Binary(b), FrameType::Binary) => serializer.decode(b),
        (_, frame_type) => Err(ProtocolViolation::new(format!(
            "{} travels in {} frames",
            serializer.protocol(),
            match frame_type {
                FrameType::Text => "text",
                FrameType::Binary => "binary",
            }
        ))),
    };
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_serializer_reads_back_what_it_frames_and_refuses_the_other_frame_type() {
        let msg = Message::Unsubscribed { request: 7 };
        for s in Serializer::ALL {
            let frame = to_frame(s, &msg);
            assert_eq!(from_frame(s, &frame).unwrap().unwrap(), msg);
            let wrong = match frame {
                WsMessage::Text(t) => WsMessage::binary(t.as_str().as_bytes().to_vec()),
                WsMessage::Binary(b) => WsMessage::text(String::from_utf8_lossy(&b).into_owned()),
                other => unreachable!("{other:?}"),
            };
            let err = from_frame(s, &wrong).unwrap().unwrap_err();
            assert!(err.0.contains("travels in"), "{s:?}: {err}");
        }
    }
}
