//! The domain's states in the database: stored as their names in text columns on both
//! backends, read back strictly (an unknown name is an error, never a default).

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use crate::domain::session::{EndedBy, PaidStatus, RefundStatus, SessionStatus, SettlementStatus};
use crate::domain::space::SpaceStatus;
use crate::store::idempotency::KeyState;

macro_rules! stored_as_text {
    ($($state:ty),+) => {$(
        impl<DB: Database> Type<DB> for $state
        where
            str: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $state
        where
            &'q str: Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <&str as Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $state
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as Decode<'r, DB>>::decode(value)?.parse::<$state>()?)
            }
        }
    )+};
}

stored_as_text!(
    EndedBy,
    KeyState,
    PaidStatus,
    RefundStatus,
    SessionStatus,
    SettlementStatus,
    SpaceStatus
);
