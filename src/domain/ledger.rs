//! The books: four kinds of account and the postings of every money event (docs/money.md).
//!
//! Every event posts one debit and one credit of the same amount in the same currency, so
//! debits equal credits per currency by construction. Each account's balance is a sum over
//! the settlements' and refunds' states (the doc of each [`Account`] says which), which is
//! how the books are reconciled (`store::ledger::reconcile`).

use std::fmt;

use uuid::Uuid;

/// An account of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// What a driver owes: the fees the gateway refused (arrears). Debit-normal.
    DriverReceivable(String),
    /// What the city's payment gateway has collected or is collecting for the lots: fees
    /// settled, pending or in review, less refunds not failed. Debit-normal.
    GatewayClearing,
    /// An operator's fees, whatever became of their payment. Credit-normal.
    OperatorRevenue(Uuid),
    /// What an operator gave back (refunds not failed): a contra-revenue. Debit-normal.
    Refunds(Uuid),
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DriverReceivable(driver) => write!(f, "driver_receivable:{driver}"),
            Self::GatewayClearing => f.write_str("gateway_clearing"),
            Self::OperatorRevenue(operator) => write!(f, "operator_revenue:{operator}"),
            Self::Refunds(operator) => write!(f, "refunds:{operator}"),
        }
    }
}

/// Something that moves money in the books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A session stopped with a fee: the gateway collects it (or has, without a gateway).
    Stop,
    /// The gateway refused the payment: the driver owes it.
    Refused,
    /// Arrears sent to the gateway again (the driver pays, or the payment office retries).
    Repay,
    /// The payment office decided that a payment in review was not charged.
    ResolvedArrears,
    /// An operator gives money back.
    Refund,
    /// The gateway refused a refund: nothing was given back.
    RefundRefused,
    /// The payment office decided that a refund in review was not given back.
    RefundResolvedFailed,
}

impl Event {
    /// The stored name (`ledger_entry.event`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Refused => "refused",
            Self::Repay => "repay",
            Self::ResolvedArrears => "resolved_arrears",
            Self::Refund => "refund",
            Self::RefundRefused => "refund_refused",
            Self::RefundResolvedFailed => "refund_resolved_failed",
        }
    }

    /// The account debited and the account credited, for a fee of `operator` owed by
    /// `driver`.
    pub fn posting(self, driver: &str, operator: Uuid) -> (Account, Account) {
        let receivable = || Account::DriverReceivable(driver.to_owned());
        match self {
            Self::Stop => (Account::GatewayClearing, Account::OperatorRevenue(operator)),
            Self::Refused | Self::ResolvedArrears => (receivable(), Account::GatewayClearing),
            Self::Repay => (Account::GatewayClearing, receivable()),
            Self::Refund => (Account::Refunds(operator), Account::GatewayClearing),
            Self::RefundRefused | Self::RefundResolvedFailed => {
                (Account::GatewayClearing, Account::Refunds(operator))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Replays events on balances and checks them against the states after each one.
    #[test]
    fn every_event_keeps_each_balance_equal_to_its_states() {
        let operator = Uuid::nil();
        let driver = "driver-1";
        let mut balances: HashMap<Account, i64> = HashMap::new();
        let mut post = |event: Event, amount: i64| {
            let (debit, credit) = event.posting(driver, operator);
            *balances.entry(debit).or_default() += amount;
            *balances.entry(credit).or_default() -= amount;
            balances.clone()
        };
        let balance = |b: &HashMap<Account, i64>, a: Account| b.get(&a).copied().unwrap_or(0);
        // A 25.00 fee, refused, paid again, settled, then 10.00 refunded and 5.00 refused.
        let b = post(Event::Stop, 2500);
        assert_eq!(balance(&b, Account::GatewayClearing), 2500);
        let b = post(Event::Refused, 2500);
        assert_eq!(balance(&b, Account::DriverReceivable(driver.into())), 2500);
        assert_eq!(balance(&b, Account::GatewayClearing), 0);
        let b = post(Event::Repay, 2500);
        assert_eq!(balance(&b, Account::DriverReceivable(driver.into())), 0);
        assert_eq!(balance(&b, Account::GatewayClearing), 2500);
        post(Event::Refund, 1000);
        let b = post(Event::Refund, 500);
        assert_eq!(balance(&b, Account::Refunds(operator)), 1500);
        let b = post(Event::RefundRefused, 500);
        assert_eq!(balance(&b, Account::Refunds(operator)), 1000);
        assert_eq!(balance(&b, Account::GatewayClearing), 1500);
        assert_eq!(balance(&b, Account::OperatorRevenue(operator)), -2500);
        assert_eq!(b.values().sum::<i64>(), 0, "debits equal credits");
    }

    #[test]
    fn accounts_are_named_as_stored() {
        let operator = Uuid::nil();
        assert_eq!(
            Account::DriverReceivable("s".into()).to_string(),
            "driver_receivable:s"
        );
        assert_eq!(Account::GatewayClearing.to_string(), "gateway_clearing");
        assert_eq!(
            Account::OperatorRevenue(operator).to_string(),
            format!("operator_revenue:{operator}")
        );
        assert_eq!(
            Account::Refunds(operator).to_string(),
            format!("refunds:{operator}")
        );
    }
}
