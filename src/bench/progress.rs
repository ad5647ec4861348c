//! Progress of the benchmark: a bar on a terminal, plain lines on stderr otherwise, so that
//! stdout carries only the figures.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Reports the phases of the benchmark.
pub struct Progress {
    terminal: bool,
}

/// One phase with a known number of steps.
pub struct Phase {
    bar: Option<ProgressBar>,
    name: &'static str,
    total: u64,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Starts phase `name` of `total` steps.
    pub fn phase(&self, name: &'static str, total: u64) -> Phase {
        let bar = self.terminal.then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} {per_sec}")
                    .expect("the progress template is valid")
                    .progress_chars("=> "),
            );
            bar.set_message(name);
            bar
        });
        if bar.is_none() {
            eprintln!("bench: {name}: {total} steps");
        }
        Phase { bar, name, total }
    }
}

impl Phase {
    /// Sets the number of steps done.
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done.min(self.total));
        }
    }

    /// Ends the phase.
    pub fn done(self) {
        match self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("bench: {}: done", self.name),
        }
    }
}
