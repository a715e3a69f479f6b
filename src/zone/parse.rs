//! Master-file (zone file) parser, RFC 1035 §5.
//!
//! Two stages. The lexer (`lex`) turns text into entries, one per logical
//! line: parentheses join physical lines, `;` starts a comment, `"..."`
//! quotes, and a line that starts with whitespace has no owner. Each entry
//! is then a directive (`$ORIGIN`, `$TTL`, `$INCLUDE`) or a resource record whose
//! RDATA the `rdata` module encodes to wire format. Whether owners lie inside
//! the zone is left to the caller.
//!
//! Both stages stream: an entry is handled as soon as it is read and each
//! record goes straight to the caller's sink, so a million-record file costs
//! its text and the zone being built, not a token list and a record list too.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lex::{quote, Entries, Entry, Fail, Token};
use super::rdata;
use crate::name::Name;
use crate::rr::{rtype, type_from_str, type_to_string, Location, Record};

/// How deep `$INCLUDE`s may nest; deeper is taken to be a loop.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Largest TTL: RFC 2181 §8 keeps the top bit of the 32-bit field clear.
const MAX_TTL: u32 = 0x7fff_ffff;

/// Most records one zone may hold, `$INCLUDE`s counted. A bound keeps a
/// runaway file from taking the machine's memory at load (each record
/// costs a few hundred bytes while loading).
pub const MAX_RECORDS: usize = 20_000_000;

/// Largest master file (each `$INCLUDE`d file too) read.
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// Reads a master file, refusing one over `limit` bytes before reading it.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > limit {
        return Err(format!("{len} bytes, more than the limit of {limit}"));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// A zone file error: which file, which line, what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}:{}: {}", .file.display(), .line, .message)]
pub struct MasterFileError {
    /// The file the error is in; an `$INCLUDE`d file for errors inside it.
    pub file: PathBuf,
    /// 1-based line number; 0 when the file could not be read at all.
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

/// Takes each record as it is parsed. An `Err` stops the parse; its
/// message is reported at the record's file and line.
pub type Sink<'s> = &'s mut dyn FnMut(Record) -> Result<(), String>;

/// Parses a master file and its `$INCLUDE`s, handing each record to `sink`
/// in file order. Relative names are completed with `origin` until a
/// `$ORIGIN` says otherwise.
pub fn parse_file_into(path: &Path, origin: &Name, sink: Sink<'_>) -> Result<(), MasterFileError> {
    let bytes = read_bounded(path, MAX_FILE_BYTES).map_err(|e| MasterFileError {
        file: path.to_path_buf(),
        line: 0,
        message: format!("cannot read zone file: {e}"),
    })?;
    parse_str_into(&decode(path, bytes)?, path, origin, sink)
}

/// Like [`parse_file_into`], for text already read. `file` is only used in
/// error locations and [`Record::origin`]; `$INCLUDE` paths resolve
/// relative to its folder.
pub fn parse_str_into(
    text: &str,
    file: &Path,
    origin: &Name,
    sink: Sink<'_>,
) -> Result<(), MasterFileError> {
    Parser::new(sink, MAX_RECORDS).parse(text, file, origin, 0)
}

/// Parses a master file into a list of records (tests and tools; a server
/// loads through [`parse_file_into`]).
pub fn parse_file(path: &Path, origin: &Name) -> Result<Vec<Record>, MasterFileError> {
    collect(|sink| parse_file_into(path, origin, sink))
}

/// Parses master-file text into a list of records, like [`parse_file`].
pub fn parse_str(text: &str, file: &Path, origin: &Name) -> Result<Vec<Record>, MasterFileError> {
    collect(|sink| parse_str_into(text, file, origin, sink))
}

fn collect(
    parse: impl FnOnce(Sink<'_>) -> Result<(), MasterFileError>,
) -> Result<Vec<Record>, MasterFileError> {
    let mut records = Vec::new();
    parse(&mut |r| {
        records.push(r);
        Ok(())
    })?;
    Ok(records)
}

/// Zone files are text; other bytes are written as `\DDD` escapes.
fn decode(path: &Path, bytes: Vec<u8>) -> Result<String, MasterFileError> {
    String::from_utf8(bytes).map_err(|e| {
        let good = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .unwrap_or_default();
        let newlines = good.iter().filter(|&&b| b == b'\n').count();
        MasterFileError {
            file: path.to_path_buf(),
            line: u32::try_from(newlines)
                .unwrap_or(u32::MAX)
                .saturating_add(1),
            message: "not valid UTF-8 (write such bytes as \\DDD escapes)".into(),
        }
    })
}

/// State shared by a file and the files it includes.
struct Parser<'s> {
    sink: Sink<'s>,
    /// Records handed to `sink` so far.
    records: usize,
    /// [`MAX_RECORDS`], lowered in tests.
    max_records: usize,
    /// The last `$TTL`; it holds across `$INCLUDE` boundaries, as in BIND.
    default_ttl: Option<u32>,
    /// MINIMUM of the last SOA: the default TTL when there is no `$TTL`
    /// (the pre-RFC 2308 §4 convention BIND still follows).
    soa_minimum: Option<u32>,
}

/// State local to one file: an `$INCLUDE` changes neither the including
/// file's origin (RFC 1035 §5.1) nor its previous owner.
struct FileState {
    file: Arc<Path>,
    origin: Name,
    owner: Option<Name>,
}

/// What an entry asks of the file loop.
enum Step {
    Done,
    Include {
        path: PathBuf,
        origin: Name,
        line: u32,
    },
}

impl<'s> Parser<'s> {
    fn new(sink: Sink<'s>, max_records: usize) -> Parser<'s> {
        Parser {
            sink,
            records: 0,
            max_records,
            default_ttl: None,
            soa_minimum: None,
        }
    }

    fn parse(
        &mut self,
        text: &str,
        file: &Path,
        origin: &Name,
        depth: usize,
    ) -> Result<(), MasterFileError> {
        let err = |f: Fail| MasterFileError {
            file: file.to_path_buf(),
            line: f.line,
            message: f.message,
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut state = FileState {
            file: Arc::from(file),
            origin: origin.clone(),
            owner: None,
        };
        for entry in Entries::new(text) {
            let Step::Include { path, origin, line } =
                self.entry(&mut state, &entry.map_err(err)?).map_err(err)?
            else {
                continue;
            };
            if depth >= MAX_INCLUDE_DEPTH {
                let msg = format!(
                    "$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep (an include loop?)"
                );
                return Err(err(Fail::new(line, msg)));
            }
            let path = file.parent().unwrap_or(Path::new("")).join(path);
            let bytes = read_bounded(&path, MAX_FILE_BYTES).map_err(|e| {
                let shown = quote(&path.display().to_string());
                err(Fail::new(
                    line,
                    format!("cannot read $INCLUDE file {shown}: {e}"),
                ))
            })?;
            self.parse(&decode(&path, bytes)?, &path, &origin, depth + 1)?;
        }
        Ok(())
    }

    /// Handles one entry: `[<owner>] [<TTL>] [<class>] <type> <RDATA>`,
    /// TTL and class in either order (RFC 1035 §5.1), or a directive.
    fn entry(&mut self, st: &mut FileState, e: &Entry<'_>) -> Result<Step, Fail> {
        let Some((first, after_first)) = e.tokens.split_first() else {
            return Ok(Step::Done);
        };
        if !e.blank_owner && !first.quoted && first.text.starts_with('$') {
            return self.directive(st, first, after_first);
        }
        let (owner, mut rest) = if e.blank_owner {
            let owner = st.owner.clone().ok_or_else(|| {
                Fail::new(
                    e.line,
                    "line starts with a blank but there is no previous owner name",
                )
            })?;
            (owner, e.tokens.as_slice())
        } else {
            (name(first, &st.origin, "owner name")?, after_first)
        };
        st.owner = Some(owner.clone());

        let mut ttl = None;
        let mut class = false;
        while let Some((tok, tail)) = rest.split_first() {
            if tok.quoted {
                break;
            }
            // A TTL starts with a digit; types and classes never do.
            if ttl.is_none() && tok.text.starts_with(|c: char| c.is_ascii_digit()) {
                ttl = Some(parse_ttl(tok)?);
            } else if !class && is_class(tok)? {
                class = true;
            } else {
                break;
            }
            rest = tail;
        }

        let Some((type_tok, rdata_toks)) = rest.split_first() else {
            let line = e.tokens.last().map_or(e.line, |t| t.line);
            return Err(Fail::new(line, "missing record type"));
        };
        let rt = type_from_str(type_tok.text)
            .filter(|_| !type_tok.quoted)
            .ok_or_else(|| {
                Fail::new(
                    type_tok.line,
                    format!("unknown record type {}", quote(type_tok.text)),
                )
            })?;
        // Reserved type 0, OPT and the question-only types 128-255 (AXFR,
        // ANY, ...) are not data (RFC 6895 §3.1).
        if rt == 0 || rt == rtype::OPT || (128..=255).contains(&rt) {
            let msg = format!("type {} cannot appear in a zone file", type_to_string(rt));
            return Err(Fail::new(type_tok.line, msg));
        }
        let rdata = rdata::encode(rt, rdata_toks, &st.origin, type_tok.line)?;

        if rt == rtype::SOA {
            // MINIMUM is the last field (RFC 1035 §3.3.13); encode checked the layout.
            let min = rdata.len().checked_sub(4).and_then(|i| rdata.get(i..));
            if let Some(bytes) = min.and_then(|m| <[u8; 4]>::try_from(m).ok()) {
                self.soa_minimum = Some(u32::from_be_bytes(bytes));
            }
        }
        let ttl = match ttl {
            Some(ttl) => ttl,
            None => {
                let ttl = self.default_ttl.or(self.soa_minimum).ok_or_else(|| {
                    Fail::new(
                        e.line,
                        "no TTL: give one on the record, or a $TTL line before it",
                    )
                })?;
                if ttl > MAX_TTL {
                    let msg = format!(
                        "no TTL, and the SOA minimum {ttl} is above {MAX_TTL} (RFC 2181 §8)"
                    );
                    return Err(Fail::new(e.line, msg));
                }
                ttl
            }
        };
        if self.records >= self.max_records {
            let msg = format!(
                "more than {} records: the zone is too large",
                self.max_records
            );
            return Err(Fail::new(e.line, msg));
        }
        self.records += 1;
        (self.sink)(Record {
            owner,
            rtype: rt,
            ttl,
            rdata: rdata.into_boxed_slice(),
            origin: Location {
                file: st.file.clone(),
                line: e.line,
            },
        })
        .map_err(|message| Fail::new(e.line, message))?;
        Ok(Step::Done)
    }

    /// `$ORIGIN <name>`, `$TTL <ttl>` (RFC 2308 §4) and
    /// `$INCLUDE <file> [<origin>]` (RFC 1035 §5.1). Directive names
    /// are case-insensitive, as in BIND.
    fn directive(
        &mut self,
        st: &mut FileState,
        dir: &Token<'_>,
        args: &[Token<'_>],
    ) -> Result<Step, Fail> {
        let upper = dir.text.to_ascii_uppercase();
        let max_args = match upper.as_str() {
            "$ORIGIN" | "$TTL" => 1,
            "$INCLUDE" => 2,
            "$GENERATE" => return Err(Fail::new(dir.line, "$GENERATE is not supported")),
            _ => {
                return Err(Fail::new(
                    dir.line,
                    format!("unknown directive {}", quote(dir.text)),
                ))
            }
        };
        if let Some(extra) = args.get(max_args) {
            let msg = format!("unexpected {} after {upper}", quote(extra.text));
            return Err(Fail::new(extra.line, msg));
        }
        let Some(arg) = args.first() else {
            return Err(Fail::new(dir.line, format!("{upper} needs an argument")));
        };
        match upper.as_str() {
            "$ORIGIN" => st.origin = name(arg, &st.origin, "$ORIGIN name")?,
            "$TTL" => self.default_ttl = Some(parse_ttl(arg)?),
            _ => {
                let bad = |m: String| {
                    Fail::new(
                        arg.line,
                        format!("bad $INCLUDE file name {}: {m}", quote(arg.text)),
                    )
                };
                let bytes = rdata::unescape(arg.text, usize::MAX).map_err(bad)?;
                let path = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
                if path.is_empty() {
                    return Err(bad("empty".into()));
                }
                let origin = match args.get(1) {
                    Some(tok) => name(tok, &st.origin, "$INCLUDE origin")?,
                    None => st.origin.clone(),
                };
                return Ok(Step::Include {
                    path: PathBuf::from(path),
                    origin,
                    line: dir.line,
                });
            }
        }
        Ok(Step::Done)
    }
}

/// A domain name, relative ones completed by `origin`.
fn name(tok: &Token<'_>, origin: &Name, what: &str) -> Result<Name, Fail> {
    Name::from_text(tok.text, Some(origin))
        .map_err(|e| Fail::new(tok.line, format!("bad {what} {}: {e}", quote(tok.text))))
}

/// A TTL: seconds or BIND units, at most 2^31-1 (RFC 2181 §8).
fn parse_ttl(tok: &Token<'_>) -> Result<u32, Fail> {
    match rdata::duration(tok.text) {
        Some(ttl) if ttl <= MAX_TTL => Ok(ttl),
        Some(ttl) => Err(Fail::new(
            tok.line,
            format!("TTL {ttl} is above {MAX_TTL} (RFC 2181 §8)"),
        )),
        None => Err(Fail::new(tok.line, format!("bad TTL {}", quote(tok.text)))),
    }
}

/// Whether `tok` names a class. Only IN is served (RFC 1035 §3.2.4), so
/// another class is an error, not a record to drop silently.
fn is_class(tok: &Token<'_>) -> Result<bool, Fail> {
    let upper = tok.text.to_ascii_uppercase();
    // CLASS1 is IN's RFC 3597 §5 generic name.
    if upper == "IN" || upper == "CLASS1" {
        return Ok(true);
    }
    let generic = upper
        .strip_prefix("CLASS")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    if generic || matches!(upper.as_str(), "CH" | "CHAOS" | "HS" | "HESIOD" | "CS") {
        let msg = format!("class {} is not supported (only IN)", quote(tok.text));
        return Err(Fail::new(tok.line, msg));
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_text(s, None).unwrap()
    }

    fn parse(text: &str) -> Result<Vec<Record>, MasterFileError> {
        parse_str(
            text,
            Path::new("zones/example.com.zone"),
            &n("example.com."),
        )
    }

    /// The only record of `$TTL 300` followed by `text`.
    fn one(text: &str) -> Record {
        let mut recs = parse(&format!("$TTL 300\n{text}\n")).unwrap();
        assert_eq!(recs.len(), 1, "{text}");
        recs.remove(0)
    }

    fn rdata(text: &str) -> Vec<u8> {
        one(text).rdata.into_vec()
    }

    /// The error for `text`, as displayed.
    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn directives() {
        let recs = parse(
            "$TTL 1h\n\
             a A 192.0.2.1\n\
             $ORIGIN sub.example.com.\n\
             b A 192.0.2.2\n\
             $origin deeper\n\
             c 60 A 192.0.2.3\n\
             @ A 192.0.2.4\n",
        )
        .unwrap();
        let owners: Vec<String> = recs.iter().map(|r| r.owner.to_string()).collect();
        assert_eq!(
            owners,
            [
                "a.example.com.",
                "b.sub.example.com.",
                "c.deeper.sub.example.com.",
                "deeper.sub.example.com."
            ]
        );
        assert_eq!(
            recs.iter().map(|r| r.ttl).collect::<Vec<_>>(),
            [3600, 3600, 60, 3600]
        );
        assert_eq!(recs[2].origin.line, 6);
        assert_eq!(
            err("$FOO bar\n"),
            "zones/example.com.zone:1: unknown directive \"$FOO\""
        );
        assert!(err("$GENERATE 1-2 a A 1.2.3.4\n").ends_with("$GENERATE is not supported"));
        assert!(err("$TTL\n").ends_with(":1: $TTL needs an argument"));
        assert!(err("$TTL 1 2\n").ends_with(":1: unexpected \"2\" after $TTL"));
        assert!(err("$ORIGIN a..b.\n").contains("bad $ORIGIN name \"a..b.\": empty label"));
    }

    #[test]
    fn owners() {
        let recs = parse("$TTL 5\nWWW A 192.0.2.1\n  A 192.0.2.2\n\tTXT x\n@ A 192.0.2.3\nfoo.net. A 192.0.2.4\n").unwrap();
        assert_eq!(recs[0].owner.wire(), b"\x03WWW\x07example\x03com\x00");
        assert_eq!(recs[1].owner, recs[0].owner);
        assert_eq!(recs[2].owner, recs[0].owner);
        assert_eq!(recs[3].owner, n("example.com."));
        assert_eq!(recs[4].owner, n("foo.net."));
        assert_eq!(
            err("$TTL 5\n A 192.0.2.1\n"),
            "zones/example.com.zone:2: line starts with a blank but there is no previous owner name"
        );
        assert!(err("$TTL 5\na\\256 A 192.0.2.1\n")
            .contains(":2: bad owner name \"a\\256\": bad escape sequence"));
    }

    #[test]
    fn ttl_and_class_in_either_order() {
        for text in [
            "a 60 IN A 192.0.2.1",
            "a IN 60 A 192.0.2.1",
            "a 60 A 192.0.2.1",
            "a 1M in A 192.0.2.1",
        ] {
            let r = one(text);
            assert_eq!((r.ttl, r.rtype), (60, rtype::A), "{text}");
        }
        assert_eq!(one("a IN A 192.0.2.1").ttl, 300);
        assert_eq!(one("a CLASS1 A 192.0.2.1").ttl, 300);
        assert_eq!(one("a 1h30m A 192.0.2.1").ttl, 5400);
        assert_eq!(one("a 1d A 192.0.2.1").ttl, 86400);
        assert_eq!(one("a 2W A 192.0.2.1").ttl, 1_209_600);
        assert_eq!(one("a 1w2d3h4m5s A 192.0.2.1").ttl, 788_645);
        assert_eq!(one("a 2147483647 A 192.0.2.1").ttl, MAX_TTL);
        assert!(err("a 2147483648 A 192.0.2.1")
            .ends_with(":1: TTL 2147483648 is above 2147483647 (RFC 2181 §8)"));
        assert!(err("a 4294967296 A 192.0.2.1").ends_with(":1: bad TTL \"4294967296\""));
        assert!(err("a 1h30 A 192.0.2.1").ends_with(":1: bad TTL \"1h30\""));
        assert!(err("a 1x A 192.0.2.1").ends_with(":1: bad TTL \"1x\""));
        assert!(err("$TTL 1y\n").ends_with(":1: bad TTL \"1y\""));
        assert!(err("$TTL 3000000000\n").contains("above 2147483647"));
        assert_eq!(
            err("$TTL 1\na CH A 192.0.2.1"),
            "zones/example.com.zone:2: class \"CH\" is not supported (only IN)"
        );
        assert!(
            err("$TTL 1\na 5 HS A 192.0.2.1").ends_with("class \"HS\" is not supported (only IN)")
        );
        assert!(err("$TTL 1\na CLASS3 A 192.0.2.1")
            .ends_with("class \"CLASS3\" is not supported (only IN)"));
    }

    #[test]
    fn default_ttl_from_soa_minimum() {
        let soa = "@ SOA ns1 hostmaster 1 2 3 4 3600\n";
        let recs = parse(&format!("{soa}www A 192.0.2.1\nx 7 A 192.0.2.2\n")).unwrap();
        assert_eq!(
            recs.iter().map(|r| r.ttl).collect::<Vec<_>>(),
            [3600, 3600, 7]
        );
        // $TTL wins over the SOA minimum.
        let recs = parse(&format!("$TTL 60\n{soa}www A 192.0.2.1\n")).unwrap();
        assert_eq!(recs.iter().map(|r| r.ttl).collect::<Vec<_>>(), [60, 60]);
        assert_eq!(
            err("www A 192.0.2.1\n"),
            "zones/example.com.zone:1: no TTL: give one on the record, or a $TTL line before it"
        );
        assert!(err("@ SOA ns1 hostmaster 1 2 3 4 4294967295\n")
            .contains("SOA minimum 4294967295 is above"));
    }

    #[test]
    fn soa_across_lines_with_comments() {
        let text = "$TTL 1d\n\
                    @ IN SOA ns1.Example.com. host\\.master ( ; primary, mailbox\n\
                    \t2024010101 ; serial\n\
                    \t1h   ; refresh\n\
                    \t15M 1w\n\
                    \t300 )\n\
                    www A 192.0.2.1\n";
        let recs = parse(text).unwrap();
        assert_eq!(recs.len(), 2);
        let mut want =
            b"\x03ns1\x07Example\x03com\x00\x0bhost.master\x07example\x03com\x00".to_vec();
        for v in [2_024_010_101u32, 3600, 900, 604_800, 300] {
            want.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(&*recs[0].rdata, want.as_slice());
        assert_eq!(recs[0].ttl, 86400);
        assert_eq!((recs[0].origin.line, recs[1].origin.line), (2, 7));
        assert!(err("$TTL 1\n@ SOA a b 1h 2 3 4 5\n")
            .ends_with(":2: bad SOA serial \"1h\" (expected an integer 0-4294967295)"));
        assert!(err("$TTL 1\n@ SOA a b 1 2 3 4\n").ends_with(":2: missing SOA minimum"));
        assert!(err("$TTL 1\n@ SOA a b 1 2 3 x 5\n").ends_with(":2: bad SOA expire \"x\""));
    }

    #[test]
    fn address_types() {
        assert_eq!(rdata("a A 192.0.2.1"), [192, 0, 2, 1]);
        let mut v6 = vec![0x20, 0x01, 0x0d, 0xb8];
        v6.extend_from_slice(&[0; 11]);
        v6.push(1);
        assert_eq!(rdata("a AAAA 2001:DB8::1"), v6);
        assert_eq!(
            rdata("a AAAA ::ffff:192.0.2.1")[10..],
            [0xff, 0xff, 192, 0, 2, 1]
        );
        assert_eq!(
            err("$TTL 1\n\n\na A 1.2.3"),
            "zones/example.com.zone:4: bad IPv4 address \"1.2.3\""
        );
        assert!(err("$TTL 1\na A 256.1.1.1").ends_with("bad IPv4 address \"256.1.1.1\""));
        assert!(err("$TTL 1\na A 01.1.1.1").ends_with("bad IPv4 address \"01.1.1.1\""));
        assert!(err("$TTL 1\na AAAA 2001:db8::1::2")
            .ends_with(":2: bad IPv6 address \"2001:db8::1::2\""));
        assert!(err("$TTL 1\na A").ends_with(":2: missing A IPv4 address"));
        assert!(err("$TTL 1\na A 192.0.2.1 192.0.2.2")
            .ends_with(":2: unexpected \"192.0.2.2\" after A RDATA"));
    }

    #[test]
    fn name_types_keep_case() {
        let want = b"\x03Ns1\x07Example\x03COM\x00";
        for ty in ["NS", "CNAME", "PTR", "DNAME", "ns"] {
            assert_eq!(rdata(&format!("a {ty} Ns1.Example.COM.")), want, "{ty}");
        }
        assert_eq!(one("a cname b").rtype, rtype::CNAME);
        assert_eq!(rdata("a NS ns1"), b"\x03ns1\x07example\x03com\x00");
        assert_eq!(rdata("a NS @"), b"\x07example\x03com\x00");
        assert_eq!(rdata("a NS ."), b"\x00");
        assert!(err("$TTL 1\na NS a..b").ends_with(":2: bad NS target name \"a..b\": empty label"));
    }

    #[test]
    fn mx_srv_naptr() {
        assert_eq!(
            rdata("a MX 10 mail"),
            b"\x00\x0a\x04mail\x07example\x03com\x00"
        );
        assert!(err("$TTL 1\na MX 65536 mail")
            .ends_with(":2: bad MX preference \"65536\" (expected an integer 0-65535)"));
        assert!(err("$TTL 1\na MX -1 mail").contains("bad MX preference \"-1\""));
        assert!(err("$TTL 1\na MX +1 mail").contains("bad MX preference \"+1\""));
        assert!(err("$TTL 1\na MX 10").ends_with(":2: missing MX exchange"));

        assert_eq!(
            rdata("_sip._tcp SRV 10 60 5060 sip.example.net."),
            b"\x00\x0a\x00\x3c\x13\xc4\x03sip\x07example\x03net\x00"
        );
        assert!(err("$TTL 1\na SRV 1 2 3").ends_with(":2: missing SRV target"));
        assert!(err("$TTL 1\na SRV 1 2 99999 t").contains("bad SRV port \"99999\""));

        // RFC 3403 §6.2 example, regexp escapes undone.
        let r = rdata(r#"a NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" ."#);
        let mut want = b"\x00\x64\x00\x0a\x01u\x07E2U+sip".to_vec();
        want.push(27);
        want.extend_from_slice(b"!^.*$!sip:info@example.com!");
        want.push(0);
        assert_eq!(r, want);
        assert_eq!(
            rdata(r#"a NAPTR 1 2 "" "" "" _sip._udp"#),
            b"\x00\x01\x00\x02\x00\x00\x00\x04_sip\x04_udp\x07example\x03com\x00"
        );
        assert!(err("$TTL 1\na NAPTR 1 2 \"s-\" \"\" \"\" .")
            .ends_with(":2: NAPTR flags must be letters and digits"));
        assert!(
            err("$TTL 1\na NAPTR 1 2 \"s\" \"\" \"\"").ends_with(":2: missing NAPTR replacement")
        );
    }

    #[test]
    fn txt_and_hinfo() {
        assert_eq!(rdata(r#"a TXT "hello world""#), b"\x0bhello world");
        assert_eq!(rdata(r#"a TXT "a" b "" "c d""#), b"\x01a\x01b\x00\x03c d");
        assert_eq!(
            rdata(r#"a TXT "say \"hi\"; \\ \065\010""#),
            b"\x0esay \"hi\"; \\ A\n"
        );
        assert_eq!(
            rdata(r"a TXT semi\;colon\ and\ space"),
            b"\x14semi;colon and space"
        );
        assert_eq!(
            rdata("a TXT \"v=spf1 -all\" ; comment \"x\""),
            b"\x0bv=spf1 -all"
        );
        assert_eq!(rdata("a TXT ( \"one\"\n  \"two\" )"), b"\x03one\x03two");
        assert_eq!(rdata("a TXT caf\u{e9}"), b"\x05caf\xc3\xa9");
        let max = "x".repeat(255);
        assert_eq!(rdata(&format!("a TXT {max}")).len(), 256);
        assert!(err(&format!("$TTL 1\na TXT \"{max}y\"")).contains(":2: bad TXT string \"xxx"));
        assert!(err(&format!("$TTL 1\na TXT \"{max}y\"")).ends_with("longer than 255 bytes"));
        assert!(err("$TTL 1\na TXT \"\\256\"").contains("bad escape \\256 (above 255)"));
        assert!(err("$TTL 1\na TXT \"\\12\"").contains("bad escape"));
        assert!(err("$TTL 1\na TXT").ends_with(":2: missing TXT string"));
        // Many strings that together pass 65535 bytes.
        let big = format!("a TXT{}", format!(" {max}").repeat(300));
        assert!(err(&format!("$TTL 1\n{big}")).ends_with(":2: TXT RDATA longer than 65535 bytes"));

        assert_eq!(
            rdata(r#"a HINFO "INTEL-386" Unix"#),
            b"\x09INTEL-386\x04Unix"
        );
        assert!(err("$TTL 1\na HINFO x").ends_with(":2: missing HINFO OS"));
    }

    #[test]
    fn caa() {
        assert_eq!(
            rdata(r#"a CAA 0 issue "letsencrypt.org""#),
            b"\x00\x05issueletsencrypt.org"
        );
        assert_eq!(
            rdata(r#"a CAA 128 iodef "mailto:security@example.com""#),
            b"\x80\x05iodefmailto:security@example.com"
        );
        assert_eq!(
            rdata("a CAA 0 issue letsencrypt.org"),
            b"\x00\x05issueletsencrypt.org"
        );
        assert_eq!(rdata(r#"a CAA 0 issue """#), b"\x00\x05issue");
        let long = "v".repeat(300);
        assert_eq!(rdata(&format!("a CAA 0 tbs \"{long}\"")).len(), 2 + 3 + 300);
        assert!(err("$TTL 1\na CAA 0 is-sue x")
            .ends_with(":2: bad CAA tag \"is-sue\": must be letters and digits"));
        assert!(err("$TTL 1\na CAA 0 \"\" x")
            .ends_with(":2: bad CAA tag \"\": must be 1 to 255 characters"));
        assert!(err("$TTL 1\na CAA 256 issue x").contains("bad CAA flags \"256\""));
        assert!(err("$TTL 1\na CAA 0 issue").ends_with(":2: missing CAA value"));
    }

    #[test]
    fn generic_rdata() {
        let r = one("a TYPE65280 \\# 4 0A000001");
        assert_eq!((r.rtype, &*r.rdata), (65280, &[10, 0, 0, 1][..]));
        assert_eq!(rdata("a TYPE1 \\# 4 c0 00 02 01"), rdata("a A 192.0.2.1"));
        assert_eq!(rdata("a A \\# 4 c0000 201"), [192, 0, 2, 1]);
        assert_eq!(rdata("a TYPE1 192.0.2.1"), [192, 0, 2, 1]);
        assert_eq!(rdata("a TYPE999 \\# 0"), b"");
        assert_eq!(rdata("a TYPE999 \\# ( 2\n ABcd )"), [0xab, 0xcd]);
        assert_eq!(rdata("a NS \\# 3 01 61 00"), b"\x01a\x00");
        assert_eq!(rdata("a TXT \"\\#\""), b"\x01#");
        assert!(err("$TTL 1\na TYPE999 \\# 3 0102")
            .ends_with(":2: \\# length 3 does not match 2 bytes of hex data"));
        assert!(err("$TTL 1\na TYPE999 \\# 1 012")
            .ends_with(":2: odd number of hex digits in \\# data"));
        assert!(err("$TTL 1\na TYPE999 \\# 1 0g").ends_with(":2: bad hex data \"0g\""));
        assert!(err("$TTL 1\na TYPE999 \\#").ends_with(":2: missing TYPE999 RDATA length"));
        assert!(err("$TTL 1\na TYPE999 \\# 65536").contains("bad TYPE999 RDATA length"));
        assert!(err("$TTL 1\na TYPE999 1 2").ends_with(
            ":2: type TYPE999 has no text form here; use the RFC 3597 form \\# <length> <hex>"
        ));
        assert!(err("$TTL 1\na A \\# 3 010203").ends_with(":2: bad A RDATA in \\# form: too short"));
        assert!(err("$TTL 1\na A \\# 5 0102030405")
            .ends_with(":2: bad A RDATA in \\# form: trailing bytes"));
        assert!(err("$TTL 1\na NS \\# 2 c000")
            .ends_with(":2: bad NS RDATA in \\# form: compressed or extended label in a name"));
        assert!(err("$TTL 1\na CAA \\# 3 000100").ends_with("CAA tag must be letters and digits"));
        assert!(err("$TTL 1\na TXT \\# 0").ends_with("bad TXT RDATA in \\# form: too short"));
        for t in ["TYPE0", "TYPE41", "TYPE252", "TYPE255"] {
            assert!(
                err(&format!("$TTL 1\na {t} \\# 0")).ends_with("cannot appear in a zone file"),
                "{t}"
            );
        }
    }

    #[test]
    fn unknown_types_and_syntax_errors() {
        assert_eq!(
            err("$TTL 1\na FOO bar"),
            "zones/example.com.zone:2: unknown record type \"FOO\""
        );
        assert!(err("$TTL 1\na \"A\" 192.0.2.1").ends_with("unknown record type \"A\""));
        assert!(err("$TTL 1\na 60 IN").ends_with(":2: missing record type"));
        assert_eq!(
            err("$TTL 1\na TXT \"abc\nb A 192.0.2.1"),
            "zones/example.com.zone:2: unterminated quoted string"
        );
        assert_eq!(
            err("$TTL 1\na A (\n192.0.2.1\n\nb A 192.0.2.2\n"),
            "zones/example.com.zone:2: \"(\" without a matching \")\""
        );
        assert_eq!(
            err("$TTL 1\n\na A 192.0.2.1 )"),
            "zones/example.com.zone:3: \")\" without a matching \"(\""
        );
        assert!(err("$TTL 1\na TXT abc\\").ends_with(":2: backslash at end of line"));
        // An error inside parentheses names the line of the bad field.
        assert_eq!(
            err("$TTL 1\n@ SOA ns1 host (\n 1\n 2\n bad\n 4 5 )"),
            "zones/example.com.zone:5: bad SOA retry \"bad\""
        );
        let long = "a".repeat(100);
        assert!(
            err(&format!("$TTL 1\na FOO{long}")).ends_with(&format!("\"FOO{}...\"", &long[..61]))
        );
    }

    #[test]
    fn comments_blank_lines_crlf() {
        let recs = parse("; header\r\n\r\n$TTL 60 ; default\r\na A 192.0.2.1 ; x\r\n   ; indented comment\r\n\tA 192.0.2.2\r\n").unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].owner, n("a.example.com."));
        assert_eq!(recs[1].origin.line, 6);
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\u{feff}$TTL 1\n").unwrap().is_empty());
    }

    /// A fresh, empty folder under the system temp dir.
    fn temp_dir(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "steerdns-parse-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn include() {
        let dir = temp_dir("include");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(
            dir.join("main.zone"),
            "$TTL 60\n@ NS ns1\n$INCLUDE sub/hosts.zone hosts\n$INCLUDE \"sub/plain.zone\"\nafter A 192.0.2.9\n",
        )
        .unwrap();
        // Relative to its own folder, not the working directory.
        std::fs::write(
            dir.join("sub/hosts.zone"),
            "www A 192.0.2.1\n$ORIGIN other.\nx A 192.0.2.2\n$INCLUDE ../leaf.zone\n",
        )
        .unwrap();
        std::fs::write(dir.join("sub/plain.zone"), "p A 192.0.2.3\n").unwrap();
        std::fs::write(dir.join("leaf.zone"), "leaf A 192.0.2.4\n").unwrap();
        let recs = parse_file(&dir.join("main.zone"), &n("example.com.")).unwrap();
        let owners: Vec<String> = recs.iter().map(|r| r.owner.to_string()).collect();
        assert_eq!(
            owners,
            [
                "example.com.",
                "www.hosts.example.com.",
                "x.other.",
                "leaf.other.",
                "p.example.com.",
                "after.example.com."
            ]
        );
        assert_eq!(&*recs[1].origin.file, dir.join("sub/hosts.zone").as_path());
        assert_eq!(recs[1].origin.line, 1);
        assert_eq!(&*recs[5].origin.file, dir.join("main.zone").as_path());

        // Errors name the included file and its line.
        std::fs::write(dir.join("bad.zone"), "$TTL 1\n\nz A 1.2.3\n").unwrap();
        let e = parse_str(
            "$INCLUDE bad.zone\n",
            &dir.join("top.zone"),
            &n("example.com."),
        )
        .unwrap_err();
        assert_eq!(e.file, dir.join("bad.zone"));
        assert_eq!(e.line, 3);
        assert_eq!(e.message, "bad IPv4 address \"1.2.3\"");

        // A missing file is reported where it is included.
        let e = parse_str(
            "\n$INCLUDE nope.zone\n",
            &dir.join("top.zone"),
            &n("example.com."),
        )
        .unwrap_err();
        assert_eq!((e.file.clone(), e.line), (dir.join("top.zone"), 2));
        assert!(e.message.starts_with("cannot read $INCLUDE file"), "{e}");

        // The including file's previous owner is not the included file's.
        std::fs::write(dir.join("blank.zone"), " A 192.0.2.1\n").unwrap();
        let e = parse_str(
            "$TTL 1\na A 192.0.2.1\n$INCLUDE blank.zone\n",
            &dir.join("t.zone"),
            &n("example.com."),
        )
        .unwrap_err();
        assert_eq!((e.file, e.line), (dir.join("blank.zone"), 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn include_loop() {
        let dir = temp_dir("loop");
        std::fs::write(
            dir.join("a.zone"),
            "$TTL 1\na A 192.0.2.1\n$INCLUDE b.zone\n",
        )
        .unwrap();
        std::fs::write(dir.join("b.zone"), "$INCLUDE a.zone\n").unwrap();
        let e = parse_file(&dir.join("a.zone"), &n("example.com.")).unwrap_err();
        assert!(e.message.contains("nested more than 16 deep"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_errors() {
        let dir = temp_dir("files");
        let missing = parse_file(&dir.join("none.zone"), &n("example.com.")).unwrap_err();
        assert_eq!(missing.line, 0);
        assert!(missing
            .to_string()
            .contains("none.zone:0: cannot read zone file"));
        std::fs::write(
            dir.join("latin1.zone"),
            b"$TTL 1\na TXT ok\nb TXT caf\xe9\n",
        )
        .unwrap();
        let e = parse_file(&dir.join("latin1.zone"), &n("example.com.")).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.starts_with("not valid UTF-8"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_zone_like_text(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "@", " ", "\t", "\n", "(", ")", ";", "\"", "\\", "\\#", "0", "65535", "1h", "$TTL",
                    "$ORIGIN", "$INCLUDE", "IN", "CH", "A", "AAAA", "SOA", "TXT", "CAA", "NAPTR", "SRV",
                    "MX", "TYPE65280", "TYPE2", "1.2.3.4", "::1", ".", "..", "ab", "\\255", "\\999", "é",
                ]),
                0..40,
            )
        ) {
            let _ = parse(&parts.concat());
            let _ = parse(&parts.join(" "));
        }
    }

    #[test]
    fn zone_size_is_bounded() {
        let origin = Name::from_text("example.", None).unwrap();
        let mut sink = |_| Ok(());
        let mut parser = Parser::new(&mut sink, 2);
        parser.default_ttl = Some(60);
        let text = "a A 192.0.2.1\nb A 192.0.2.2\nc A 192.0.2.3\n";
        let Err(e) = parser.parse(text, Path::new("big.zone"), &origin, 0) else {
            panic!("a third record must be refused");
        };
        let e = e.to_string();
        assert!(
            e.starts_with("big.zone:3:") && e.contains("too large"),
            "{e}"
        );

        let dir = std::env::temp_dir().join(format!("steerdns-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("z");
        std::fs::write(&file, "0123456789").unwrap();
        assert!(read_bounded(&file, 10).is_ok());
        assert!(read_bounded(&file, 9)
            .unwrap_err()
            .contains("more than the limit of 9"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
