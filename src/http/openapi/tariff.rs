//! The tariff document's schema (shared/spec/tariff.md, docs/tariffs.md), as strict as its
//! validation (`domain::tariff::validate`) can be said in JSON Schema. What it cannot say is
//! still answered 422 `tariff_invalid`: amounts with more decimals than the currency allows,
//! a currency other than the lot's, rule names used twice, `until_minute` on the last step
//! or not increasing, dates that do not exist, numbers written with a fraction (`15.0`).

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, Type,
};

use crate::domain::currency::Currency;
use crate::domain::tariff::{DAY_NAMES, MAX_MINUTES};

/// A tariff document (documentation only; handlers read it as JSON and validate it).
pub struct TariffDocument;

/// A whole number of minutes from `min` to [`MAX_MINUTES`].
fn minutes(min: u64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min as usize))
        .maximum(Some(MAX_MINUTES as usize))
}

/// A non-negative decimal written as a JSON string (`"2.50"`), with at most the currency's
/// minor-unit decimals.
fn amount() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^[0-9]+(?:\.[0-9]+)?$"))
        .examples(["2.50"])
}

/// A local wall-clock time `HH:MM`; `to` may also be `24:00`.
fn time(is_end: bool) -> ObjectBuilder {
    let pattern = if is_end {
        r"^(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
    } else {
        r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"
    };
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
}

/// Exactly one of the four forms of a price: `{"free": true}`, `{"flat": A}`,
/// `{"every_minutes": N, "amount": A}`, `{"steps": [...]}`.
fn price() -> Schema {
    let form = |keys: &[&str]| {
        keys.iter()
            .fold(ObjectBuilder::new(), |object, key| object.required(*key))
            .max_properties(Some(keys.len()))
    };
    let step = ObjectBuilder::new()
        .property("until_minute", minutes(1))
        .property("every_minutes", minutes(1))
        .required("every_minutes")
        .property("amount", amount())
        .required("amount")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .description(Some(
            "`until_minute` is left out on the last step only, and increases from step to step",
        ));
    let object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "free",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([true])),
        )
        .property("flat", amount())
        .property("every_minutes", minutes(1))
        .property("amount", amount())
        .property("steps", ArrayBuilder::new().items(step).min_items(Some(1)))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .build();
    let forms = OneOfBuilder::new()
        .item(form(&["free"]))
        .item(form(&["flat"]))
        .item(form(&["every_minutes", "amount"]))
        .item(form(&["steps"]));
    utoipa::openapi::schema::AllOfBuilder::new()
        .item(object)
        .item(forms)
        .into()
}

fn rule() -> ObjectBuilder {
    // Any text with a character that is not whitespace (`str::trim`'s White_Space).
    let not_blank =
        r"[^\t\n\x0B\x0C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "name",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(not_blank))
                .description(Some(
                    "Unique within the tariff; names the breakdown's lines",
                )),
        )
        .required("name")
        .property(
            "days",
            ArrayBuilder::new()
                .items(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(DAY_NAMES)),
                )
                .min_items(Some(1))
                .unique_items(true),
        )
        .property(
            "dates",
            ArrayBuilder::new()
                .items(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
                        .pattern(Some(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")),
                )
                .min_items(Some(1))
                .unique_items(true),
        )
        .property("from", time(false))
        .property("to", time(true))
        .property("price", price())
        .required("price")
        .property("cap", amount())
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

impl utoipa::PartialSchema for TariffDocument {
    fn schema() -> RefOr<Schema> {
        let daily_cap = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("amount", amount())
            .required("amount")
            .property(
                "period",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["calendar_day", "rolling_24h"])),
            )
            .required("period")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "A tariff document (docs/tariffs.md). The first rule whose window contains an \
                 instant prices it.",
            ))
            .property(
                "currency",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(Currency::codes()))
                    .description(Some("ISO 4217; the lot's currency")),
            )
            .required("currency")
            .property("grace_minutes", minutes(0))
            .property("max_stay_minutes", minutes(1))
            .property("daily_cap", daily_cap)
            .property(
                "rules",
                ArrayBuilder::new().items(rule()).min_items(Some(1)),
            )
            .required("rules")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl utoipa::ToSchema for TariffDocument {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Tariff")
    }
}
