//! URL helpers shared by the SQL and server archives: parsing with the
//! `url` crate, query parameters checked against a list of known names,
//! and locations with the password masked.

use std::borrow::Cow;

use url::Url;

use crate::{Error, Result};

/// What a masked password shows as.
pub(crate) const MASK: &str = "***";

/// `target` (never shown with its password) parsed as a URL.
pub(crate) fn parse_url(target: &str) -> Result<Url> {
    Url::parse(target).map_err(|e| bad(target, format_args!("not a valid URL: {e}")))
}

/// A [`Error::Config`] about the target `raw`, its password masked
/// wherever it stands, in the reason too (which may quote the target). A
/// URL-like target in which no `user:password@` is found may have lost
/// its `@` (a password would then read as a host or a port): all of it
/// after `://` is hidden if it holds a `:`.
pub(crate) fn bad(raw: &str, reason: impl std::fmt::Display) -> Error {
    let message = format!("archive target `{}`: {reason}", mask_password(raw));
    Error::config(mask_raw(&message).into_owned())
}

/// An archive target (a path or a URL) as messages may show it: the
/// password of `user:password@` masked wherever it stands, and a URL-like
/// target in which none is found (its `@` may be lost, a password then
/// reading as a host or a port) hidden after `://` if a `:` is there.
///
/// ```
/// use klepto::archive::mask_password;
/// assert_eq!(mask_password("postgres://me:s3cret@db/x"), "postgres://me:***@db/x");
/// assert_eq!(mask_password("cache.db"), "cache.db");
/// ```
pub fn mask_password(raw: &str) -> Cow<'_, str> {
    match mask_raw(raw) {
        Cow::Borrowed(_) if raw.contains("://") => hide_authority(raw),
        masked => masked,
    }
}

/// `raw` with everything after `://` masked if a `:` stands there (with
/// its `@` lost, or mangled into the path or query, a `user:password` may
/// be anywhere after it): a URL without credentials keeps its host and
/// path only when it has no port either.
fn hide_authority(raw: &str) -> Cow<'_, str> {
    match raw.find("://").map(|i| i + 3) {
        Some(start) if raw[start..].contains(':') => Cow::Owned(format!("{}{MASK}", &raw[..start])),
        _ => Cow::Borrowed(raw),
    }
}

/// `text` with every `:secret@` masked, wherever it stands: the password
/// of a URL, and of a mangled one that puts `user:password@` in its path
/// or query. The secret runs from the first `:` after the last `://` (or
/// the previous `@`) to the `@`, whatever it holds (`pa:ss`, `pa/ss?`); a
/// `:` followed by `/` starts none (`sqlite:///a@b.db` is a path, and
/// `postgres:/u:pw@h` hides `pw`).
pub(crate) fn mask_raw(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut done = 0;
    for (at, _) in text.match_indices('@') {
        if at < done {
            continue;
        }
        let before = &text[done..at];
        let authority = before.rfind("://").map_or(0, |i| i + 3);
        // The first `:` not followed by `/` (`scheme:/` is no secret).
        let Some(colon) = before[authority..]
            .match_indices(':')
            .map(|(i, _)| authority + i)
            .find(|&i| !before[i + 1..].starts_with('/'))
        else {
            continue;
        };
        let secret = &before[colon + 1..];
        if secret.is_empty() || secret == MASK {
            continue;
        }
        out.push_str(&text[done..done + colon + 1]);
        out.push_str(MASK);
        done = at;
    }
    if done == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

/// The URL without its query and fragment, the password masked: what
/// locations and errors show.
pub(crate) fn masked(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    if shown.password().is_some() {
        let _ = shown.set_password(Some(MASK));
    }
    shown.to_string()
}

/// The query parameters of `url`, percent-decoded (`+` stays `+`), each
/// of `known` at most once; an unknown or repeated parameter, or a bad
/// escape, is an error naming the target.
pub(crate) fn params(url: &Url, raw: &str, known: &[&str]) -> Result<Vec<(String, String)>> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for pair in url.query().unwrap_or("").split('&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (decode(raw, name)?, decode(raw, value)?);
        if !known.contains(&name.as_str()) {
            // A name with a `:` may be a mangled `user:password`: unquoted.
            let shown = if name.contains(':') {
                format!("`{MASK}` (a name with a `:`)")
            } else {
                format!("`{name}`")
            };
            return Err(bad(
                raw,
                format_args!("unknown parameter {shown} (known: {})", known.join(", ")),
            ));
        }
        if seen.iter().any(|(n, _)| *n == name) {
            return Err(bad(raw, format_args!("parameter `{name}` given twice")));
        }
        seen.push((name, value));
    }
    Ok(seen)
}

/// A boolean parameter value.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn parse_bool(raw: &str, name: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(bad(
            raw,
            format_args!("`{name}={other}`: expected true or false"),
        )),
    }
}

/// A whole-number parameter value.
pub(crate) fn parse_u64(raw: &str, name: &str, value: &str) -> Result<u64> {
    value.parse().map_err(|_| {
        bad(
            raw,
            format_args!("`{name}={value}`: expected a whole number"),
        )
    })
}

/// A percent-decoded URL component (`+` stays `+`, as in paths); a `%`
/// not followed by two hex digits is an error.
pub(crate) fn decode(raw: &str, component: &str) -> Result<String> {
    let bytes = component.as_bytes();
    for (i, _) in component.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            return Err(bad(raw, format_args!("bad percent escape at byte {i}")));
        }
    }
    percent_encoding::percent_decode_str(component)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| bad(raw, "percent escapes do not decode as UTF-8"))
}

/// Appends `s` to `out`, percent-encoding control characters and those in
/// `special`, so that the result parses back to `s`.
pub(crate) fn encode_into(out: &mut String, s: &str, special: &str) {
    use std::fmt::Write as _;
    for c in s.chars() {
        if c.is_control() || special.contains(c) {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_parsed_or_not() {
        let url = parse_url("postgres://me:s3cret@db:5432/cache?table=t").unwrap();
        assert_eq!(masked(&url), "postgres://me:***@db:5432/cache");
        assert_eq!(
            mask_raw("postgres://me:s3cret@db/x?y"),
            "postgres://me:***@db/x?y"
        );
        assert_eq!(mask_raw("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(mask_raw("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(mask_raw("cache.db"), "cache.db");
        let err = bad("postgres://me:s3cret@db/x", "no").to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    /// Mangled URLs the mutation test in `sql/target.rs` found showing
    /// their password in messages.
    #[test]
    fn passwords_of_mangled_urls_are_masked_too() {
        let found = [
            // `://` broken by a NUL: taken for a path.
            ("res:\0//user:hunter2@127.0.0.1:5432/db", "a path"),
            // The `@` lost: the password reads as a port.
            ("postgres://user:hunter2127.0.0.1:5432/db", "no URL"),
            // The user information pushed into the query.
            (
                "postgres://?%user:hunter2@127.0.0.1:5432/db?table=t",
                "no host",
            ),
            // and quoted back in the reason.
            (
                "postgres://u?ser:hunter2%00@127.0.0.1/db",
                "unknown parameter `ser:hunter2\0@127.0.0.1/db`",
            ),
            // A `?` in the password, and a second `@` after a port.
            (
                "es://user:hunter2?@127.0.0.1:5@db?table=t&schema=s",
                "unsupported scheme `es`",
            ),
            // A `:` and a `/` in the password.
            ("postgres://user:hun:ter/2@h/db", "no"),
            // The `@` lost and a `/` in the user name.
            (
                "gres://use//r:hunter2127.0.0.1:5432/db?table=t",
                "unsupported scheme",
            ),
        ];
        for (raw, reason) in found {
            let err = bad(raw, reason).to_string();
            assert!(!err.contains("hunter2") && !err.contains("ter/2"), "{err}");
        }
        let err = parse_url("postgres://user:hunter2127.0.0.1:5432/db").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(mask_raw("a:b@c and d:e@f"), "a:***@c and d:***@f");
        assert_eq!(mask_raw("path/to/file@2.db"), "path/to/file@2.db");
    }

    #[test]
    fn parameters_are_checked() {
        let raw = "redis://h/0?ns=a%26b&ttl=5";
        let url = parse_url(raw).unwrap();
        let got = params(&url, raw, &["ns", "ttl"]).unwrap();
        assert_eq!(
            got,
            [("ns".into(), "a&b".into()), ("ttl".into(), "5".into())]
        );
        assert!(params(&url, raw, &["ns"]).is_err());
        let twice = parse_url("redis://h/0?ns=a&ns=b").unwrap();
        assert!(params(&twice, "", &["ns"]).is_err());
        assert!(parse_bool("", "d", "maybe").is_err());
        assert_eq!(parse_u64("", "ttl", "60").unwrap(), 60);
        assert!(parse_u64("", "ttl", "-1").is_err());
    }
}
