//! `POST /v1/group` bodies, parsed as the server does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_server::api::GroupIn;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(input) = serde_json::from_slice::<GroupIn>(data) else {
        return;
    };
    assert!(value.is_object(), "a typed group body is a JSON object");
    if let Some(attributes) = &input.attributes {
        let _ = vouch_core::jcs::check_attributes(attributes);
        let _ = serde_json::to_string(attributes).expect("attributes serialise back");
    }
    if let Some(sig) = &input.signature {
        let _ = vouch_core::encoding::decode_signature(sig);
    }
});
