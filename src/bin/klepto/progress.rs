//! Progress of long commands on standard error: a bar with rate and ETA on
//! a terminal (`indicatif`), plain lines every two seconds otherwise; and
//! Ctrl-C, which stops a command between two batches.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Set by Ctrl-C (SIGINT): commands stop at their next batch boundary.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler (a second Ctrl-C still kills at once: the
/// handler is one-shot in effect, as the command exits soon after).
pub fn catch_interrupt() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
}

/// Whether Ctrl-C was pressed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How often plain progress lines are written.
const EVERY: Duration = Duration::from_secs(2);

/// The progress of one command over `total` entries (if known).
pub struct Progress {
    what: &'static str,
    bar: Option<ProgressBar>,
    done: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub fn new(what: &'static str, total: Option<u64>) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(total) => ProgressBar::new(total),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{msg} [{bar:30}] {pos}/{len} entries, {per_sec}, ETA {eta}"
            } else {
                "{msg} {pos} entries, {per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what);
            bar
        });
        Progress {
            what,
            bar,
            done: 0,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    /// `n` more entries done.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None if self.last_line.elapsed() >= EVERY => {
                let rate = self.done as f64 / self.started.elapsed().as_secs_f64();
                eprintln!("klepto: {}: {} entries, {rate:.0}/s", self.what, self.done);
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    /// Entries done so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Seconds since the start.
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
