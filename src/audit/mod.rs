//! City auditors: streamed session exports chained record by record and closed by a signed
//! checkpoint, verified offline.

pub mod export;
pub mod sealer;
pub mod verify;
