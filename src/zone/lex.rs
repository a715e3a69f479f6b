//! The master-file lexer (RFC 1035 §5.1): text into entries, one per
//! logical line, each a list of tokens.
//!
//! Parentheses join physical lines, `;` starts a comment, `"..."` quotes,
//! and a line that starts with whitespace has no owner. Escapes stay in the
//! token text; the parser and the RDATA encoders, which both read tokens,
//! decide what they mean. A leaf: it knows nothing of directives or types.

/// An error at one line of one file; the parser adds the file.
pub(super) struct Fail {
    pub(super) line: u32,
    pub(super) message: String,
}

impl Fail {
    pub(super) fn new(line: u32, message: impl Into<String>) -> Fail {
        Fail {
            line,
            message: message.into(),
        }
    }
}

/// `text` in double quotes for an error message, control characters
/// replaced and long text cut short so a fuzzed file cannot flood the log.
pub(super) fn quote(text: &str) -> String {
    const MAX: usize = 64;
    let mut s: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX).is_some() {
        s.push_str("...");
    }
    format!("\"{s}\"")
}

/// One token: raw text with escapes still in and quotes stripped.
pub(super) struct Token<'a> {
    pub(super) text: &'a str,
    /// Written in double quotes: never a TTL, class, type, directive or `\#`.
    pub(super) quoted: bool,
    pub(super) line: u32,
}

/// One logical line (RFC 1035 §5.1): a directive or a record.
pub(super) struct Entry<'a> {
    /// Line the entry starts on.
    pub(super) line: u32,
    /// The line began with a blank: the owner is the previous one.
    pub(super) blank_owner: bool,
    /// The entry's tokens, in order; never empty.
    pub(super) tokens: Vec<Token<'a>>,
}

/// The entries of master-file text (RFC 1035 §5.1), read one at a time.
/// Blank and comment-only lines yield nothing.
pub(super) struct Entries<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    at: usize,
    /// Line of the next character.
    line: u32,
    /// A syntax error ends the stream.
    failed: bool,
}

impl<'a> Entries<'a> {
    /// The entries of `text`, from its first line.
    pub(super) fn new(text: &'a str) -> Entries<'a> {
        Entries {
            text,
            at: 0,
            line: 1,
            failed: false,
        }
    }

    /// The next entry. Each starts at the beginning of a line outside
    /// parentheses; `at` is always at such a point between calls.
    fn read(&mut self) -> Result<Option<Entry<'a>>, Fail> {
        let text = self.text;
        let b = text.as_bytes();
        let mut depth: usize = 0;
        let mut open_line = 0;
        let mut i = self.at;
        let mut cur: Option<Entry<'a>> = None;
        while let Some(&c) = b.get(i) {
            let entry = cur.get_or_insert_with(|| Entry {
                line: self.line,
                blank_owner: c == b' ' || c == b'\t',
                tokens: Vec::new(),
            });
            match c {
                b'\n' => {
                    self.line = self.line.saturating_add(1);
                    i += 1;
                    if depth == 0 {
                        if !entry.tokens.is_empty() {
                            break;
                        }
                        cur = None;
                    }
                }
                b' ' | b'\t' | b'\r' => i += 1,
                b';' => {
                    // A comment runs to the end of the line; the newline stays
                    // so that it still ends the entry.
                    i = b[i..]
                        .iter()
                        .position(|&d| d == b'\n')
                        .map_or(b.len(), |p| i + p);
                }
                b'(' => {
                    if depth == 0 {
                        open_line = self.line;
                    }
                    depth += 1;
                    i += 1;
                }
                b')' => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| Fail::new(self.line, "\")\" without a matching \"(\""))?;
                    i += 1;
                }
                b'"' => {
                    let line = self.line;
                    let start = i + 1;
                    let mut j = start;
                    loop {
                        match b.get(j) {
                            None | Some(b'\n') => {
                                return Err(Fail::new(line, "unterminated quoted string"))
                            }
                            Some(b'"') => break,
                            Some(b'\\') if b.get(j + 1) == Some(&b'\n') => {
                                return Err(Fail::new(line, "unterminated quoted string"))
                            }
                            Some(b'\\') => j += 2,
                            Some(_) => j += 1,
                        }
                    }
                    entry.tokens.push(token(text, start, j, true, line)?);
                    i = j + 1;
                }
                _ => {
                    let start = i;
                    let mut j = i;
                    while let Some(&d) = b.get(j) {
                        match d {
                            b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"' => break,
                            b'\\' => match b.get(j + 1) {
                                None | Some(b'\n') => {
                                    return Err(Fail::new(self.line, "backslash at end of line"))
                                }
                                Some(_) => j += 2,
                            },
                            _ => j += 1,
                        }
                    }
                    entry.tokens.push(token(text, start, j, false, self.line)?);
                    i = j;
                }
            }
        }
        self.at = i;
        if depth > 0 {
            return Err(Fail::new(open_line, "\"(\" without a matching \")\""));
        }
        Ok(cur.filter(|e| !e.tokens.is_empty()))
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, Fail>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let entry = self.read().transpose();
        self.failed = matches!(entry, Some(Err(_)));
        entry
    }
}

/// The token `text[start..end]`. The bounds always fall on ASCII bytes or
/// the end of text, but `get` keeps a mistake from becoming a panic.
fn token(text: &str, start: usize, end: usize, quoted: bool, line: u32) -> Result<Token<'_>, Fail> {
    let text = text
        .get(start..end)
        .ok_or_else(|| Fail::new(line, "malformed escape"))?;
    Ok(Token { text, quoted, line })
}
