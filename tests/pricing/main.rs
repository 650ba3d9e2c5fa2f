//! The pricing engine through its public API: docs/tariffs.md's worked examples, hand-worked
//! cases for every semantic point, validation paths, the fixtures, and property tests
//! against a deliberately naive reference model.

mod caps;
mod cases;
mod dst;
mod examples;
mod fixtures;
mod properties;
mod reference;
mod support;
mod validation;
