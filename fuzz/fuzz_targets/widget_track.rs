//! `POST /v1/track` bodies, parsed as the server does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_server::api::TrackIn;
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
    let input: TrackIn = match body.parse() {
        Ok(input) => input,
        Err(e) => {
            assert_eq!((e.status.as_u16(), e.code.as_str()), (400, "invalid_request"));
            return;
        }
    };
    let value = &body.value;
    assert!(value.is_object(), "a typed track body is a JSON object");
    assert_eq!(
        value.get("event").and_then(|e| e.as_str()),
        Some(input.event.as_str())
    );
    if let Some(p) = &input.properties {
        let _ = serde_json::to_vec(p).expect("properties serialise back");
    }
});
