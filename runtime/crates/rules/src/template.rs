//! Templates, expressions and paths (docs/rules.md, "Paths" and "Values and templates"),
//! parsed once when the rules compile so that evaluation only walks a tree. Errors are plain
//! messages with a position (the character, counted from 1); the caller adds the place.

use serde_json::Value;

/// A template string.
#[derive(Debug)]
pub(crate) enum Template {
    /// Nothing but one expression: gives its value as it is (a number stays a number, a
    /// missing value stays missing).
    Single(Expr),
    /// Text with expressions (or text alone): always text; a missing value reads as empty.
    Mixed(Vec<Part>),
}

#[derive(Debug)]
pub(crate) enum Part {
    Text(String),
    Expr(Expr),
}

/// `a ?? b | lower ?? 'x'`: the first alternative that is present and not empty.
#[derive(Debug)]
pub(crate) struct Expr {
    pub alternatives: Vec<Alternative>,
}

/// One operand and its filters: filters bind tighter than `??`.
#[derive(Debug)]
pub(crate) struct Alternative {
    pub operand: Operand,
    pub filters: Vec<Filter>,
}

#[derive(Debug)]
pub(crate) enum Operand {
    Path(Path),
    /// Always a JSON string, kept as a value so that evaluation can lend it out.
    Literal(Value),
}

#[derive(Debug)]
pub(crate) enum Filter {
    Host,
    Lower,
    Upper,
    Trim,
    /// An index into the compiled maps.
    Map(usize),
    Truncate(usize),
    Prefix(String),
    Suffix(String),
    Default(String),
    Number,
    Text,
    Json,
    Time,
    Required,
}

/// A path as written (for messages) and what it reads.
#[derive(Debug)]
pub(crate) struct Path {
    pub text: String,
    pub kind: PathKind,
}

#[derive(Debug)]
pub(crate) enum PathKind {
    /// Relative to the current item: `labels.alertname`, `/labels/a~1b`, `.` (the item).
    Item(Vec<Seg>),
    /// From the event, whatever the item: `$.body.status`, `$/body/status`, `$`.
    Root(Vec<Seg>),
    /// A variable, then keys within its value: `@status`, `@labels.team`.
    Var(Var, Vec<Seg>),
    /// `oid:` (the varbind's value) or `oid_index:` (the rest of its OID).
    Oid { arcs: Vec<Arc>, index: bool },
}

/// One key on a path; `index` when it may also address an array element.
#[derive(Debug)]
pub(crate) struct Seg {
    pub key: String,
    pub index: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Var {
    /// A `let` of the rule, by slot.
    Let(usize),
    Index,
    Key,
    Pointer,
}

#[derive(Debug)]
pub(crate) enum Arc {
    Number(String),
    Var(Var),
}

/// What a template may refer to by name; the compiler knows the rule's `let`s and the maps.
pub(crate) trait Names {
    fn var(&mut self, name: &str) -> Result<Var, String>;
    fn map(&self, name: &str) -> Result<usize, String>;
}

pub(crate) fn parse_template(src: &str, names: &mut dyn Names) -> Result<Template, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let doubled = chars.get(i + 1) == Some(&c);
        match c {
            '{' | '}' if doubled => {
                text.push(c);
                i += 2;
            }
            '}' => {
                return Err(format!(
                    "unmatched `}}` at character {} (write `}}}}` for a brace)",
                    i + 1
                ));
            }
            '{' => {
                let end = expression_end(&chars, i)?;
                let expr = parse_expr(&chars[i + 1..end], i + 1, names)?;
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Expr(expr));
                i = end + 1;
            }
            _ => {
                text.push(c);
                i += 1;
            }
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    if let [Part::Expr(_)] = parts.as_slice()
        && let Some(Part::Expr(expr)) = parts.pop()
    {
        return Ok(Template::Single(expr));
    }
    Ok(Template::Mixed(parts))
}

/// The index of the `}` that closes the expression opened at `open`; braces inside a
/// `'literal'` do not count.
fn expression_end(chars: &[char], open: usize) -> Result<usize, String> {
    let mut in_literal = None;
    let mut i = open + 1;
    while let Some(&c) = chars.get(i) {
        match (c, in_literal) {
            ('\\', Some(_)) => i += 1,
            ('\'', Some(_)) => in_literal = None,
            ('\'', None) => in_literal = Some(i),
            ('}', None) => return Ok(i),
            ('{', None) => {
                return Err(format!(
                    "`{{` inside the expression opened at character {} (write `{{{{` for a brace)",
                    open + 1
                ));
            }
            _ => {}
        }
        i += 1;
    }
    Err(match in_literal {
        Some(start) => format!("unterminated 'literal' at character {}", start + 1),
        None => format!("unclosed `{{` at character {}", open + 1),
    })
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Literal(String),
    Alt,
    Pipe,
}

/// Splits an expression into tokens, each with its position in the template (from 1).
fn tokens(chars: &[char], offset: usize) -> Result<Vec<(Tok, usize)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let pos = offset + i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                out.push((Tok::Pipe, pos));
                i += 1;
            }
            '?' if chars.get(i + 1) == Some(&'?') => {
                out.push((Tok::Alt, pos));
                i += 2;
            }
            '?' => {
                return Err(format!(
                    "single `?` at character {pos} (alternatives are separated by `??`)"
                ));
            }
            '\'' => {
                let mut literal = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        Some('\\') if matches!(chars.get(i + 1), Some('\'' | '\\')) => {
                            literal.extend(chars.get(i + 1));
                            i += 2;
                        }
                        Some('\'') => break,
                        Some(&c) => {
                            literal.push(c);
                            i += 1;
                        }
                        None => return Err(format!("unterminated 'literal' at character {pos}")),
                    }
                }
                out.push((Tok::Literal(literal), pos));
                i += 1;
            }
            _ => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|&c| !c.is_whitespace() && !matches!(c, '|' | '?' | '\''))
                {
                    i += 1;
                }
                out.push((Tok::Word(chars[start..i].iter().collect()), pos));
            }
        }
    }
    Ok(out)
}

fn parse_expr(chars: &[char], offset: usize, names: &mut dyn Names) -> Result<Expr, String> {
    let mut toks = tokens(chars, offset)?.into_iter().peekable();
    let mut alternatives = Vec::new();
    loop {
        let operand = match toks.next() {
            Some((Tok::Literal(s), _)) => Operand::Literal(Value::String(s)),
            Some((Tok::Word(w), pos)) => {
                Operand::Path(parse_path(&w, names).map_err(|e| format!("{e} at character {pos}"))?)
            }
            Some((_, pos)) => {
                return Err(format!("expected a path or a 'literal' at character {pos}"));
            }
            None => {
                return Err(format!(
                    "expected a path or a 'literal' at character {}",
                    offset + chars.len() + 1
                ));
            }
        };
        let mut filters = Vec::new();
        while toks.next_if(|(t, _)| *t == Tok::Pipe).is_some() {
            let (word, pos) = match toks.next() {
                Some((Tok::Word(w), pos)) => (w, pos),
                Some((_, pos)) => return Err(format!("expected a filter at character {pos}")),
                None => {
                    return Err(format!(
                        "expected a filter at character {}",
                        offset + chars.len() + 1
                    ));
                }
            };
            let (name, arg) = match word.split_once(':') {
                Some((name, "")) => match toks.next_if(|(t, _)| matches!(t, Tok::Literal(_))) {
                    Some((Tok::Literal(s), _)) => (name, Some(Arg::Literal(s))),
                    _ => {
                        return Err(format!(
                            "filter `{name}:` needs an argument at character {pos}"
                        ));
                    }
                },
                Some((name, bare)) => (name, Some(Arg::Bare(bare.to_owned()))),
                None => (word.as_str(), None),
            };
            filters.push(filter(name, arg, names).map_err(|e| format!("{e} at character {pos}"))?);
        }
        alternatives.push(Alternative { operand, filters });
        match toks.next() {
            None => return Ok(Expr { alternatives }),
            Some((Tok::Alt, _)) => {}
            Some((_, pos)) => return Err(format!("expected `??` or `|` at character {pos}")),
        }
    }
}

enum Arg {
    Bare(String),
    Literal(String),
}

fn filter(name: &str, arg: Option<Arg>, names: &mut dyn Names) -> Result<Filter, String> {
    let plain = |f: Filter| match arg {
        None => Ok(f),
        Some(_) => Err(format!("filter `{name}` takes no argument")),
    };
    let quoted = |arg: Option<Arg>, make: fn(String) -> Filter| match arg {
        Some(Arg::Literal(s)) => Ok(make(s)),
        _ => Err(format!(
            "filter `{name}` takes a quoted 'text': `{name}:'...'`"
        )),
    };
    match name {
        "host" => plain(Filter::Host),
        "lower" => plain(Filter::Lower),
        "upper" => plain(Filter::Upper),
        "trim" => plain(Filter::Trim),
        "number" => plain(Filter::Number),
        "text" => plain(Filter::Text),
        "json" => plain(Filter::Json),
        "time" => plain(Filter::Time),
        "required" => plain(Filter::Required),
        "prefix" => quoted(arg, Filter::Prefix),
        "suffix" => quoted(arg, Filter::Suffix),
        "default" => quoted(arg, Filter::Default),
        "map" => match arg {
            Some(Arg::Bare(map)) => names.map(&map).map(Filter::Map),
            _ => Err("filter `map` takes a map's name: `map:NAME`".to_owned()),
        },
        "truncate" => match arg {
            Some(Arg::Bare(n)) => n
                .parse()
                .map(Filter::Truncate)
                .map_err(|_| format!("filter `truncate` takes a number of characters, not `{n}`")),
            _ => Err("filter `truncate` takes a number of characters: `truncate:80`".to_owned()),
        },
        other => Err(format!(
            "unknown filter `{other}` (filters: host, lower, upper, trim, map:NAME, truncate:N, \
             prefix:'x', suffix:'x', default:'x', number, text, json, time, required)"
        )),
    }
}

/// Parses a path as written in a template, a condition or `for_each`.
pub(crate) fn parse_path(text: &str, names: &mut dyn Names) -> Result<Path, String> {
    let kind = if let Some(oid) = text.strip_prefix("oid:") {
        oid_path(oid, false, names)?
    } else if let Some(oid) = text.strip_prefix("oid_index:") {
        oid_path(oid, true, names)?
    } else if let Some(rest) = text.strip_prefix('$') {
        PathKind::Root(segments(rest, text)?)
    } else if let Some(rest) = text.strip_prefix('@') {
        let end = rest.find(['.', '/']).unwrap_or(rest.len());
        let var = names.var(&rest[..end])?;
        PathKind::Var(var, segments(&rest[end..], text)?)
    } else if text == "." || text.starts_with('/') {
        PathKind::Item(segments(text, text)?)
    } else {
        PathKind::Item(dotted(text, text)?)
    };
    Ok(Path {
        text: text.to_owned(),
        kind,
    })
}

/// What follows a root or a variable: nothing, `.a.b` or a JSON pointer `/a/b`.
fn segments(rest: &str, whole: &str) -> Result<Vec<Seg>, String> {
    if rest.is_empty() || rest == "." {
        Ok(Vec::new())
    } else if let Some(dots) = rest.strip_prefix('.') {
        dotted(dots, whole)
    } else if rest.starts_with('/') {
        pointer(rest, whole)
    } else {
        Err(format!(
            "path `{whole}`: expected `.` or `/` after the start"
        ))
    }
}

fn dotted(path: &str, whole: &str) -> Result<Vec<Seg>, String> {
    path.split('.')
        .map(|key| {
            if key.is_empty() {
                Err(format!("path `{whole}` has an empty key"))
            } else {
                Ok(seg(key.to_owned()))
            }
        })
        .collect()
}

/// A JSON pointer (RFC 6901): `/a/b~1c` is the keys `a` and `b/c`.
fn pointer(path: &str, whole: &str) -> Result<Vec<Seg>, String> {
    path.split('/')
        .skip(1)
        .map(|token| {
            let mut key = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                match (c, c == '~') {
                    (_, false) => key.push(c),
                    (_, true) => match chars.next() {
                        Some('0') => key.push('~'),
                        Some('1') => key.push('/'),
                        _ => {
                            return Err(format!(
                                "path `{whole}`: `~` in a JSON pointer must be `~0` or `~1`"
                            ));
                        }
                    },
                }
            }
            Ok(seg(key))
        })
        .collect()
}

fn seg(key: String) -> Seg {
    let index = key.parse().ok();
    Seg { key, index }
}

fn oid_path(oid: &str, index: bool, names: &mut dyn Names) -> Result<PathKind, String> {
    let oid = oid.strip_prefix('.').unwrap_or(oid);
    let arcs = oid
        .split('.')
        .map(|arc| {
            if let Some(var) = arc.strip_prefix('@') {
                names.var(var).map(Arc::Var)
            } else if !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()) {
                Ok(Arc::Number(arc.to_owned()))
            } else {
                Err(format!(
                    "OID `{oid}`: an arc is a number or a variable (`@ifIndex`), not `{arc}`"
                ))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(PathKind::Oid { arcs, index })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Known;
    impl Names for Known {
        fn var(&mut self, name: &str) -> Result<Var, String> {
            match name {
                "x" => Ok(Var::Let(0)),
                "index" => Ok(Var::Index),
                _ => Err(format!("unknown variable `@{name}`")),
            }
        }
        fn map(&self, name: &str) -> Result<usize, String> {
            (name == "severity")
                .then_some(0)
                .ok_or(format!("unknown map `{name}`"))
        }
    }

    fn parse(src: &str) -> Result<Template, String> {
        parse_template(src, &mut Known)
    }

    #[test]
    fn single_expression_and_mixed_text() {
        assert!(matches!(parse("{a.b}"), Ok(Template::Single(_))));
        assert!(matches!(parse(" {a.b}"), Ok(Template::Mixed(p)) if p.len() == 2));
        assert!(matches!(parse("plain"), Ok(Template::Mixed(p)) if p.len() == 1));
        assert!(matches!(parse(""), Ok(Template::Mixed(p)) if p.is_empty()));
        let Ok(Template::Mixed(parts)) = parse("{{x}} {a}}}") else {
            panic!("mixed")
        };
        assert!(matches!(&parts[0], Part::Text(t) if t == "{x} "));
        assert!(matches!(&parts[2], Part::Text(t) if t == "}"));
    }

    #[test]
    fn expressions_with_literals_alternatives_and_filters() {
        let Ok(Template::Single(e)) =
            parse(r"{a ?? b | lower | prefix:' (' ?? 'it\'s {x}' | map:severity}")
        else {
            panic!("single")
        };
        assert_eq!(e.alternatives.len(), 3);
        assert_eq!(e.alternatives[1].filters.len(), 2);
        assert!(matches!(&e.alternatives[1].filters[1], Filter::Prefix(p) if p == " ("));
        assert!(
            matches!(&e.alternatives[2].operand, Operand::Literal(Value::String(l)) if l == "it's {x}")
        );
        assert!(matches!(e.alternatives[2].filters[0], Filter::Map(0)));
    }

    #[test]
    fn paths() {
        let kind = |p: &str| parse_path(p, &mut Known).map(|p| p.kind);
        assert!(matches!(kind("alerts.0.status"), Ok(PathKind::Item(s)) if s[1].index == Some(0)));
        assert!(matches!(kind("/labels/app.kubernetes.io~1name"),
            Ok(PathKind::Item(s)) if s.len() == 2 && s[1].key == "app.kubernetes.io/name"));
        assert!(matches!(kind("."), Ok(PathKind::Item(s)) if s.is_empty()));
        assert!(matches!(kind("$.body.status"), Ok(PathKind::Root(s)) if s.len() == 2));
        assert!(matches!(kind("$/body"), Ok(PathKind::Root(s)) if s.len() == 1));
        assert!(matches!(kind("@x.a"), Ok(PathKind::Var(Var::Let(0), s)) if s.len() == 1));
        assert!(matches!(kind("oid:.1.3.6.@x"),
            Ok(PathKind::Oid { arcs, index: false }) if matches!(arcs[3], Arc::Var(Var::Let(0)))));
        assert!(matches!(
            kind("oid_index:1.3"),
            Ok(PathKind::Oid { index: true, .. })
        ));
        for bad in ["a..b", "a.", "@nope", "oid:1.x.3", "/a~2", "$x", "oid:"] {
            assert!(kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn syntax_errors_say_where() {
        let cases = [
            ("abc {a", "unclosed `{` at character 5"),
            ("a } b", "unmatched `}` at character 3"),
            ("{a ? b}", "single `?` at character 4"),
            ("{'abc}", "unterminated 'literal' at character 2"),
            ("{a | shout}", "unknown filter `shout`"),
            ("{a | map:nope}", "unknown map `nope` at character 6"),
            ("{a | truncate:x}", "`truncate` takes a number"),
            ("{a | prefix:x}", "takes a quoted 'text'"),
            ("{a | lower:'x'}", "`lower` takes no argument"),
            ("{}", "expected a path or a 'literal' at character 2"),
            ("{a ??}", "expected a path or a 'literal' at character 6"),
            ("{a b}", "expected `??` or `|` at character 4"),
            ("{a | }", "expected a filter at character 6"),
            ("{a {b}}", "`{` inside the expression opened at character 1"),
        ];
        for (src, want) in cases {
            match parse(src) {
                Err(e) => assert!(e.contains(want), "{src}: {e}"),
                Ok(t) => panic!("{src}: parsed as {t:?}"),
            }
        }
    }
}
