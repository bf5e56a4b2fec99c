//! Bytes from a peer's data channel: size check, decode, validate (what `Board::receive_text`
//! does). Must never panic; what validates must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::sync::ChannelMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if ChannelMessage::check_size(text.len()).is_err() {
        return;
    }
    let Ok(message) = serde_json::from_str::<ChannelMessage>(text) else {
        return;
    };
    if message.validate().is_ok() {
        let again = serde_json::to_string(&message).expect("a valid message encodes");
        let back: ChannelMessage = serde_json::from_str(&again).expect("and decodes");
        assert_eq!(back, message);
    }
});
