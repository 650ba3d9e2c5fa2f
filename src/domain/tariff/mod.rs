//! Tariffs: the operator's JSON document (`model`, `validate`) and the pricing engine
//! (`price`). The contract is docs/tariffs.md.

mod local_time;
mod model;
mod price;
mod validate;

pub use model::{CapPeriod, DAY_NAMES, DailyCap, DaySet, LocalTime, Price, Rule, Step, Tariff};
pub use price::{Fee, FeeLine, GRACE_RULE, PriceError, price};
pub use validate::{InvalidTariff, MAX_AMOUNT_MINOR, MAX_MINUTES, TariffProblem};
