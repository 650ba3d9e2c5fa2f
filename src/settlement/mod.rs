//! Settlement: every stopped session is settled against the driver's city identity in the
//! stop's own transaction (the ledger); when a city payment gateway is configured the
//! settlement is also delivered to it through a transactional outbox.

pub mod outbox;
