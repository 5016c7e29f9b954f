//! Turning one raw trace line into the text a person would see.
//!
//! A GitLab trace line can carry, in this order: the runner's timestamp prefix
//! (`2026-01-01T01:00:00.020010Z 01O `, default since runner 18.7), section
//! markers (`section_start:<unix>:<name>[opts]\r\e[0K`), `\r` progress redraws
//! and ANSI escapes. Logs from other CI systems carry GitHub Actions style
//! timestamps (`2021-03-04T05:06:07.1234567Z `). The cleaner removes all of it
//! into a caller-owned buffer, so the hot loop allocates nothing per line.

/// A `section_start` / `section_end` marker found on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub start: bool,
    pub unix_time: u64,
    pub name: String,
}

/// Which stream a runner-prefixed line came from (`O` stdout, `E` stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinePrefix {
    /// The line had the runner 18.7+ timestamp prefix.
    pub runner_prefix: bool,
    /// Stream id (`00` runner, `01` script, `0f`+ services), when prefixed.
    pub stream: u8,
    /// `+`: continuation of the previous line (the runner split a long line).
    pub continuation: bool,
}

/// Length of a runner timestamp prefix (`YYYY-MM-DDTHH:MM:SS.ffffffZ SSO `).
const RUNNER_PREFIX_LEN: usize = 32;

fn is_digits(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_digit)
}

/// `YYYY-MM-DDTHH:MM:SS` at the start of `b`.
fn has_iso_datetime(b: &[u8]) -> bool {
    b.len() >= 19
        && is_digits(&b[0..4])
        && b[4] == b'-'
        && is_digits(&b[5..7])
        && b[7] == b'-'
        && is_digits(&b[8..10])
        && b[10] == b'T'
        && is_digits(&b[11..13])
        && b[13] == b':'
        && is_digits(&b[14..16])
        && b[16] == b':'
        && is_digits(&b[17..19])
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ SSO ` at the start of `b`.
fn has_runner_prefix(b: &[u8]) -> bool {
    has_iso_datetime(b)
        && b.len() >= RUNNER_PREFIX_LEN
        && b[19] == b'.'
        && is_digits(&b[20..26])
        && b[26] == b'Z'
        && b[27] == b' '
        && b[28].is_ascii_hexdigit()
        && b[29].is_ascii_hexdigit()
        && (b[30] == b'O' || b[30] == b'E')
        && (b[31] == b' ' || b[31] == b'+')
}

/// Strips the runner's per-line prefix, or a GitHub Actions style timestamp.
/// Returns the rest of the line and what the prefix said.
pub fn strip_timestamp(line: &[u8]) -> (&[u8], LinePrefix) {
    if !has_iso_datetime(line) {
        return (line, LinePrefix::default());
    }
    let b = line;
    if has_runner_prefix(b) {
        let stream = hex_val(b[28]) * 16 + hex_val(b[29]);
        // The script's own output may carry a timestamp too (tools that
        // print GitHub Actions style stamps); strip it as well. Repeated
        // runner prefixes are skipped in a loop: one recursion per prefix
        // overflowed the stack on a long line of them.
        let mut rest = &b[RUNNER_PREFIX_LEN..];
        while has_runner_prefix(rest) {
            rest = &rest[RUNNER_PREFIX_LEN..];
        }
        let (rest, _) = strip_timestamp(rest);
        return (
            rest,
            LinePrefix {
                runner_prefix: true,
                stream,
                continuation: b[31] == b'+',
            },
        );
    }
    // GitHub Actions / generic: optional fraction, then `Z` and one space.
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if b.get(i) == Some(&b'Z') {
        i += 1;
        if b.get(i) == Some(&b' ') {
            i += 1;
        }
        return (&b[i..], LinePrefix::default());
    }
    (line, LinePrefix::default())
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Longest section name kept; longer names are cut (a log can say anything).
const MAX_SECTION_NAME: usize = 128;

/// Parses a marker starting at `b` (which begins with `section_start:` or
/// `section_end:`). Returns the marker and how many bytes it spans, including
/// the `\r\e[0K` the runner writes after it.
fn parse_marker(b: &[u8]) -> Option<(Marker, usize)> {
    let (start, mut i) = if b.starts_with(b"section_start:") {
        (true, 14)
    } else if b.starts_with(b"section_end:") {
        (false, 12)
    } else {
        return None;
    };
    let ts_begin = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == ts_begin || b.get(i) != Some(&b':') {
        return None;
    }
    let unix_time = std::str::from_utf8(&b[ts_begin..i])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    i += 1;
    let name_begin = i;
    while let Some(&c) = b.get(i) {
        if c == b'\r' || c == b'\x1b' || c == b'[' || c == b'\n' || c == b' ' {
            break;
        }
        i += 1;
    }
    if i == name_begin {
        return None;
    }
    let name_end = i;
    // Options: `name[collapsed=true]`.
    if b.get(i) == Some(&b'[') {
        if let Some(close) = memchr::memchr(b']', &b[i..]) {
            i += close + 1;
        }
    }
    if b.get(i) == Some(&b'\r') {
        i += 1;
    }
    if b[i..].starts_with(b"\x1b[0K") {
        i += 4;
    }
    let raw_name = &b[name_begin..name_end.min(name_begin + MAX_SECTION_NAME)];
    Some((
        Marker {
            start,
            unix_time,
            name: String::from_utf8_lossy(raw_name).into_owned(),
        },
        i,
    ))
}

/// Removes section markers from `line`, appending the rest to `out` and the
/// markers to `markers`. Lines without `section_` take the fast path.
/// Built once: a searcher made per line costs more than the search.
static SECTION: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"section_"));

/// True when `line` holds `section_` (maybe a marker). Cheaper than a
/// substring search on short lines: `_` is rare, and `section` must precede it.
fn has_section_marker(line: &[u8]) -> bool {
    memchr::memchr_iter(b'_', line).any(|i| line[..i].ends_with(b"section"))
}

fn extract_markers(line: &[u8], out: &mut Vec<u8>, markers: &mut Vec<Marker>) {
    let finder = SECTION.find_iter(line);
    let mut last = 0;
    for pos in finder {
        if pos < last {
            continue;
        }
        if let Some((m, len)) = parse_marker(&line[pos..]) {
            out.extend_from_slice(&line[last..pos]);
            markers.push(m);
            last = pos + len;
        }
    }
    out.extend_from_slice(&line[last..]);
}

/// What a terminal would show after `\r` redraws: the text after the last
/// carriage return that is followed by something. Trailing `\r`s (from
/// `\r\n` line ends) are dropped.
fn after_carriage_returns(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r'] = line {
        line = rest;
    }
    match memchr::memrchr(b'\r', line) {
        Some(pos) => &line[pos + 1..],
        None => line,
    }
}

/// Bytes that end a run of plain text: ESC, other control characters (tabs
/// stay) and DEL.
fn is_special(c: u8) -> bool {
    (c < 0x20 && c != b'\t') || c == 0x7f
}

/// Index of the first [`is_special`] byte of `s` (or its length). Checks
/// 16 bytes at a time without an early exit, which the compiler vectorises:
/// most lines have no special byte at all.
fn first_special(s: &[u8]) -> usize {
    let mut at = 0;
    for chunk in s.chunks_exact(16) {
        if chunk.iter().fold(false, |any, &c| any | is_special(c)) {
            break;
        }
        at += 16;
    }
    at + s[at..]
        .iter()
        .position(|&c| is_special(c))
        .unwrap_or(s.len() - at)
}

/// Colours and weight a line was printed with (many tools colour their errors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Some text was red (SGR 31 or 91) or red-backed (41, 101).
    pub red: bool,
    /// Some text was bold (SGR 1).
    pub bold: bool,
    /// Some text was yellow (SGR 33 or 93), as warnings often are.
    pub yellow: bool,
}

impl Style {
    /// Reads the parameters of one SGR sequence (`31;1` of `\e[31;1m`).
    fn apply_sgr(&mut self, params: &[u8]) {
        for p in params.split(|&c| c == b';') {
            match p {
                b"31" | b"91" | b"41" | b"101" => self.red = true,
                b"1" | b"01" => self.bold = true,
                b"33" | b"93" => self.yellow = true,
                _ => {}
            }
        }
    }
}

/// Removes ANSI escape sequences and other control characters (tabs stay)
/// from `src`, appending the visible text to `out` a run at a time, and
/// notes the colours the sequences set.
fn strip_ansi(src: &[u8], out: &mut Vec<u8>, style: &mut Style) {
    let mut i = 0;
    while i < src.len() {
        let run = first_special(&src[i..]);
        out.extend_from_slice(&src[i..i + run]);
        i += run;
        let Some(&c) = src.get(i) else { break };
        i += 1;
        if c != 0x1b {
            continue;
        }
        match src.get(i) {
            Some(b'[') => {
                // CSI: parameters and intermediates, then one final byte.
                i += 1;
                let params = i;
                while i < src.len() && !(0x40..=0x7e).contains(&src[i]) {
                    i += 1;
                }
                if src.get(i) == Some(&b'm') {
                    style.apply_sgr(&src[params..i]);
                }
                i += 1;
            }
            Some(b']') => {
                // OSC: up to BEL or ESC \.
                i += 1;
                while i < src.len() {
                    if src[i] == 0x07 {
                        i += 1;
                        break;
                    }
                    if src[i] == 0x1b && src.get(i + 1) == Some(&b'\\') {
                        i += 2;
                        break;
                    }
                    i += 1;
                }
            }
            Some(_) => i += 1,
            None => {}
        }
    }
}

/// Travis CI's fold and timing markers (`travis_fold:start:install\r\e[0K`,
/// `travis_time:end:…\r\e[0K`) prefix the line's real text; drop them.
fn strip_travis_markers(mut line: &[u8]) -> &[u8] {
    while line.starts_with(b"travis_fold:") || line.starts_with(b"travis_time:") {
        match memchr::memmem::find(line, b"\x1b[0K") {
            Some(i) => line = &line[i + 4..],
            None => return &line[line.len()..],
        }
    }
    line
}

/// Reusable buffers for cleaning lines: one `LineCleaner` per trace.
#[derive(Default)]
pub struct LineCleaner {
    scratch: Vec<u8>,
    /// The visible text of the last cleaned line.
    pub text: Vec<u8>,
    /// Markers found on the last cleaned line.
    pub markers: Vec<Marker>,
    /// How the last cleaned line was coloured.
    pub style: Style,
}

impl LineCleaner {
    /// Cleans `raw` into `self.text` (and `self.markers`, `self.style`).
    /// A line without section markers is never copied but once.
    pub fn clean(&mut self, raw: &[u8]) -> LinePrefix {
        self.text.clear();
        self.markers.clear();
        self.style = Style::default();
        let (rest, prefix) = strip_timestamp(raw);
        let rest = strip_travis_markers(rest);
        let src: &[u8] = if has_section_marker(rest) {
            self.scratch.clear();
            extract_markers(rest, &mut self.scratch, &mut self.markers);
            &self.scratch
        } else {
            rest
        };
        strip_ansi(after_carriage_returns(src), &mut self.text, &mut self.style);
        // Trailing whitespace carries no meaning and breaks text comparisons.
        while self.text.last().is_some_and(|c| c.is_ascii_whitespace()) {
            self.text.pop();
        }
        prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(raw: &[u8]) -> (String, Vec<Marker>, LinePrefix) {
        let mut c = LineCleaner::default();
        let p = c.clean(raw);
        (
            String::from_utf8_lossy(&c.text).into_owned(),
            c.markers.clone(),
            p,
        )
    }

    #[test]
    fn the_first_special_byte_is_found_in_any_position() {
        for n in [0usize, 1, 15, 16, 17, 40] {
            let mut line = vec![b'a'; n];
            assert_eq!(first_special(&line), n);
            line.push(0x1b);
            line.extend_from_slice(b"xyz\tq");
            assert_eq!(first_special(&line), n, "{n}");
        }
        assert_eq!(first_special(b"tab\tstays"), 9);
        assert_eq!(first_special(b"del\x7f"), 3);
    }

    #[test]
    fn strips_ansi_colours() {
        let (t, _, _) = clean(b"\x1b[31;1mERROR: Job failed: exit code 1\x1b[0;m");
        assert_eq!(t, "ERROR: Job failed: exit code 1");
    }

    #[test]
    fn parses_back_to_back_markers() {
        let raw = b"section_end:1616063383:get_sources\r\x1b[0Ksection_start:1616063383:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting \"step_script\" stage\x1b[0;m";
        let (t, m, _) = clean(raw);
        assert_eq!(t, "Executing \"step_script\" stage");
        assert_eq!(m.len(), 2);
        assert!(!m[0].start && m[0].name == "get_sources");
        assert!(m[1].start && m[1].name == "step_script" && m[1].unix_time == 1616063383);
    }

    #[test]
    fn marker_options_are_not_part_of_the_name() {
        let (_, m, _) =
            clean(b"section_start:1700000000:build_deps[collapsed=true]\r\x1b[0KBuilding");
        assert_eq!(m[0].name, "build_deps");
    }

    #[test]
    fn marker_with_lf_instead_of_cr() {
        // CR→LF converted logs: the marker ends the line.
        let (t, m, _) = clean(b"section_start:1581437417:prepare_executor");
        assert_eq!(t, "");
        assert_eq!(m[0].name, "prepare_executor");
    }

    #[test]
    fn runner_timestamp_prefix_is_removed() {
        let (t, m, p) =
            clean(b"2026-01-01T01:00:00.020010Z 01O section_start:1767229200:step_script\r\x1b[0K");
        assert_eq!(t, "");
        assert_eq!(m[0].name, "step_script");
        assert!(p.runner_prefix && p.stream == 1 && !p.continuation);
        let (t, _, p) = clean(b"2026-01-01T01:00:00.020010Z 0fE+rest of line");
        assert_eq!(t, "rest of line");
        assert!(p.continuation && p.stream == 15);
    }

    #[test]
    fn github_actions_timestamp_is_removed() {
        let (t, _, p) = clean(b"2021-03-04T05:06:07.1234567Z ##[error]Process completed");
        assert_eq!(t, "##[error]Process completed");
        assert!(!p.runner_prefix);
    }

    #[test]
    fn carriage_return_redraws_keep_the_final_state() {
        let (t, _, _) = clean(b"Downloading 10%\rDownloading 50%\rDownloading 100%\r");
        assert_eq!(t, "Downloading 100%");
    }

    #[test]
    fn travis_markers_are_removed() {
        let (t, _, _) = clean(b"travis_time:end:00c9becb:start=1,finish=2,duration=1\r\x1b[0K\x1b[31;1mThe command \"make\" exited with 1.\x1b[0m");
        assert_eq!(t, "The command \"make\" exited with 1.");
        let (t, _, _) = clean(b"travis_fold:end:install\r\x1b[0K");
        assert_eq!(t, "");
    }

    #[test]
    fn prose_mentioning_section_is_kept() {
        let (t, m, _) = clean(b"see section_start: docs");
        assert_eq!(t, "see section_start: docs");
        assert!(m.is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        for raw in [
            &b"\x1b"[..],
            b"\x1b[",
            b"\x1b]0;title",
            b"section_start:",
            b"section_start:12",
            b"section_start:12:",
            b"section_end:99:x[",
            b"\xff\xfe\x00\x01",
            b"2026-01-01T01:00:00.020010Z",
            b"2026-01-01T01:00:00",
        ] {
            let _ = clean(raw);
        }
    }
}
