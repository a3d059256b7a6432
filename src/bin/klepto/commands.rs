//! The commands: each reads or writes raw entries through [`Raw`].

use std::io::{BufRead, BufWriter, Write};
use std::time::Instant;

use klepto::archive::envelope::Envelope;
use klepto::archive::RawEntry;
use klepto::key::describe_args;
use serde_json::json;

use crate::dynamic::{from_json, hex, to_json, unhex};
use crate::progress::{interrupted, Progress};
use crate::store::{Any, Raw};
use crate::target::{entry_times, namespaces, open};
use crate::{Command, Failure};

/// Standard output, buffered; a closed pipe (`klepto ls … | head`) ends
/// the output quietly instead of failing.
struct Out(BufWriter<std::io::StdoutLock<'static>>);

impl Out {
    fn new() -> Out {
        Out(BufWriter::new(std::io::stdout().lock()))
    }

    /// Writes a line; `false` once the reader has gone.
    fn line(&mut self, text: impl std::fmt::Display) -> Result<bool, Failure> {
        match writeln!(self.0, "{text}") {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(Failure::io(format!("standard output: {e}"))),
        }
    }

    fn finish(mut self) -> Result<(), Failure> {
        match self.0.flush() {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(Failure::io(format!("standard output: {e}")))
            }
            _ => Ok(()),
        }
    }
}

/// One entry, checked: its call (from the stored arguments), value and
/// size. Damage (checksum, another key's envelope, a value that is not
/// MessagePack, arguments that do not decode) is the error's text.
struct Checked {
    call: Option<String>,
    args: Option<Vec<u8>>,
    value: Any,
    size: usize,
}

fn check(key: &[u8], stored: &[u8], at: &str) -> Result<Checked, String> {
    let envelope = check_envelope(key, stored, at)?;
    let value = rmp_serde::from_slice(envelope.value)
        .map_err(|e| format!("the value is not MessagePack: {e}"))?;
    let call = match envelope.args {
        Some(args) => Some(describe_args(args).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(Checked {
        call,
        args: envelope.args.map(<[u8]>::to_vec),
        value,
        size: envelope.value.len(),
    })
}

/// The envelope stored under `key`, its checksum checked and its own key
/// compared with `key`.
fn check_envelope<'a>(key: &[u8], stored: &'a [u8], at: &str) -> Result<Envelope<'a>, String> {
    let envelope = Envelope::decode(stored, at).map_err(|e| e.to_string())?;
    if envelope.key.is_some_and(|own| own != key) {
        return Err("the entry holds another key's value (moved, swapped or misdirected)".into());
    }
    Ok(envelope)
}

/// `name(args)` (`f(12)`, not the tuple's `f(12,)`), or `name(?)` without
/// stored arguments.
fn call_text(ns: &str, call: Option<&str>) -> String {
    let args = call.unwrap_or("(?)");
    match args.strip_suffix(",)") {
        Some(one) => format!("{ns}{one})"),
        None => format!("{ns}{args}"),
    }
}

/// Runs a command; its exit code.
pub fn run(command: Command) -> Result<u8, Failure> {
    match command {
        Command::Ls {
            target,
            ns: None,
            json,
            ..
        } => list_namespaces(&target, json),
        Command::Ls {
            target,
            ns: Some(ns),
            limit,
            json,
        } => list(&target, &ns, limit, json),
        Command::Get {
            target,
            key,
            args,
            ns,
        } => get(&target, ns.as_deref(), key.as_deref(), args.as_deref()),
        Command::Stat { target, ns, json } => stat(&target, ns.as_deref(), json),
        Command::Verify { target, ns, json } => verify(&target, ns.as_deref(), json),
        Command::Rm { target, keys, ns } => remove(&target, ns.as_deref(), &keys),
        Command::Clear { target, ns } => {
            open(&target, ns.as_deref(), false)?.clear()?;
            Ok(0)
        }
        Command::Export { target, ns, csv } => export(&target, ns.as_deref(), csv),
        Command::Import { file, target, ns } => import(&file, &target, ns.as_deref()),
        Command::Convert {
            src,
            dst,
            ns,
            batch,
        } => convert(&src, &dst, ns.as_deref(), batch.max(1)),
        Command::ImportPython {
            path,
            dst,
            ns,
            table,
        } => crate::python::import_python(&path, &dst, ns.as_deref(), &table),
        Command::Vacuum {
            target,
            ns,
            drop_damaged,
        } => vacuum(&target, ns.as_deref(), drop_damaged),
    }
}

/// The exit code, and message, of a command stopped by Ctrl-C.
fn stopped(what: &str, done: u64) -> u8 {
    eprintln!(
        "klepto: {what} stopped by Ctrl-C after {done} entries; what was written is whole \
         (run it again to finish)"
    );
    130
}

/// Call texts compared the way `ls` shows them: without spaces, and a
/// single argument without its tuple's comma.
fn same_call(stored: &str, asked: &str) -> bool {
    let norm = |text: &str| {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        match compact.strip_suffix(",)") {
            Some(one) => format!("{one})"),
            None => compact,
        }
    };
    norm(stored) == norm(asked)
}

fn list_namespaces(target: &str, json: bool) -> Result<u8, Failure> {
    let mut out = Out::new();
    for (name, count) in namespaces(target)? {
        let line = if json {
            json!({ "namespace": name, "entries": count }).to_string()
        } else {
            let shown = if name.is_empty() { "(default)" } else { &name };
            format!("{shown}\t{count} entries")
        };
        if !out.line(line)? {
            break;
        }
    }
    out.finish()?;
    Ok(0)
}

fn list(target: &str, ns: &str, limit: Option<usize>, json: bool) -> Result<u8, Failure> {
    let archive = open(target, Some(ns), false)?;
    let at = archive.location();
    let mut out = Out::new();
    let mut damaged = 0;
    for item in archive.scan()?.take(limit.unwrap_or(usize::MAX)) {
        let (key, stored) = match item {
            Ok(entry) => entry,
            Err(e) => {
                eprintln!("damaged: {e}");
                damaged += 1;
                continue;
            }
        };
        let line = match check(&key, &stored, &at) {
            Ok(c) if json => json!({ "call": call_text(ns, c.call.as_deref()), "key": hex(&key), "size": c.size }).to_string(),
            Ok(c) => format!("{}\t{}\t{} B", call_text(ns, c.call.as_deref()), hex(&key), c.size),
            Err(reason) => {
                eprintln!("damaged {}: {reason}", hex(&key));
                damaged += 1;
                continue;
            }
        };
        if !out.line(line)? {
            break;
        }
    }
    out.finish()?;
    Ok(u8::from(damaged > 0))
}

fn get(
    target: &str,
    ns: Option<&str>,
    key: Option<&str>,
    args: Option<&str>,
) -> Result<u8, Failure> {
    let archive = open(target, ns, false)?;
    let at = archive.location();
    let (key, stored) = match (key, args) {
        (Some(key), _) => {
            let key = unhex(key).map_err(Failure::usage)?;
            let Some(stored) = archive.get(&key)? else {
                return Err(Failure::not_found(format!(
                    "{at}: no entry under key {}",
                    hex(&key)
                )));
            };
            (key, stored)
        }
        (None, Some(args)) => {
            // Found by the arguments stored with each entry.
            let found = archive.scan()?.find_map(|item| {
                let (key, stored) = item.ok()?;
                let envelope = check_envelope(&key, &stored, &at).ok()?;
                let call = describe_args(envelope.args?).ok()?;
                same_call(&call, args).then_some((key, stored))
            });
            found
                .ok_or_else(|| Failure::not_found(format!("{at}: no entry for the call {args}")))?
        }
        (None, None) => return Err(Failure::usage("give a KEY or --args".into())),
    };
    let checked = check(&key, &stored, &at)
        .map_err(|reason| Failure::not_found(format!("damaged {}: {reason}", hex(&key))))?;
    let mut out = Out::new();
    out.line(to_json(&checked.value))?;
    out.finish()?;
    Ok(0)
}

fn stat(target: &str, ns: Option<&str>, json: bool) -> Result<u8, Failure> {
    let all = namespaces(target)?;
    let archive = open(target, ns, false)?;
    let (mut entries, mut bytes, mut damaged) = (0u64, 0u64, 0u64);
    for item in archive.scan()? {
        match item {
            Ok((key, stored)) => {
                entries += 1;
                bytes += (key.len() + stored.len()) as u64;
            }
            Err(_) => damaged += 1,
        }
    }
    let times = entry_times(target, ns).map(|(oldest, newest)| {
        (
            humantime::format_rfc3339_seconds(oldest).to_string(),
            humantime::format_rfc3339_seconds(newest).to_string(),
        )
    });
    let mut out = Out::new();
    if json {
        let names: Vec<_> = all
            .iter()
            .map(|(n, c)| json!({ "namespace": n, "entries": c }))
            .collect();
        out.line(json!({
            "location": archive.location(),
            "namespace": ns.unwrap_or(""),
            "entries": entries,
            "bytes": bytes,
            "unreadable": damaged,
            "namespaces": names,
            "oldest": times.as_ref().map(|t| &t.0),
            "newest": times.as_ref().map(|t| &t.1),
        }))?;
    } else {
        out.line(format_args!("location    {}", archive.location()))?;
        out.line(format_args!("namespace   {}", ns.unwrap_or("(default)")))?;
        out.line(format_args!("entries     {entries}"))?;
        out.line(format_args!("bytes       {bytes} (keys and envelopes)"))?;
        if damaged > 0 {
            out.line(format_args!("unreadable  {damaged}"))?;
        }
        if let Some((oldest, newest)) = &times {
            out.line(format_args!("oldest      {oldest}"))?;
            out.line(format_args!("newest      {newest}"))?;
        }
        let names: Vec<_> = all
            .iter()
            .map(|(n, c)| format!("{}: {c}", if n.is_empty() { "(default)" } else { n }))
            .collect();
        out.line(format_args!("namespaces  {}", names.join(", ")))?;
    }
    out.finish()?;
    Ok(0)
}

fn verify(target: &str, ns: Option<&str>, json: bool) -> Result<u8, Failure> {
    let archive = open(target, ns, false)?;
    let at = archive.location();
    let started = Instant::now();
    let mut progress = Progress::new("verify", archive.len().ok().map(|n| n as u64));
    let mut out = Out::new();
    let (mut entries, mut damaged) = (0u64, 0u64);
    for item in archive.scan()? {
        if entries.is_multiple_of(1000) && interrupted() {
            progress.finish();
            out.finish()?;
            return Ok(stopped("verify", entries));
        }
        entries += 1;
        progress.add(1);
        let problem = match item {
            Ok((key, stored)) => check(&key, &stored, &at).err().map(|r| (hex(&key), r)),
            Err(e) => Some((String::new(), e.to_string())),
        };
        if let Some((key, reason)) = problem {
            damaged += 1;
            let line = if json {
                json!({ "key": key, "damage": reason }).to_string()
            } else {
                format!("damaged {key}: {reason}")
            };
            out.line(line)?;
        }
    }
    progress.finish();
    let summary = format!(
        "{at}: {entries} entries, {damaged} damaged ({:.2} s)",
        started.elapsed().as_secs_f64()
    );
    if json {
        out.line(json!({ "location": at, "entries": entries, "damaged": damaged }))?;
    } else {
        out.line(summary)?;
    }
    out.finish()?;
    Ok(u8::from(damaged > 0))
}

fn remove(target: &str, ns: Option<&str>, keys: &[String]) -> Result<u8, Failure> {
    let archive = open(target, ns, false)?;
    let mut missing = 0;
    for key in keys {
        let bytes = unhex(key).map_err(Failure::usage)?;
        if !archive.delete(&bytes)? {
            eprintln!("klepto: {}: no entry under key {key}", archive.location());
            missing += 1;
        }
    }
    Ok(u8::from(missing > 0))
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn export(target: &str, ns: Option<&str>, csv: bool) -> Result<u8, Failure> {
    let archive = open(target, ns, false)?;
    let at = archive.location();
    let mut progress = Progress::new("export", archive.len().ok().map(|n| n as u64));
    let mut out = Out::new();
    if csv {
        out.line("key,call,args,value")?;
    }
    let mut damaged = 0;
    for item in archive.scan()? {
        if progress.done().is_multiple_of(1000) && interrupted() {
            let done = progress.done();
            progress.finish();
            out.finish()?;
            return Ok(stopped("export", done));
        }
        progress.add(1);
        let checked = item
            .map_err(|e| e.to_string())
            .and_then(|(key, stored)| check(&key, &stored, &at).map(|c| (key, c)));
        let (key, c) = match checked {
            Ok(entry) => entry,
            Err(reason) => {
                eprintln!("klepto: damaged entry not exported: {reason}");
                damaged += 1;
                continue;
            }
        };
        let args = c.args.as_deref().map(hex);
        let line = if csv {
            let fields = [
                hex(&key),
                c.call.clone().unwrap_or_default(),
                args.unwrap_or_default(),
                to_json(&c.value).to_string(),
            ];
            fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            json!({ "key": hex(&key), "call": c.call, "args": args, "value": to_json(&c.value) })
                .to_string()
        };
        if !out.line(line)? {
            break;
        }
    }
    progress.finish();
    out.finish()?;
    Ok(u8::from(damaged > 0))
}

/// The header line of `export --csv`.
const CSV_HEADER: &str = "key,call,args,value";

/// The fields of one CSV line as `export --csv` writes them (a field with
/// a comma or a quote is quoted, its quotes doubled).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("one field at least");
        match (c, quoted) {
            ('"', false) if field.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => fields.push(String::new()),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    Ok(fields)
}

/// One line of `export` (JSON, or CSV after its header), as the raw entry
/// it describes.
fn entry_of_line(line: &str, csv: bool) -> Result<RawEntry, String> {
    let (key, args, value) = if csv {
        let fields = csv_fields(line)?;
        let [key, _call, args, value] = fields.as_slice() else {
            return Err(format!(
                "{} fields, not the 4 of {CSV_HEADER}",
                fields.len()
            ));
        };
        let value: serde_json::Value =
            serde_json::from_str(value).map_err(|e| format!("the value: {e}"))?;
        let args = (!args.is_empty()).then(|| unhex(args)).transpose()?;
        (unhex(key)?, args, value)
    } else {
        let mut doc: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let key = unhex(doc["key"].as_str().ok_or("no `key`")?)?;
        let args = match &doc["args"] {
            serde_json::Value::String(args) => Some(unhex(args)?),
            _ => None,
        };
        (key, args, doc["value"].take())
    };
    let value = rmp_serde::to_vec(&from_json(&value)).map_err(|e| e.to_string())?;
    let envelope = Envelope {
        key: Some(&key),
        args: args.as_deref(),
        value: &value,
    }
    .encode();
    Ok((key, envelope))
}

fn import(file: &str, target: &str, ns: Option<&str>) -> Result<u8, Failure> {
    let input: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let opened = std::fs::File::open(file).map_err(|e| Failure::io(format!("{file}: {e}")))?;
        Box::new(std::io::BufReader::new(opened))
    };
    let archive = open(target, ns, true)?;
    let mut batch = Vec::new();
    let mut imported = 0u64;
    let mut progress = Progress::new("import", None);
    let mut csv = false;
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| Failure::io(format!("{file}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        if n == 0 && line.trim() == CSV_HEADER {
            csv = true;
            continue;
        }
        let entry = entry_of_line(&line, csv)
            .map_err(|reason| Failure::usage(format!("{file}:{}: {reason}", n + 1)))?;
        batch.push(entry);
        if batch.len() == 1000 {
            if interrupted() {
                progress.finish();
                return Ok(stopped("import", imported));
            }
            imported += batch.len() as u64;
            progress.add(batch.len() as u64);
            archive.put_batch(std::mem::take(&mut batch))?;
        }
    }
    progress.finish();
    imported += batch.len() as u64;
    if !batch.is_empty() {
        archive.put_batch(batch)?;
    }
    eprintln!(
        "klepto: {imported} entries imported into {}",
        archive.location()
    );
    Ok(0)
}

fn convert(src: &str, dst: &str, ns: Option<&str>, batch_size: usize) -> Result<u8, Failure> {
    let from = open(src, ns, false)?;
    let to: Box<dyn Raw> = open(dst, ns, true)?;
    let at = from.location();
    let (mut copied, mut damaged) = (0u64, 0u64);
    let mut batch = Vec::with_capacity(batch_size);
    let mut progress = Progress::new("convert", from.len().ok().map(|n| n as u64));
    for item in from.scan()? {
        // Damage is reported and left behind, never copied.
        let checked = item.map_err(|e| e.to_string()).and_then(|(key, stored)| {
            check_envelope(&key, &stored, &at)?;
            Ok((key, stored))
        });
        match checked {
            Ok(entry) => batch.push(entry),
            Err(reason) => {
                eprintln!("klepto: damaged entry not copied: {reason}");
                damaged += 1;
            }
        }
        if batch.len() == batch_size {
            // Between two batches: every batch written is whole.
            if interrupted() {
                progress.finish();
                return Ok(stopped("convert", copied));
            }
            copied += batch.len() as u64;
            progress.add(batch.len() as u64);
            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            to.put_batch(full)?;
        }
    }
    copied += batch.len() as u64;
    if !batch.is_empty() {
        to.put_batch(batch)?;
    }
    let seconds = progress.seconds();
    progress.finish();
    eprintln!(
        "klepto: {copied} entries copied from {} to {} in {seconds:.2} s",
        from.location(),
        to.location(),
    );
    Ok(u8::from(damaged > 0))
}

fn vacuum(target: &str, ns: Option<&str>, drop_damaged: bool) -> Result<u8, Failure> {
    let archive = open(target, ns, false)?;
    let at = archive.location();
    let mut damaged = Vec::new();
    let mut files = Vec::new();
    let mut unreadable = 0;
    let mut progress = Progress::new("vacuum", archive.len().ok().map(|n| n as u64));
    let mut out = Out::new();
    for item in archive.scan()? {
        progress.add(1);
        match item {
            Ok((key, stored)) => {
                if let Err(reason) = check(&key, &stored, &at) {
                    out.line(format_args!("damaged {}: {reason}", hex(&key)))?;
                    damaged.push(key);
                }
            }
            Err(e) => {
                out.line(format_args!("damaged: {e}"))?;
                match entry_file(target, &e) {
                    Some(file) => files.push(file),
                    None => unreadable += 1,
                }
            }
        }
    }
    progress.finish();
    if drop_damaged {
        for key in &damaged {
            archive.delete(key)?;
        }
        // Entry files whose key cannot be read, so not removable by key.
        for file in &files {
            std::fs::remove_file(file)
                .map_err(|e| Failure::io(format!("{}: {e}", file.display())))?;
        }
        let dropped = damaged.len() + files.len();
        if dropped > 0 {
            out.line(format_args!("dropped {dropped} damaged entries"))?;
        }
    }
    let done = archive.compact()?;
    out.line(format_args!("{at}: {done}"))?;
    out.finish()?;
    let left = if drop_damaged {
        0
    } else {
        damaged.len() + files.len()
    };
    Ok(u8::from(left + unreadable > 0))
}

/// The entry file of a directory archive under `target` that `error` says
/// is damaged (a `.kle` file: FORMAT.md), if it is one.
fn entry_file(target: &str, error: &klepto::Error) -> Option<std::path::PathBuf> {
    let klepto::Error::Corrupt { location, .. } = error else {
        return None;
    };
    let file = std::path::PathBuf::from(location);
    let root = std::fs::canonicalize(target).ok()?;
    let inside = std::fs::canonicalize(&file).ok()?.starts_with(&root);
    let entry = file.extension().is_some_and(|e| e == "kle") && file.is_file();
    (inside && entry).then_some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_read_what_export_writes() {
        let fields = [r#"a"b,c"#, "plain", "", "[1,2]"];
        let line: Vec<_> = fields.iter().map(|f| csv_field(f)).collect();
        let line = line.join(",");
        assert_eq!(line, r#""a""b,c",plain,,"[1,2]""#);
        assert_eq!(csv_fields(&line).unwrap(), fields);
        assert!(csv_fields(r#""open"#).is_err());
    }
}
