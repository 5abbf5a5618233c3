//! The server's clock.

use crate::model::Ts;

/// Unix seconds, now.
pub fn now() -> Ts {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
