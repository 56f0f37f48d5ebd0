//! The field table of `EventParameters` (its three maps and the `Struct`)
//! and `EventBillingMetadata`.

use serde::de::MapAccess;

use super::scalars::{F64, I32, I64, Str};
use super::structs::{PRIVATE_METADATA_LEVEL, StructSeed};
use super::{Field, MapSeed, Message, MessageSeed, set, set_optional};
use crate::proto::telemetrygateway::v1::{EventBillingMetadata, EventParameters};

impl Message for EventParameters {
    fn merge<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field<'_, 'de, A>,
    ) -> Result<bool, A::Error> {
        let ctx = field.ctx();
        match field.key() {
            "version" => set(&mut self.version, field.value(I32)?),
            "legacyMetadata" | "legacy_metadata" => {
                set(
                    &mut self.legacy_metadata,
                    field.value(MapSeed::new(I64, ctx))?,
                );
            }
            "metadata" => {
                if let Some(mut metadata) = field.value(MapSeed::new(F64, ctx))? {
                    // prost leaves map values equal to 0.0 out of the
                    // encoding, so -0.0 decodes as 0.0: the same here.
                    for value in metadata.values_mut() {
                        if *value == 0.0 {
                            *value = 0.0;
                        }
                    }
                    self.metadata = metadata;
                }
            }
            "privateMetadata" | "private_metadata" => {
                let seed = StructSeed {
                    level: PRIVATE_METADATA_LEVEL,
                };
                set_optional(
                    &mut self.private_metadata,
                    field.value(seed)?,
                    "_private_metadata",
                )?;
            }
            "billingMetadata" | "billing_metadata" => set_optional(
                &mut self.billing_metadata,
                field.value(MessageSeed::new(ctx))?,
                "_billing_metadata",
            )?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Message for EventBillingMetadata {
    fn merge<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field<'_, 'de, A>,
    ) -> Result<bool, A::Error> {
        match field.key() {
            "product" => set(&mut self.product, field.value(Str)?),
            "category" => set(&mut self.category, field.value(Str)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}
