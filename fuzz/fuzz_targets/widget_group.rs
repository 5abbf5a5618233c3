//! `POST /v1/group` bodies, parsed as the server does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_server::api::GroupIn;
use vouch_server::extract::JsonBody;

fuzz_target!(|data: &[u8]| {
    // Exactly the server's path: `JsonBody` (JSON value, must be an object) then the type.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let body = JsonBody {
        raw: bytes::Bytes::copy_from_slice(data),
        value,
    };
    let input: GroupIn = match body.parse() {
        Ok(input) => input,
        Err(e) => {
            assert_eq!((e.status.as_u16(), e.code.as_str()), (400, "invalid_request"));
            return;
        }
    };
    let value = &body.value;
    assert!(value.is_object(), "a typed group body is a JSON object");
    if let Some(attributes) = &input.attributes {
        let _ = vouch_core::jcs::check_attributes(attributes);
        let _ = serde_json::to_string(attributes).expect("attributes serialise back");
    }
    if let Some(sig) = &input.signature {
        let _ = vouch_core::encoding::decode_signature(sig);
    }
});
