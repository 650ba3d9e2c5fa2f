//! The states of a parking session and of the settlement of its fee. The store maps them
//! to their names in text columns (`store::states`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a session is in its life: it runs until it is stopped, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Parking now; the fee so far grows.
    Active,
    /// Ended, priced and settled; nothing about it changes any more.
    Stopped,
}

/// Where the payment of a stopped session's fee is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementStatus {
    /// On its way to the city's payment gateway (through the outbox).
    Pending,
    /// Paid: by the gateway, or by the ledger at once when there is no gateway.
    Settled,
    /// The gateway refused it: the driver owes the amount until it is paid again.
    Arrears,
    /// Delivery gave up after its retries: nobody knows whether the gateway charged, so
    /// the city's payment office decides.
    Review,
}

/// Where a refund is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// On its way to the city's payment gateway (through the outbox).
    Pending,
    /// Given back: by the gateway, or at once when there is no gateway.
    Refunded,
    /// The gateway refused it: nothing was given back, and the charge may be refunded again.
    Failed,
    /// Delivery gave up after its retries: the city's payment office decides.
    Review,
}

/// Who or what ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// The driver stopped it.
    Driver,
    /// It reached the end the driver planned at the start (`stop_at`).
    Planned,
    /// It reached the tariff's maximum stay (`leave_by`).
    MaxStay,
    /// The lot's operator stopped it, with a reason.
    Operator,
}

/// Whether a space is paid for at an instant: what a warden's check answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaidStatus {
    /// An active session covers the space.
    Paid,
    /// No session covers it.
    Unpaid,
}

macro_rules! names {
    ($type:ty, $what:literal, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $type {
            /// Every state.
            pub const ALL: &'static [$type] = &[$(<$type>::$variant),+];

            /// The stored and serialised name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(<$type>::$variant => $name),+
                }
            }
        }

        impl FromStr for $type {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|state| state.as_str() == text)
                    .ok_or_else(|| format!("unknown {} `{text}`", $what))
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(SessionStatus, "session status", Active => "active", Stopped => "stopped");
names!(PaidStatus, "paid status", Paid => "paid", Unpaid => "unpaid");
names!(
    EndedBy,
    "ending",
    Driver => "driver",
    Planned => "planned",
    MaxStay => "max_stay",
    Operator => "operator",
);
names!(
    SettlementStatus,
    "settlement status",
    Pending => "pending",
    Settled => "settled",
    Arrears => "arrears",
    Review => "review",
);
names!(
    RefundStatus,
    "refund status",
    Pending => "pending",
    Refunded => "refunded",
    Failed => "failed",
    Review => "review",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for state in SessionStatus::ALL {
            assert_eq!(state.as_str().parse::<SessionStatus>(), Ok(*state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for state in SettlementStatus::ALL {
            assert_eq!(state.as_str().parse::<SettlementStatus>(), Ok(*state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for state in RefundStatus::ALL {
            assert_eq!(state.as_str().parse::<RefundStatus>(), Ok(*state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for ending in EndedBy::ALL {
            assert_eq!(ending.as_str().parse::<EndedBy>(), Ok(*ending));
            assert_eq!(serde_json::to_value(ending).unwrap(), ending.as_str());
        }
        assert!("everything".parse::<SessionStatus>().is_err());
    }
}
