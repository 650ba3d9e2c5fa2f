//! Turning a space's signed URL into something a phone can scan: a QR matrix built once
//! and cached, then drawn as PNG, SVG, terminal text or a printable A4 sheet.
//!
//! Pure: every function returns bytes or text and performs no I/O. Building a matrix is
//! the expensive step (all eight masks are tried and scored, about 0.9 ms for a
//! 200-character URL); drawing it is cheap (PNG ~0.12 ms, SVG ~0.08 ms). So callers build
//! once per code version, store [`QrMatrix::to_bytes`] and draw from the stored matrix.

mod qr;
mod sheet;

pub use qr::{QUIET_ZONE, QrMatrix, TerminalBackground};
pub use sheet::{SheetEntry, qr_sheet_pdf};

/// Why a code or a sheet could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The data does not fit in a version-40 code at level Q (about 1,660 bytes).
    #[error("data too long for a QR code at error-correction level Q")]
    DataTooLong,
    /// The encoder refused the data for another reason.
    #[error("QR encoding failed: {0}")]
    Encode(String),
    /// Stored matrix bytes are truncated, corrupt or not a QR matrix.
    #[error("invalid stored QR matrix: {0}")]
    InvalidMatrix(&'static str),
    /// A sheet entry's URL has no `scheme://host` origin to show drivers.
    #[error("URL has no scheme://host origin: {0:?}")]
    InvalidUrl(String),
}
