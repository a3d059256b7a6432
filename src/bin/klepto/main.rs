//! `klepto`: look into, check, export, convert and clean archives of
//! klepto-cache (feature `cli`, on by default).
//!
//! Exit codes: 0 done; 1 damage found, or a key or namespace not found;
//! 2 bad usage (arguments, an unsupported target); 3 an I/O or server
//! error; 130 stopped by Ctrl-C.

mod commands;
mod dynamic;
mod progress;
mod python;
mod store;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Look into, check, export, convert and clean klepto-cache archives.
///
/// A TARGET is a path: `.db`/`.sqlite` (SQLite), `.msgpack`/`.json` (a file
/// archive), a directory (a directory archive); with the `hdf5` feature,
/// `.h5` (an HDF5 file) or a directory of `.h5` files (a new one named
/// `*.h5d`); or a URL: `sqlite://`, `postgres://`, `redis://` (with the
/// crate's features). `--ns` picks a
/// memo's namespace (its `.name(..)`): an SQL table, a file archive beside
/// the file, a subdirectory, a Redis namespace.
///
/// Exit codes: 0 done; 1 damage found, or a key or namespace not found;
/// 2 bad usage; 3 an I/O or server error; 130 stopped by Ctrl-C (between
/// two batches: what was written is whole).
#[derive(Parser, Debug)]
#[command(name = "klepto", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the entries: the call, the key (hexadecimal MessagePack), the
    /// value's size (its MessagePack bytes). Without --ns, lists the namespaces and their counts.
    ///
    /// Example: `klepto ls cache.db --ns fib --limit 10`
    Ls {
        target: String,
        /// The namespace (table, file, subdirectory) to list.
        #[arg(long)]
        ns: Option<String>,
        /// At most this many entries.
        #[arg(long)]
        limit: Option<usize>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print one entry's value as JSON.
    ///
    /// Example: `klepto get cache.db --ns fib 92a3666962`
    ///
    /// Example: `klepto get cache.db --ns fib --args '(10)'`
    Get {
        target: String,
        /// The key, in hexadecimal, as `klepto ls` shows it.
        #[arg(required_unless_present = "args")]
        key: Option<String>,
        /// The call's arguments as `klepto ls` shows them, instead of the
        /// key: `(10)`, `(1, 2.5)`, `("a", [1, 2])`.
        #[arg(long, conflicts_with = "key")]
        args: Option<String>,
        #[arg(long)]
        ns: Option<String>,
    },
    /// Entries, bytes and namespaces of a target.
    ///
    /// Example: `klepto stat cache.db --json`
    Stat {
        target: String,
        #[arg(long)]
        ns: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Decode every entry and check every checksum: exit 0 when all are
    /// sound, 1 with each damaged key listed.
    ///
    /// Example: `klepto verify results/`
    Verify {
        target: String,
        #[arg(long)]
        ns: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove entries by key.
    ///
    /// Example: `klepto rm cache.db --ns fib 92a3666962 92a3666963`
    Rm {
        target: String,
        /// Keys in hexadecimal, as `klepto ls` shows them.
        #[arg(required = true)]
        keys: Vec<String>,
        #[arg(long)]
        ns: Option<String>,
    },
    /// Remove every entry of a namespace.
    ///
    /// Example: `klepto clear cache.db --ns fib`
    Clear {
        target: String,
        #[arg(long)]
        ns: Option<String>,
    },
    /// Write every entry as JSON lines (or CSV): key (hex), call, args
    /// (hex), value as JSON.
    ///
    /// Example: `klepto export cache.db --ns fib > fib.jsonl`
    Export {
        target: String,
        #[arg(long)]
        ns: Option<String>,
        /// CSV with a header line instead of JSON lines.
        #[arg(long)]
        csv: bool,
    },
    /// Read what `export` wrote (JSON lines, or CSV with its header line)
    /// into an archive (created if missing), in batches of one transaction
    /// each.
    ///
    /// Example: `klepto import fib.jsonl cache.db --ns fib`
    Import {
        /// The JSON lines or CSV file (`-`: standard input).
        file: String,
        target: String,
        #[arg(long)]
        ns: Option<String>,
    },
    /// Copy every entry of SRC into DST (any kinds), streaming, in batches
    /// of one transaction each. Run again after an interruption: entries
    /// are keyed, so nothing is duplicated.
    ///
    /// Example: `klepto convert cache.db results/ --ns fib`
    Convert {
        src: String,
        dst: String,
        /// The namespace read from SRC and written in DST.
        #[arg(long)]
        ns: Option<String>,
        /// Entries per batch.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// Read an archive written by Python klepto 0.2.x (a file_archive's
    /// pickle file, a dir_archive's directory, or an SQLite file with a
    /// sqltable_archive) into DST, as entries keyed by Python's `str(key)`.
    /// Values that are not plain data (pickled classes) are listed and
    /// not imported (exit 1).
    ///
    /// Example: `klepto import-python results.pkl cache.db --ns results`
    ImportPython {
        /// The Python klepto archive.
        path: String,
        dst: String,
        /// The namespace written in DST.
        #[arg(long)]
        ns: Option<String>,
        /// The table of a sqltable_archive.
        #[arg(long, default_value = "memo")]
        table: String,
    },
    /// Give back space: SQLite `VACUUM`, a file archive's log folded into
    /// one snapshot; with --drop-damaged, remove damaged entries first.
    ///
    /// Example: `klepto vacuum cache.db --ns fib --drop-damaged`
    Vacuum {
        target: String,
        #[arg(long)]
        ns: Option<String>,
        /// Remove the entries that fail their checks (listed).
        #[arg(long)]
        drop_damaged: bool,
    },
}

/// Why a command failed: its message and exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn not_found(message: String) -> Failure {
        Failure { code: 1, message }
    }
    pub fn usage(message: String) -> Failure {
        Failure { code: 2, message }
    }
    pub fn io(message: String) -> Failure {
        Failure { code: 3, message }
    }
}

impl From<klepto::Error> for Failure {
    fn from(e: klepto::Error) -> Failure {
        let code = match &e {
            klepto::Error::Corrupt { .. } => 1,
            klepto::Error::Config { .. } => 2,
            _ => 3,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    progress::catch_interrupt();
    match commands::run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("klepto: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
