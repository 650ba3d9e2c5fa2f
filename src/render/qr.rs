//! The QR matrix of one space's URL and its PNG, SVG and terminal renderings.

use std::fmt::Write as _;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use qrcode::bits::{self, Bits};
use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::ec;
use qrcode::optimize::{Optimizer, Parser};
use qrcode::types::QrError;
use qrcode::{Color, EcLevel, Version};

use super::RenderError;

/// Light modules drawn around every rendering: the 4 the QR standard requires, without
/// which phones struggle to find the code on a busy background.
pub const QUIET_ZONE: u32 = 4;

/// First byte of [`QrMatrix::to_bytes`], so the stored layout can change later.
const STORAGE_FORMAT: u8 = 1;
/// Largest module size [`QrMatrix::png`] draws: a version-40 code is then 11,840 px wide,
/// far beyond any print need, and the pixel buffer stays well inside memory.
const MAX_MODULE_PX: u32 = 64;

/// A built QR code: level Q (sturdy outdoor stickers), the smallest version that fits.
///
/// Level Q restores up to 25% damaged codewords, which a scuffed or rained-on sticker
/// needs; the cost is a larger version than level M for the same URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrMatrix {
    version: i16,
    width: u32,
    /// Row-major, `width * width` entries, `true` for a dark module.
    dark: Vec<bool>,
}

/// The terminal's background colour, which decides which modules are drawn as glyphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TerminalBackground {
    /// Light text on a dark background (most terminals): glyphs draw the light modules
    /// and the quiet zone, so the code still reads dark-on-light as scanners expect.
    #[default]
    Dark,
    /// Dark text on a light background: glyphs draw the dark modules.
    Light,
}

impl QrMatrix {
    /// Encodes `data` at error-correction level Q in the smallest version that holds it.
    pub fn build(data: &str) -> Result<QrMatrix, RenderError> {
        let bits = smallest_bits(data.as_bytes())?;
        let Version::Normal(version) = bits.version() else {
            // Only normal versions are ever planned above.
            return Err(RenderError::Encode("unexpected Micro QR".into()));
        };
        let (codewords, ec) =
            ec::construct_codewords(&bits.into_bytes(), Version::Normal(version), EcLevel::Q)
                .map_err(encode_error)?;
        let mut canvas = Canvas::new(Version::Normal(version), EcLevel::Q);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&codewords, &ec);
        let width = width_of(version);
        let dark = best_masked(&canvas, width as usize);
        debug_assert_eq!(dark.len(), (width * width) as usize);
        Ok(QrMatrix {
            version,
            width,
            dark,
        })
    }

    /// Builds one matrix per item on all cores, results in input order: a 1,000-space
    /// sheet's codes then take about half a second on two cores instead of one.
    pub fn build_many(data: &[&str]) -> Vec<Result<QrMatrix, RenderError>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = data.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = data
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|d| QrMatrix::build(d)).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| match h.join() {
                    Ok(built) => built,
                    // `build` does not panic on any input; re-raise if it ever does.
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    }

    /// QR version, 1..=40.
    pub fn version(&self) -> i16 {
        self.version
    }

    /// Modules per side, without the quiet zone.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Whether the module at column `x`, row `y` is dark; outside the symbol is light.
    pub fn is_dark(&self, x: u32, y: u32) -> bool {
        x < self.width && y < self.width && self.dark[(y * self.width + x) as usize]
    }

    /// Compact form to store in a database: format byte, version byte, then the modules
    /// row-major, 8 per byte, most significant bit first (a version-12 code is 531 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(2 + self.dark.len().div_ceil(8));
        bytes.push(STORAGE_FORMAT);
        // Versions are 1..=40 by construction, so the cast is lossless.
        bytes.push(self.version as u8);
        for chunk in self.dark.chunks(8) {
            let mut byte = 0u8;
            for (i, &dark) in chunk.iter().enumerate() {
                if dark {
                    byte |= 0x80 >> i;
                }
            }
            bytes.push(byte);
        }
        bytes
    }

    /// Reads [`QrMatrix::to_bytes`] back, refusing anything that is not a plausible code.
    pub fn from_bytes(bytes: &[u8]) -> Result<QrMatrix, RenderError> {
        let [format, version, packed @ ..] = bytes else {
            return Err(RenderError::InvalidMatrix("too short"));
        };
        if *format != STORAGE_FORMAT {
            return Err(RenderError::InvalidMatrix("unknown storage format"));
        }
        if !(1..=40).contains(version) {
            return Err(RenderError::InvalidMatrix("version out of range"));
        }
        let version = i16::from(*version);
        let width = width_of(version);
        let modules = (width * width) as usize;
        if packed.len() != modules.div_ceil(8) {
            return Err(RenderError::InvalidMatrix("length does not match version"));
        }
        let dark: Vec<bool> = (0..modules)
            .map(|i| packed[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect();
        let padding_bits = packed.len() * 8 - modules;
        if padding_bits > 0 && packed[packed.len() - 1] & ((1u8 << padding_bits) - 1) != 0 {
            return Err(RenderError::InvalidMatrix("non-zero padding"));
        }
        let matrix = QrMatrix {
            version,
            width,
            dark,
        };
        // Random or shifted bytes of the right length would otherwise load as noise that
        // prints as an unscannable sticker; the fixed patterns catch that cheaply.
        if !matrix.has_fixed_patterns() {
            return Err(RenderError::InvalidMatrix(
                "finder or timing patterns missing",
            ));
        }
        Ok(matrix)
    }

    /// PNG with a 4-module quiet zone, `module_px` pixels per module (clamped to 1..=64),
    /// 8-bit greyscale holding only black and white so edges stay crisp.
    pub fn png(&self, module_px: u32) -> Vec<u8> {
        let module_px = module_px.clamp(1, MAX_MODULE_PX);
        let side_modules = self.width + 2 * QUIET_ZONE;
        let side = side_modules * module_px;
        // One pixel row per module row, repeated `module_px` times: a per-pixel loop with
        // divisions took most of the time.
        let mut pixels = Vec::with_capacity((side * side) as usize);
        let mut row = vec![0xFFu8; side as usize];
        for my in 0..side_modules {
            for (mx, module) in row.chunks_exact_mut(module_px as usize).enumerate() {
                let dark = self.is_dark(
                    (mx as u32).wrapping_sub(QUIET_ZONE),
                    my.wrapping_sub(QUIET_ZONE),
                );
                module.fill(if dark { 0x00 } else { 0xFF });
            }
            for _ in 0..module_px {
                pixels.extend_from_slice(&row);
            }
        }
        let mut out = Vec::new();
        // Fast compression: flat black and white rows deflate to nearly nothing at any
        // level, and the best level costs several times the time for a few bytes.
        let encoder = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Up);
        // Sizes are clamped above, the buffer matches them exactly, and writing to a Vec
        // cannot fail, so an error here is a bug in this function.
        encoder
            .write_image(&pixels, side, side, ExtendedColorType::L8)
            .expect("PNG of a clamped size into a Vec");
        out
    }

    /// SVG with a 4-module quiet zone, a viewBox in modules and one `<path>` holding every
    /// dark run, with `crispEdges` so browsers do not blur module boundaries. It has no
    /// width or height: size it with CSS.
    pub fn svg(&self) -> String {
        let side = self.width + 2 * QUIET_ZONE;
        let mut svg = String::with_capacity(64 + self.dark.len() * 4);
        let _ = write!(
            svg,
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" shape-rendering="crispEdges"><rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d=""##
        );
        for run in self.dark_runs() {
            let (x, y) = (run.x + QUIET_ZONE, run.y + QUIET_ZONE);
            let _ = write!(svg, "M{x} {y}h{}v1H{x}z", run.len);
        }
        svg.push_str(r#""/></svg>"#);
        svg
    }

    /// The code in Unicode half blocks for a dark terminal (see [`TerminalBackground`]).
    pub fn terminal(&self) -> String {
        self.terminal_for(TerminalBackground::Dark)
    }

    /// The code in Unicode half blocks, two module rows per line, quiet zone included:
    /// `ceil((width + 8) / 2)` lines, each `width + 8` characters and a newline.
    pub fn terminal_for(&self, background: TerminalBackground) -> String {
        let side = self.width + 2 * QUIET_ZONE;
        // A glyph's ink is the terminal's foreground colour: it must paint the modules
        // that differ from the background, so on a dark terminal it paints light ones.
        let inked = |x: u32, y: u32| -> bool {
            if y >= side {
                return false; // below the last row: leave the terminal's background
            }
            let dark = self.is_dark(x.wrapping_sub(QUIET_ZONE), y.wrapping_sub(QUIET_ZONE));
            match background {
                TerminalBackground::Dark => !dark,
                TerminalBackground::Light => dark,
            }
        };
        let lines = side.div_ceil(2);
        let mut out = String::with_capacity((lines * (side * 3 + 1)) as usize);
        for line in 0..lines {
            for x in 0..side {
                out.push(match (inked(x, 2 * line), inked(x, 2 * line + 1)) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
        }
        out
    }

    /// Horizontal runs of dark modules, row by row, in symbol coordinates (no quiet zone).
    pub(crate) fn dark_runs(&self) -> impl Iterator<Item = DarkRun> + '_ {
        self.dark
            .chunks_exact(self.width as usize)
            .enumerate()
            .flat_map(|(y, row)| {
                let mut runs = Vec::new();
                let mut x = 0;
                while x < row.len() {
                    if row[x] {
                        let start = x;
                        while x < row.len() && row[x] {
                            x += 1;
                        }
                        runs.push(DarkRun {
                            x: start as u32,
                            y: y as u32,
                            len: (x - start) as u32,
                        });
                    } else {
                        x += 1;
                    }
                }
                runs
            })
    }

    /// Whether the three finder patterns, their separators and the timing patterns are
    /// where every QR symbol has them.
    fn has_fixed_patterns(&self) -> bool {
        let w = self.width;
        let finder_ok = |left: u32, top: u32| {
            (0..7).all(|dy: u32| {
                (0..7).all(|dx: u32| {
                    // Dark except the ring at Chebyshev distance 2 from the centre.
                    let ring = dx.abs_diff(3).max(dy.abs_diff(3));
                    self.is_dark(left + dx, top + dy) == (ring != 2)
                })
            })
        };
        let separators_ok = (0..8).all(|i| {
            !self.is_dark(7, i)
                && !self.is_dark(i, 7)
                && !self.is_dark(w - 8, i)
                && !self.is_dark(w - 1 - i, 7)
                && !self.is_dark(7, w - 1 - i)
                && !self.is_dark(i, w - 8)
        });
        let timing_ok = (8..w - 8).all(|i| self.is_dark(i, 6) == (i % 2 == 0))
            && (8..w - 8).all(|i| self.is_dark(6, i) == (i % 2 == 0));
        finder_ok(0, 0) && finder_ok(w - 7, 0) && finder_ok(0, w - 7) && separators_ok && timing_ok
    }
}

/// A horizontal run of dark modules starting at column `x` of row `y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DarkRun {
    pub x: u32,
    pub y: u32,
    pub len: u32,
}

/// The symbol under the mask with the lowest penalty, scored by the same rules and in the
/// same order as `qrcode` (so the same mask wins), but on plain booleans: `qrcode`'s own
/// scoring spends about 2 ms per 200-character URL, most of a build.
fn best_masked(canvas: &Canvas, width: usize) -> Vec<bool> {
    let mut best: Option<(i64, Vec<bool>)> = None;
    for pattern in MASKS {
        let mut masked = canvas.clone();
        masked.apply_mask(pattern);
        let dark: Vec<bool> = masked
            .into_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();
        let score = penalty(&dark, width);
        // Strictly lower only: on a tie the earlier mask wins, as in `qrcode`.
        if best
            .as_ref()
            .is_none_or(|(best_score, _)| score < *best_score)
        {
            best = Some((score, dark));
        }
    }
    best.map(|(_, dark)| dark).unwrap_or_default()
}

const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// ISO 18004 mask penalty (rules N1 to N4) as `qrcode` 0.14 computes it.
fn penalty(dark: &[bool], w: usize) -> i64 {
    let at = |x: usize, y: usize| dark[y * w + x];
    let mut score = 0i64;
    for horizontal in [true, false] {
        let line = |i: usize, j: usize| if horizontal { at(j, i) } else { at(i, j) };
        for i in 0..w {
            // N1: runs of five or more same-coloured modules score 3 + (length - 5).
            let mut run = 1i64;
            for j in 1..=w {
                if j < w && line(i, j) == line(i, j - 1) {
                    run += 1;
                } else {
                    if run >= 5 {
                        score += run - 2;
                    }
                    run = 1;
                }
            }
            // N3: 1:1:3:1:1 finder look-alikes without four light modules on one side.
            for j in 0..w.saturating_sub(6) {
                let finder_like = (0..7).all(|k| line(i, j + k) == (k != 1 && k != 5));
                if !finder_like {
                    continue;
                }
                let dark_before = (j.saturating_sub(4)..j).any(|k| line(i, k));
                let dark_after = (j + 7..(j + 11).min(w)).any(|k| line(i, k));
                if !dark_before || !dark_after {
                    score += 40;
                }
            }
        }
        // The three real finder patterns always match: `qrcode` subtracts them per direction.
        score -= 360;
    }
    // N2: every 2x2 block of one colour, overlaps counted.
    for y in 0..w - 1 {
        for x in 0..w - 1 {
            let c = at(x, y);
            if at(x + 1, y) == c && at(x, y + 1) == c && at(x + 1, y + 1) == c {
                score += 3;
            }
        }
    }
    // N4: distance of the dark share from 50%, linear (qrcode does not round to 5%).
    let ratio = (dark.iter().filter(|&&d| d).count() * 200 / dark.len()) as i64;
    score + (ratio - 100).abs()
}

/// The data encoded for level Q in the smallest version that holds it.
///
/// `qrcode`'s automatic choice plans its segments with the bit costs of version 9, which
/// can leave a long URL one version larger than needed (a 203-character URL came out as
/// version 13 though it fits version 12). Re-planning at each smaller version costs
/// microseconds against the milliseconds of mask selection, and a smaller version means
/// larger modules on the same sticker.
fn smallest_bits(data: &[u8]) -> Result<Bits, RenderError> {
    let auto = bits::encode_auto(data, EcLevel::Q).map_err(encode_error)?;
    let Version::Normal(auto_version) = auto.version() else {
        return Ok(auto);
    };
    let segments: Vec<_> = Parser::new(data).collect();
    for v in 1..auto_version {
        let version = Version::Normal(v);
        let planned = Optimizer::new(segments.iter().copied(), version);
        let mut bits = Bits::new(version);
        if bits.push_segments(data, planned).is_ok() && bits.push_terminator(EcLevel::Q).is_ok() {
            return Ok(bits);
        }
        let mut bytes_only = Bits::new(version);
        if bytes_only.push_byte_data(data).is_ok() && bytes_only.push_terminator(EcLevel::Q).is_ok()
        {
            return Ok(bytes_only);
        }
    }
    Ok(auto)
}

fn encode_error(e: QrError) -> RenderError {
    match e {
        QrError::DataTooLong => RenderError::DataTooLong,
        other => RenderError::Encode(other.to_string()),
    }
}

/// Modules per side of a normal QR version.
fn width_of(version: i16) -> u32 {
    17 + 4 * version.unsigned_abs() as u32
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use qrcode::QrCode;

    /// A realistic signed space URL: 26-character base, 177-character token, 203 in all.
    pub(crate) fn space_url(space: u32) -> String {
        const BASE64URL: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        // A stand-in for the signature, long enough for 203 characters in all: deterministic noise per space.
        let mut state = u64::from(space).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let signature: String = (0..92)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(BASE64URL[(state % 64) as usize])
            })
            .collect();
        format!(
            "https://park.example.cn/q/eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzIjoiQVpyU2I4eFFkM0s5bTJiV2MxYTREZyIsInYiOjF9.{signature}"
        )
    }

    fn decode_png(png: &[u8]) -> String {
        let img = image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .expect("valid PNG")
            .to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "exactly one code in the image");
        grids[0].decode().expect("rqrr decodes the code").1
    }

    #[test]
    fn png_of_a_203_character_url_decodes_to_the_same_url() {
        let url = space_url(7);
        assert_eq!(url.len(), 203);
        let m = QrMatrix::build(&url).unwrap();
        assert!(m.version() <= 12, "version {} at level Q", m.version());
        assert_eq!(m.width(), 17 + 4 * m.version() as u32);
        let png = m.png(4);
        assert!(png.starts_with(b"\x89PNG"));
        assert_eq!(decode_png(&png), url);
    }

    #[test]
    fn short_and_long_data_round_trip_and_too_long_is_an_error() {
        for data in ["https://p.example/q/x", &"A".repeat(1000)] {
            let m = QrMatrix::build(data).unwrap();
            assert_eq!(decode_png(&m.png(3)), data);
        }
        assert!(matches!(
            QrMatrix::build(&"x".repeat(5000)),
            Err(RenderError::DataTooLong)
        ));
    }

    #[test]
    fn png_is_small_and_module_size_is_clamped() {
        let m = QrMatrix::build(&space_url(1)).unwrap();
        let png = m.png(8);
        assert!(png.len() < 12_000, "PNG is {} bytes", png.len());
        let side = |png: &[u8]| image::load_from_memory(png).unwrap().width();
        assert_eq!(side(&png), (m.width() + 8) * 8);
        assert_eq!(side(&m.png(0)), m.width() + 8);
        assert_eq!(side(&m.png(u32::MAX)), (m.width() + 8) * 64);
    }

    #[test]
    fn png_pixels_are_only_black_or_white() {
        let m = QrMatrix::build(&space_url(2)).unwrap();
        let img = image::load_from_memory(&m.png(5)).unwrap().to_luma8();
        assert!(img.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
        // Top-left corner of the finder pattern sits right after the quiet zone.
        assert_eq!(img.get_pixel(4 * 5, 4 * 5).0[0], 0);
        assert_eq!(img.get_pixel(4 * 5 - 1, 4 * 5).0[0], 255);
    }

    /// Paints the SVG path back onto a grid of the SVG's full size, quiet zone included.
    fn paint_svg_path(svg: &str, side: u32) -> Vec<bool> {
        let d_start = svg.find(" d=\"").expect("path has d") + 4;
        let d_end = d_start + svg[d_start..].find('"').unwrap();
        let mut grid = vec![false; (side * side) as usize];
        for cmd in svg[d_start..d_end].split('z').filter(|c| !c.is_empty()) {
            // Each run is written as M{x} {y}h{len}v1H{x}.
            let (m, rest) = cmd.strip_prefix('M').unwrap().split_once('h').unwrap();
            let (x, y) = m.split_once(' ').unwrap();
            let (len, back) = rest.split_once("v1H").unwrap();
            let (x, y, len): (u32, u32, u32) =
                (x.parse().unwrap(), y.parse().unwrap(), len.parse().unwrap());
            assert_eq!(back.parse::<u32>().unwrap(), x);
            for dx in 0..len {
                let cell = &mut grid[(y * side + x + dx) as usize];
                assert!(!*cell, "runs overlap at ({}, {y})", x + dx);
                *cell = true;
            }
        }
        grid
    }

    #[test]
    fn svg_is_one_crisp_path_covering_exactly_the_dark_modules() {
        let m = QrMatrix::build(&space_url(3)).unwrap();
        let svg = m.svg();
        let side = m.width() + 2 * QUIET_ZONE;
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains(&format!("viewBox=\"0 0 {side} {side}\"")));
        assert!(svg.contains("shape-rendering=\"crispEdges\""));
        assert_eq!(svg.matches("<path").count(), 1);
        assert_eq!(svg.matches("<rect").count(), 1, "only the white background");
        // Well-formed: every element opened is closed, and no stray markup characters.
        assert_eq!(svg.matches('<').count(), svg.matches('>').count());
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());

        let grid = paint_svg_path(&svg, side);
        for y in 0..side {
            for x in 0..side {
                let expected = m.is_dark(x.wrapping_sub(4), y.wrapping_sub(4));
                assert_eq!(grid[(y * side + x) as usize], expected, "module ({x}, {y})");
            }
        }
        // The quiet zone is light on every side.
        assert!((0..side).all(|i| !grid[i as usize] && !grid[((side - 1) * side + i) as usize]));
        assert!((0..side).all(|i| !grid[(i * side) as usize] && !grid[(i * side + 3) as usize]));
    }

    #[test]
    fn mask_choice_matches_the_qrcode_crate() {
        for data in [
            "x",
            "https://p.example/q/1",
            &space_url(8),
            &space_url(9),
            &"Q7".repeat(300),
        ] {
            let ours = QrMatrix::build(data).unwrap();
            let bits = smallest_bits(data.as_bytes()).unwrap();
            let reference = QrCode::with_bits(bits, EcLevel::Q).unwrap();
            let reference: Vec<bool> = reference
                .into_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect();
            assert_eq!(ours.dark, reference, "{data}");
        }
    }

    #[test]
    fn build_many_keeps_input_order() {
        let urls: Vec<String> = (0..9).map(space_url).collect();
        let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
        let built = QrMatrix::build_many(&refs);
        assert_eq!(built.len(), 9);
        for (url, m) in urls.iter().zip(built) {
            assert_eq!(m.unwrap(), QrMatrix::build(url).unwrap());
        }
        assert!(QrMatrix::build_many(&[]).is_empty());
    }

    #[test]
    fn bytes_round_trip() {
        for data in ["x", &space_url(4), &"Z".repeat(900)] {
            let m = QrMatrix::build(data).unwrap();
            let bytes = m.to_bytes();
            assert_eq!(
                bytes.len(),
                2 + (m.width() * m.width()).div_ceil(8) as usize
            );
            assert_eq!(QrMatrix::from_bytes(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn from_bytes_refuses_garbage() {
        let good = QrMatrix::build(&space_url(5)).unwrap().to_bytes();
        let refuse = |bytes: &[u8]| QrMatrix::from_bytes(bytes).is_err();
        assert!(refuse(&[]));
        assert!(refuse(&[1]));
        assert!(refuse(&good[..good.len() - 1]), "truncated");
        assert!(refuse(&[&good[..], &[0]].concat()), "trailing byte");
        let mut bad_format = good.clone();
        bad_format[0] = 2;
        assert!(refuse(&bad_format));
        let mut bad_version = good.clone();
        bad_version[1] = 41;
        assert!(refuse(&bad_version));
        // Right length, but noise instead of a code.
        let noise: Vec<u8> = (0..good.len())
            .map(|i| if i < 2 { good[i] } else { (i * 37 % 251) as u8 })
            .collect();
        assert!(refuse(&noise));
        // A damaged finder pattern.
        let mut damaged = good.clone();
        damaged[2] ^= 0x40;
        assert!(refuse(&damaged));
        // Padding bits must be zero (version 12: 65 * 65 = 4225 modules, 7 spare bits).
        let mut padded = good.clone();
        *padded.last_mut().unwrap() |= 1;
        assert!(refuse(&padded));
    }

    #[test]
    fn terminal_has_a_line_per_two_module_rows_including_the_quiet_zone() {
        let m = QrMatrix::build(&space_url(6)).unwrap();
        let side = (m.width() + 8) as usize;
        for background in [TerminalBackground::Dark, TerminalBackground::Light] {
            let text = m.terminal_for(background);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), side.div_ceil(2));
            assert!(lines.iter().all(|l| l.chars().count() == side));
            assert!(text.chars().all(|c| " ▀▄█\n".contains(c)));
        }
        // On a dark terminal the quiet zone is painted light, so the first line is solid.
        let dark = m.terminal();
        assert!(dark.lines().next().unwrap().chars().all(|c| c == '█'));
        // The last line holds only the bottom quiet-zone row (the side is odd).
        assert!(dark.lines().last().unwrap().chars().all(|c| c == '▀'));
        let light = m.terminal_for(TerminalBackground::Light);
        assert!(light.lines().next().unwrap().chars().all(|c| c == ' '));
    }

    /// Prints the code to a dark terminal for checking with a phone by hand:
    /// `cargo test terminal_by_eye -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn terminal_by_eye() {
        println!("{}", QrMatrix::build(&space_url(0)).unwrap().terminal());
    }
}
