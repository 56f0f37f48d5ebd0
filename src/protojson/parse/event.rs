//! The field tables of `Event` and its small sub-messages: each `match`
//! arm names a field by its JSON name and its proto name (one name when
//! they coincide) and reads it with the seed of its type. `parameters`
//! lives in `parameters.rs`.

use serde::de::MapAccess;

use super::scalars::{I64, Str};
use super::timestamp::Ts;
use super::{Field, MapSeed, Message, MessageSeed, set, set_optional};
use crate::proto::telemetrygateway::v1::event_interaction::Geolocation;
use crate::proto::telemetrygateway::v1::event_source::{Client, Server};
use crate::proto::telemetrygateway::v1::{
    Event, EventFeatureFlags, EventInteraction, EventMarketingTracking, EventSource, EventUser,
};

/// Reads a message-typed field without presence of its own (the last
/// value wins).
fn message<'de, M: Message, A: MapAccess<'de>>(
    slot: &mut Option<M>,
    field: Field<'_, 'de, A>,
) -> Result<(), A::Error> {
    let ctx = field.ctx();
    set(slot, field.value(MessageSeed::new(ctx))?.map(Some));
    Ok(())
}

/// Reads a proto3 `optional` message field.
fn optional_message<'de, M: Message, A: MapAccess<'de>>(
    slot: &mut Option<M>,
    field: Field<'_, 'de, A>,
    oneof: &'static str,
) -> Result<(), A::Error> {
    let ctx = field.ctx();
    set_optional(slot, field.value(MessageSeed::new(ctx))?, oneof)
}

/// Reads a proto3 `optional string` field.
fn optional_string<'de, A: MapAccess<'de>>(
    slot: &mut Option<String>,
    field: Field<'_, 'de, A>,
    oneof: &'static str,
) -> Result<(), A::Error> {
    set_optional(slot, field.value(Str)?, oneof)
}

impl Message for Event {
    fn merge<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field<'_, 'de, A>,
    ) -> Result<bool, A::Error> {
        match field.key() {
            "id" => set(&mut self.id, field.value(Str)?),
            "timestamp" => set(&mut self.timestamp, field.value(Ts)?.map(Some)),
            "feature" => set(&mut self.feature, field.value(Str)?),
            "action" => set(&mut self.action, field.value(Str)?),
            "source" => message(&mut self.source, field)?,
            "parameters" => message(&mut self.parameters, field)?,
            "user" => optional_message(&mut self.user, field, "_user")?,
            "featureFlags" | "feature_flags" => {
                optional_message(&mut self.feature_flags, field, "_feature_flags")?;
            }
            "marketingTracking" | "marketing_tracking" => {
                optional_message(&mut self.marketing_tracking, field, "_marketing_tracking")?;
            }
            "interaction" => optional_message(&mut self.interaction, field, "_interaction")?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Message for EventSource {
    fn merge<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field<'_, 'de, A>,
    ) -> Result<bool, A::Error> {
        match field.key() {
            "server" => message(&mut self.server, field)?,
            "client" => optional_message(&mut self.client, field, "_client")?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Message for Server {
    fn merge<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field<'_, 'de, A>,
    ) -> Result<bool, A::Error> {
        match field.key() {
            "version" => set(&mut self.version, field.value(Str)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Message for Client {
    fn merge<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field<'_, 'de, A>,
    ) -> Result<bool, A::Error> {
        match field.key() {
            "name" => set(&mut self.name, field.value(Str)?),
            "version" => optional_string(&mut self.version, field, "_version")?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Message for EventUser {
    fn merge<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field<'_, 'de, A>,
    ) -> Result<bool, A::Error> {
        match field.key() {
            "userId" | "user_id" => set_optional(&mut self.user_id, field.value(I64)?, "_user_id")?,
            "anonymousUserId" | "anonymous_user_id" => {
                optional_string(&mut self.anonymous_user_id, field, "_anonymous_user_id")?;
            }
            "samsExternalId" | "sams_external_id" => {
                optional_string(&mut self.sams_external_id, field, "_sams_external_id")?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Message for EventFeatureFlags {
    fn merge<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field<'_, 'de, A>,
    ) -> Result<bool, A::Error> {
        match field.key() {
            "flags" => {
                let ctx = field.ctx();
                set(&mut self.flags, field.value(MapSeed::new(Str, ctx))?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Message for EventMarketingTracking {
    fn merge<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field<'_, 'de, A>,
    ) -> Result<bool, A::Error> {
        let (slot, oneof) = match field.key() {
            "url" => (&mut self.url, "_url"),
            "firstSourceUrl" | "first_source_url" => {
                (&mut self.first_source_url, "_first_source_url")
            }
            "cohortId" | "cohort_id" => (&mut self.cohort_id, "_cohort_id"),
            "referrer" => (&mut self.referrer, "_referrer"),
            "lastSourceUrl" | "last_source_url" => (&mut self.last_source_url, "_last_source_url"),
            "deviceSessionId" | "device_session_id" => {
                (&mut self.device_session_id, "_device_session_id")
            }
            "sessionReferrer" | "session_referrer" => {
                (&mut self.session_referrer, "_session_referrer")
            }
            "sessionFirstUrl" | "session_first_url" => {
                (&mut self.session_first_url, "_session_first_url")
            }
            _ => return Ok(false),
        };
        optional_string(slot, field, oneof)?;
        Ok(true)
    }
}

impl Message for EventInteraction {
    fn merge<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field<'_, 'de, A>,
    ) -> Result<bool, A::Error> {
        match field.key() {
            "traceId" | "trace_id" => optional_string(&mut self.trace_id, field, "_trace_id")?,
            "interactionId" | "interaction_id" => {
                optional_string(&mut self.interaction_id, field, "_interaction_id")?;
            }
            "geolocation" => optional_message(&mut self.geolocation, field, "_geolocation")?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Message for Geolocation {
    fn merge<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field<'_, 'de, A>,
    ) -> Result<bool, A::Error> {
        match field.key() {
            "countryCode" | "country_code" => set(&mut self.country_code, field.value(Str)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}
