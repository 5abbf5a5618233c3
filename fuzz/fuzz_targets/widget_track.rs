//! `POST /v1/track` bodies, parsed as the server does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_server::api::TrackIn;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(input) = serde_json::from_slice::<TrackIn>(data) else {
        return;
    };
    assert!(value.is_object(), "a typed track body is a JSON object");
    assert_eq!(
        value.get("event").and_then(|e| e.as_str()),
        Some(input.event.as_str())
    );
    if let Some(p) = &input.properties {
        let _ = serde_json::to_vec(p).expect("properties serialise back");
    }
});
