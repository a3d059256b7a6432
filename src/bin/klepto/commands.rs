//! The commands: each reads or writes raw entries through [`Raw`].

use std::io::{BufRead, BufWriter, Write};
use std::time::Instant;

use klepto::archive::envelope::Envelope;
use klepto::archive::RawEntry;
use klepto::key::describe_args;
use serde_json::json;

use crate::dynamic::{from_json, hex, to_json, unhex};
use crate::store::{Any, Raw};
use crate::target::{namespaces, open};
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
        size: stored.len(),
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
        Command::Get { target, key, ns } => get(&target, ns.as_deref(), &key),
        Command::Stat { target, ns, json } => stat(&target, ns.as_deref(), json),
        Command::Verify { target, ns, json } => verify(&target, ns.as_deref(), json),
        Command::Rm { target, keys, ns } => remove(&target, ns.as_deref(), &keys),
        Command::Clear { target, ns } => {
            open(&target, ns.as_deref(), false)?.clear()?;
            Ok(0)
        }
        Command::Export { target, ns } => export(&target, ns.as_deref()),
        Command::Import { file, target, ns } => import(&file, &target, ns.as_deref()),
        Command::Convert {
            src,
            dst,
            ns,
            batch,
        } => convert(&src, &dst, ns.as_deref(), batch.max(1)),
    }
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

fn get(target: &str, ns: Option<&str>, key: &str) -> Result<u8, Failure> {
    let archive = open(target, ns, false)?;
    let key = unhex(key).map_err(Failure::usage)?;
    let Some(stored) = archive.get(&key)? else {
        return Err(Failure::not_found(format!(
            "{}: no entry under key {}",
            archive.location(),
            hex(&key)
        )));
    };
    let checked = check(&key, &stored, &archive.location())
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
        }))?;
    } else {
        out.line(format_args!("location    {}", archive.location()))?;
        out.line(format_args!("namespace   {}", ns.unwrap_or("(default)")))?;
        out.line(format_args!("entries     {entries}"))?;
        out.line(format_args!("bytes       {bytes} (keys and envelopes)"))?;
        if damaged > 0 {
            out.line(format_args!("unreadable  {damaged}"))?;
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
    let mut out = Out::new();
    let (mut entries, mut damaged) = (0u64, 0u64);
    for item in archive.scan()? {
        entries += 1;
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

fn export(target: &str, ns: Option<&str>) -> Result<u8, Failure> {
    let archive = open(target, ns, false)?;
    let at = archive.location();
    let mut out = Out::new();
    let mut damaged = 0;
    for item in archive.scan()? {
        let checked = item
            .map_err(|e| e.to_string())
            .and_then(|(key, stored)| check(&key, &stored, &at).map(|c| (key, c)));
        match checked {
            Ok((key, c)) => {
                let line = json!({
                    "key": hex(&key),
                    "call": c.call,
                    "args": c.args.as_deref().map(hex),
                    "value": to_json(&c.value),
                });
                if !out.line(line)? {
                    break;
                }
            }
            Err(reason) => {
                eprintln!("klepto: damaged entry not exported: {reason}");
                damaged += 1;
            }
        }
    }
    out.finish()?;
    Ok(u8::from(damaged > 0))
}

/// One line of `export`, as the raw entry it describes.
fn entry_of_line(line: &str) -> Result<RawEntry, String> {
    let doc: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let key = doc["key"].as_str().ok_or("no `key`")?;
    let key = unhex(key)?;
    let args = match &doc["args"] {
        serde_json::Value::String(args) => Some(unhex(args)?),
        _ => None,
    };
    let value = rmp_serde::to_vec(&from_json(&doc["value"])).map_err(|e| e.to_string())?;
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
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| Failure::io(format!("{file}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = entry_of_line(&line)
            .map_err(|reason| Failure::usage(format!("{file}:{}: {reason}", n + 1)))?;
        batch.push(entry);
        if batch.len() == 1000 {
            imported += batch.len() as u64;
            archive.put_batch(std::mem::take(&mut batch))?;
        }
    }
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
    let started = Instant::now();
    let (mut copied, mut damaged) = (0u64, 0u64);
    let mut batch = Vec::with_capacity(batch_size);
    let mut last_report = Instant::now();
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
            copied += batch.len() as u64;
            to.put_batch(std::mem::replace(
                &mut batch,
                Vec::with_capacity(batch_size),
            ))?;
            if last_report.elapsed().as_secs() >= 1 {
                eprintln!("klepto: {copied} entries copied");
                last_report = Instant::now();
            }
        }
    }
    copied += batch.len() as u64;
    if !batch.is_empty() {
        to.put_batch(batch)?;
    }
    eprintln!(
        "klepto: {copied} entries copied from {} to {} in {:.2} s",
        from.location(),
        to.location(),
        started.elapsed().as_secs_f64()
    );
    Ok(u8::from(damaged > 0))
}
