//! Printable A4 sheets of space stickers: a grid of codes, each with its labels.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use flate2::Compression;
use flate2::write::ZlibEncoder;

use printpdf::{
    BuiltinFont, Color, DictItem, ExternalStream, ExternalXObject, Greyscale, Mm, Op, PaintMode,
    PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, Rect, TextItem,
    XObjectTransform,
};

use super::qr::QUIET_ZONE;
use super::{QrMatrix, RenderError};

/// One sticker on a sheet.
#[derive(Clone, Copy, Debug)]
pub struct SheetEntry<'a> {
    /// Lot name, printed under the space code.
    pub lot_name: &'a str,
    /// Space code, printed large so drivers can match sticker and space.
    pub space_code: &'a str,
    /// The URL encoded in `matrix`; its origin is printed for drivers to check.
    pub url: &'a str,
    /// The cached code for `url` (the sheet does not re-encode or check it).
    pub matrix: &'a QrMatrix,
}

const PAGE_W: f32 = 210.0;
const PAGE_H: f32 = 297.0;
const COLUMNS: usize = 3;
const ROWS: usize = 4;
/// Stickers per page.
pub const PER_PAGE: usize = COLUMNS * ROWS;
/// Cell size in mm; cells abut, so their hairline borders are the cutting lines.
const CELL_W: f32 = 66.0;
const CELL_H: f32 = 70.5;
/// Top of the grid in mm from the bottom edge, below the page title.
const GRID_TOP: f32 = PAGE_H - 10.0;
const GRID_LEFT: f32 = (PAGE_W - CELL_W * COLUMNS as f32) / 2.0;
/// Code size in mm, quiet zone included: a version-12 symbol is then 49.9 mm wide, which
/// a phone reads from a metre away; smaller versions get larger modules.
const CODE_MM: f32 = 56.0;
/// Labels may use the cell width less this padding on each side, in mm.
const LABEL_PAD: f32 = 2.0;

/// Renders `entries` as A4 pages of 3 x 4 stickers, each with its code (filled vector
/// rectangles, crisp at any print resolution), its space code in large type, its lot name,
/// and a line telling drivers which web address to expect before paying.
///
/// Text uses the PDF built-in Helvetica so no font files are needed, and stays extractable
/// (`pdftotext` finds every space code and lot name). Limitation: the built-in fonts only
/// cover Windows-1252 (Western European) characters; any other character (Chinese lot
/// names, for example) prints as `?`. Give such lots a Latin-script name for sheets.
pub fn qr_sheet_pdf(title: &str, entries: &[SheetEntry<'_>]) -> Result<Vec<u8>, RenderError> {
    render(title, entries, true)
}

/// The sheet, with streams left uncompressed when `compress` is false (for tests).
fn render(title: &str, entries: &[SheetEntry<'_>], compress: bool) -> Result<Vec<u8>, RenderError> {
    let mut doc = PdfDocument::new(&win_ansi(title));
    let pages_total = entries.len().div_ceil(PER_PAGE).max(1);
    let mut pages = Vec::with_capacity(pages_total);
    let mut chunks: Vec<&[SheetEntry<'_>]> = entries.chunks(PER_PAGE).collect();
    if chunks.is_empty() {
        chunks.push(&[]); // an empty sheet still gets its titled page
    }
    for (page_index, chunk) in chunks.iter().enumerate() {
        let mut ops = Vec::with_capacity(4 + chunk.len() * 24);
        let heading = format!("{} - page {} of {}", title, page_index + 1, pages_total);
        text_line(
            &mut ops,
            &heading,
            Font::Regular,
            9.0,
            5.0,
            PAGE_W / 2.0,
            PAGE_H - 7.0,
        );
        for (i, entry) in chunk.iter().enumerate() {
            let left = GRID_LEFT + (i % COLUMNS) as f32 * CELL_W;
            let top = GRID_TOP - (i / COLUMNS) as f32 * CELL_H;
            draw_sticker(&mut doc, &mut ops, entry, left, top, compress)?;
        }
        pages.push(PdfPage::new(Mm(PAGE_W), Mm(PAGE_H), ops));
    }
    let options = PdfSaveOptions {
        optimize: compress,
        ..PdfSaveOptions::default()
    };
    Ok(doc.with_pages(pages).save(&options, &mut Vec::new()))
}

/// Draws one cell whose top-left corner is at (`left`, `top`) mm from the page's bottom left.
fn draw_sticker(
    doc: &mut PdfDocument,
    ops: &mut Vec<Op>,
    entry: &SheetEntry<'_>,
    left: f32,
    top: f32,
    compress: bool,
) -> Result<(), RenderError> {
    let origin = origin(entry.url)?;
    ops.push(Op::SetOutlineColor {
        col: Color::Greyscale(Greyscale::new(0.75, None)),
    });
    ops.push(Op::SetOutlineThickness { pt: Pt(0.3) });
    ops.push(Op::DrawRectangle {
        rectangle: Rect {
            mode: Some(PaintMode::Stroke),
            ..Rect::from_xywh(
                Mm(left).into_pt(),
                Mm(top - CELL_H).into_pt(),
                Mm(CELL_W).into_pt(),
                Mm(CELL_H).into_pt(),
            )
        },
    });

    let centre = left + CELL_W / 2.0;
    let code_bottom = top - 0.5 - CODE_MM;
    let side_modules = entry.matrix.width() + 2 * QUIET_ZONE;
    let module_pt = Mm(CODE_MM).into_pt().0 / side_modules as f32;
    let id = doc.add_xobject(&code_xobject(entry.matrix, compress));
    ops.push(Op::UseXobject {
        id,
        transform: XObjectTransform {
            translate_x: Some(Mm(centre - CODE_MM / 2.0).into_pt()),
            translate_y: Some(Mm(code_bottom).into_pt()),
            scale_x: Some(module_pt),
            scale_y: Some(module_pt),
            no_auto_scale: true,
            ..XObjectTransform::default()
        },
    });

    let max_w = CELL_W - 2.0 * LABEL_PAD;
    text_line(
        ops,
        entry.space_code,
        Font::Bold,
        16.0,
        8.0,
        centre,
        code_bottom - 5.3,
    );
    text_line(
        ops,
        entry.lot_name,
        Font::Regular,
        8.0,
        5.0,
        centre,
        code_bottom - 8.5,
    );
    let warning = format!("Before paying, check the address starts with {origin}");
    if text_width_mm(&win_ansi(&warning), Font::Regular, 4.5) <= max_w {
        text_line(
            ops,
            &warning,
            Font::Regular,
            6.5,
            4.5,
            centre,
            code_bottom - 11.5,
        );
    } else {
        // A long host: split rather than truncate, since the origin is the safety check.
        let first = "Before paying, check the address starts with";
        text_line(
            ops,
            first,
            Font::Regular,
            5.0,
            4.5,
            centre,
            code_bottom - 11.2,
        );
        text_line(
            ops,
            &origin,
            Font::Bold,
            5.0,
            2.0,
            centre,
            code_bottom - 13.2,
        );
    }
    Ok(())
}

/// The code as a Form XObject in module units (quiet zone included, y up), one `re` per
/// horizontal dark run and a single fill: far fewer operators than one per module, and
/// written straight to bytes because 1,000 codes hold about a million runs.
fn code_xobject(matrix: &QrMatrix, compress: bool) -> ExternalXObject {
    let side = matrix.width() + 2 * QUIET_ZONE;
    let mut content = String::with_capacity(matrix.width() as usize * matrix.width() as usize * 3);
    for run in matrix.dark_runs() {
        let y = side - 1 - (run.y + QUIET_ZONE);
        let _ = writeln!(content, "{} {y} {} 1 re", run.x + QUIET_ZONE, run.len);
    }
    content.push_str("f\n");
    // Compressed here at the fast level: lopdf's default level spent most of a 1,000-code
    // sheet's time on these streams, for a file only a few percent smaller.
    let (content, filter) = if compress {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(content.as_bytes());
        match encoder.finish() {
            Ok(deflated) => (deflated, Some(DictItem::Name("FlateDecode".into()))),
            Err(_) => (content.into_bytes(), None),
        }
    } else {
        (content.into_bytes(), None)
    };
    let mut dict = BTreeMap::from([
        ("Type".to_string(), DictItem::Name("XObject".into())),
        ("Subtype".to_string(), DictItem::Name("Form".into())),
        (
            "BBox".to_string(),
            DictItem::Array(vec![
                DictItem::Int(0),
                DictItem::Int(0),
                DictItem::Int(i64::from(side)),
                DictItem::Int(i64::from(side)),
            ]),
        ),
    ]);
    if let Some(filter) = filter {
        dict.insert("Filter".to_string(), filter);
    }
    ExternalXObject {
        stream: ExternalStream {
            dict,
            content,
            // Already compressed above (or left plain on purpose for tests).
            compress: false,
        },
        width: None,
        height: None,
        dpi: None,
    }
}

/// `scheme://host[:port]` of `url`, lower-cased, without user info, path or query.
fn origin(url: &str) -> Result<String, RenderError> {
    let invalid = || RenderError::InvalidUrl(url.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // User info would let `https://park.example@evil.example` pass a quick glance.
    let host = authority.rsplit('@').next().unwrap_or_default();
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || host.is_empty() || host.starts_with(':') {
        return Err(invalid());
    }
    Ok(format!("{}://{}", scheme, host).to_ascii_lowercase())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
}

/// Writes `text` centred on `centre_x` with its baseline at `baseline` (mm), at `size` pt,
/// shrunk down to `min_size` to fit the cell and then cut short with an ellipsis.
fn text_line(
    ops: &mut Vec<Op>,
    text: &str,
    font: Font,
    size: f32,
    min_size: f32,
    centre_x: f32,
    baseline: f32,
) {
    let (text, size) = fit(
        &win_ansi(text),
        font,
        size,
        min_size,
        CELL_W - 2.0 * LABEL_PAD,
    );
    let width = text_width_mm(&text, font, size);
    let builtin = match font {
        Font::Regular => BuiltinFont::Helvetica,
        Font::Bold => BuiltinFont::HelveticaBold,
    };
    ops.extend([
        Op::StartTextSection,
        Op::SetFillColor {
            col: Color::Greyscale(Greyscale::new(0.0, None)),
        },
        Op::SetFont {
            font: PdfFontHandle::Builtin(builtin),
            size: Pt(size),
        },
        Op::SetTextCursor {
            pos: Point::new(Mm(centre_x - width / 2.0), Mm(baseline)),
        },
        Op::ShowText {
            items: vec![TextItem::Text(text)],
        },
        Op::EndTextSection,
    ]);
}

/// `text` and the size to print it at so it is at most `max_mm` wide.
fn fit(text: &str, font: Font, size: f32, min_size: f32, max_mm: f32) -> (String, f32) {
    let width = text_width_mm(text, font, size);
    if width <= max_mm {
        return (text.to_string(), size);
    }
    let shrunk = size * max_mm / width;
    if shrunk >= min_size {
        return (text.to_string(), shrunk);
    }
    let mut cut: String = text.to_string();
    while !cut.is_empty() && text_width_mm(&format!("{cut}\u{2026}"), font, min_size) > max_mm {
        cut.pop();
    }
    (format!("{cut}\u{2026}"), min_size)
}

/// Width in mm of `text` (already [`win_ansi`]) in the built-in Helvetica at `size` pt.
fn text_width_mm(text: &str, font: Font, size: f32) -> f32 {
    let table = match font {
        Font::Regular => &HELVETICA_WIDTHS,
        Font::Bold => &HELVETICA_BOLD_WIDTHS,
    };
    let units: u32 = text
        .chars()
        .map(|c| match c {
            ' '..='~' => u32::from(table[c as usize - 32]),
            // Accented Latin letters are about as wide as capitals; overestimating only
            // shrinks the line a little.
            _ => 722,
        })
        .sum();
    Mm::from(Pt(units as f32 * size / 1000.0)).0
}

/// `text` with every character the built-in fonts' WinAnsi encoding lacks replaced by
/// `?` and control characters by spaces, so the PDF shows what was printed.
fn win_ansi(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            ' '..='~' | '\u{A0}'..='\u{FF}' => c,
            '€' | '‚' | 'ƒ' | '„' | '…' | '†' | '‡' | 'ˆ' | '‰' | 'Š' | '‹' | 'Œ' | 'Ž' | '‘'
            | '’' | '“' | '”' | '•' | '–' | '—' | '˜' | '™' | 'š' | '›' | 'œ' | 'ž' | 'Ÿ' => {
                c
            }
            _ => '?',
        })
        .collect()
}

/// Advance widths (1/1000 em) of ASCII 32..=126 in Helvetica, from Adobe's AFM files.
#[rustfmt::skip]
const HELVETICA_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/// Advance widths (1/1000 em) of ASCII 32..=126 in Helvetica-Bold, from Adobe's AFM files.
#[rustfmt::skip]
const HELVETICA_BOLD_WIDTHS: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::qr::tests::space_url;

    struct Fixture {
        urls: Vec<String>,
        codes: Vec<String>,
        matrices: Vec<QrMatrix>,
    }

    impl Fixture {
        fn new(n: u32) -> Fixture {
            let urls: Vec<String> = (0..n).map(space_url).collect();
            let matrices = urls.iter().map(|u| QrMatrix::build(u).unwrap()).collect();
            let codes = (0..n).map(|i| format!("B-{i:03}")).collect();
            Fixture {
                urls,
                codes,
                matrices,
            }
        }

        fn entries<'a>(&'a self, lot_name: &'a str) -> Vec<SheetEntry<'a>> {
            (0..self.urls.len())
                .map(|i| SheetEntry {
                    lot_name,
                    space_code: &self.codes[i],
                    url: &self.urls[i],
                    matrix: &self.matrices[i],
                })
                .collect()
        }
    }

    fn count(haystack: &[u8], needle: &str) -> usize {
        haystack
            .windows(needle.len())
            .filter(|w| *w == needle.as_bytes())
            .count()
    }

    #[test]
    fn sheet_has_a_page_per_twelve_codes_and_every_label_as_text() {
        let fixture = Fixture::new(25);
        let entries = fixture.entries("Harbour Street Garage");
        let pdf = render("Harbour Street", &entries, false).unwrap();
        assert!(pdf.starts_with(b"%PDF"));
        assert_eq!(count(&pdf, "/MediaBox"), 3, "ceil(25 / 12) pages");
        for code in &fixture.codes {
            assert_eq!(count(&pdf, &format!("({code})")), 1, "{code} printed once");
        }
        assert_eq!(count(&pdf, "(Harbour Street Garage)"), 25);
        assert_eq!(
            count(
                &pdf,
                "(Before paying, check the address starts with https://park.example.cn)"
            ),
            25
        );
        assert_eq!(
            count(&pdf, "/Subtype/Form"),
            25,
            "one vector code per sticker"
        );
        assert_eq!(count(&pdf, " Do\n"), 25);
    }

    #[test]
    fn compressed_sheet_is_a_pdf_with_the_right_page_count() {
        let fixture = Fixture::new(13);
        let pdf = qr_sheet_pdf("Lot", &fixture.entries("Lot")).unwrap();
        assert!(pdf.starts_with(b"%PDF"));
        assert_eq!(count(&pdf, "/MediaBox"), 2);
        let empty = qr_sheet_pdf("Nothing yet", &[]).unwrap();
        assert_eq!(count(&empty, "/MediaBox"), 1);
    }

    #[test]
    fn code_xobject_covers_exactly_the_dark_modules() {
        let m = QrMatrix::build(&space_url(9)).unwrap();
        let x = code_xobject(&m, false);
        let side = m.width() + 2 * QUIET_ZONE;
        let mut grid = vec![false; (side * side) as usize];
        let content = String::from_utf8(x.stream.content).unwrap();
        for line in content.lines().filter(|l| l.ends_with(" re")) {
            let n: Vec<u32> = line
                .split(' ')
                .take(4)
                .map(|v| v.parse().unwrap())
                .collect();
            assert_eq!(n[3], 1, "one module high");
            for dx in 0..n[2] {
                // PDF y grows upwards: flip back to rows from the top.
                grid[((side - 1 - n[1]) * side + n[0] + dx) as usize] = true;
            }
        }
        for y in 0..side {
            for x in 0..side {
                let dark = m.is_dark(x.wrapping_sub(QUIET_ZONE), y.wrapping_sub(QUIET_ZONE));
                assert_eq!(grid[(y * side + x) as usize], dark, "module ({x}, {y})");
            }
        }
    }

    #[test]
    fn text_outside_the_builtin_font_is_substituted_not_a_crash() {
        let fixture = Fixture::new(2);
        let pdf = render("北京 停车场", &fixture.entries("朝阳停车场 Café"), false).unwrap();
        assert_eq!(
            count(&pdf, "(????? Caf\\351)") + count(&pdf, "<3F3F3F3F3F20436166E9>"),
            2
        );
        assert_eq!(win_ansi("Zürich\u{7}€ 北"), "Zürich € ?");
    }

    #[test]
    fn long_labels_are_shrunk_or_cut_to_fit_the_cell() {
        let long = "Very Long Lot Name ".repeat(10);
        let (text, size) = fit(&long, Font::Regular, 8.0, 5.0, 62.0);
        assert_eq!(size, 5.0);
        assert!(text.ends_with('\u{2026}'));
        assert!(text_width_mm(&text, Font::Regular, size) <= 62.0);
        let (text, size) = fit("A-017", Font::Bold, 16.0, 8.0, 62.0);
        assert_eq!((text.as_str(), size), ("A-017", 16.0));
    }

    #[test]
    fn origin_is_scheme_host_and_port_only() {
        let o = |u: &str| origin(u).ok();
        assert_eq!(
            o("https://park.example.cn/q/abc?x=1").as_deref(),
            Some("https://park.example.cn")
        );
        assert_eq!(
            o("HTTP://Park.Example:8080").as_deref(),
            Some("http://park.example:8080")
        );
        assert_eq!(
            o("https://a@b.example/x").as_deref(),
            Some("https://b.example")
        );
        assert_eq!(
            o("https://b.example#frag").as_deref(),
            Some("https://b.example")
        );
        assert_eq!(o("park.example/q"), None);
        assert_eq!(o("https:///path"), None);
        assert_eq!(o("://host"), None);
    }

    /// Checks the PDF with poppler's `pdftotext` (not installed by default) and writes it to
    /// /tmp for a look: `cargo test sheet_by_pdftotext -- --ignored`.
    #[test]
    #[ignore]
    fn sheet_by_pdftotext() {
        let fixture = Fixture::new(30);
        let pdf =
            qr_sheet_pdf("Harbour Street", &fixture.entries("Harbour Street Garage")).unwrap();
        let path = std::env::temp_dir().join("qrpark-sheet.pdf");
        std::fs::write(&path, &pdf).unwrap();
        let out = std::process::Command::new("pdftotext")
            .args(["-layout", path.to_str().unwrap(), "-"])
            .output()
            .expect("pdftotext installed");
        let text = String::from_utf8(out.stdout).unwrap();
        for code in &fixture.codes {
            assert!(text.contains(code.as_str()), "{code} missing from:\n{text}");
        }
        assert_eq!(text.matches("Harbour Street Garage").count(), 30);
        assert_eq!(
            text.matches("starts with https://park.example.cn").count(),
            30
        );
    }
}
