//! Progress on a terminal: a line per stream with records, bytes and rate,
//! drawn on stderr by indicatif. Nothing is drawn when stderr is not a
//! terminal, with `--quiet`, or with NO_COLOR... only colour is dropped then.

use crate::api::StreamProgress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

/// Whether progress should be drawn at all.
pub fn enabled(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Draws one line per stream of a running sync.
pub struct SyncProgress {
    multi: MultiProgress,
    bars: Mutex<Vec<ProgressBar>>,
}

impl SyncProgress {
    pub fn new(draw: bool) -> Self {
        let multi = MultiProgress::with_draw_target(if draw {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        });
        SyncProgress {
            multi,
            bars: Mutex::new(Vec::new()),
        }
    }

    /// Prints a line above the bars (or plainly when none are drawn).
    pub fn println(&self, line: &str) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    pub fn finish(&self) {
        for b in self.bars.lock().expect("bars lock").iter() {
            b.finish();
        }
        let _ = self.multi.clear();
    }
}

fn style(estimate: bool) -> ProgressStyle {
    let stream = if colour() {
        "{prefix:.bold}"
    } else {
        "{prefix}"
    };
    let template = if estimate {
        format!("{stream} [{{bar:24}}] {{msg}}")
    } else {
        format!("{stream} {{spinner}} {{msg}}")
    };
    ProgressStyle::with_template(&template)
        .expect("progress template")
        .progress_chars("=> ")
}

impl SyncProgress {
    /// Draws the streams' counts, `elapsed` into the sync.
    pub fn progress(&self, streams: &[StreamProgress], elapsed: Duration) {
        if self.multi.is_hidden() {
            return;
        }
        let mut bars = self.bars.lock().expect("bars lock");
        let width = streams.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for (i, s) in streams.iter().enumerate() {
            if bars.len() <= i {
                let bar = self.multi.add(ProgressBar::new(0));
                bar.set_style(style(false));
                bars.push(bar);
            }
            let bar = &bars[i];
            if let Some(est) = s.estimate {
                if bar.length() != Some(est.max(s.records)) {
                    bar.set_style(style(true));
                    bar.set_length(est.max(s.records));
                }
            }
            bar.set_position(s.records);
            bar.set_prefix(format!("{:width$}", s.name));
            let secs = elapsed.as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{} records  {}  {}/s  {}",
                super::output::thousands(s.records),
                super::output::bytes(s.bytes),
                super::output::thousands((s.records as f64 / secs) as u64),
                s.status.as_deref().unwrap_or(""),
            ));
            bar.tick();
        }
    }
}

/// A spinner for install steps (pip, image pulls).
pub struct StepSpinner {
    bar: ProgressBar,
    quiet: bool,
}

impl StepSpinner {
    pub fn new(quiet: bool) -> Self {
        let bar = if enabled(quiet) {
            let b = ProgressBar::new_spinner();
            b.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            ProgressBar::hidden()
        };
        StepSpinner { bar, quiet }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl StepSpinner {
    /// Shows what a long operation is doing now.
    pub fn step(&self, message: &str) {
        if self.bar.is_hidden() {
            // Without a terminal, say only the milestones, not pip's chatter
            // or a pull's byte counts.
            if !self.quiet
                && (message.starts_with("Installing ")
                    || message.starts_with("Installed ")
                    || message.starts_with("Creating ")
                    || message.starts_with("Finding ")
                    || message.starts_with("Pulling ")
                    || message.starts_with("Pulled "))
            {
                eprintln!("{message}");
            }
        } else {
            let line: String = message.chars().take(100).collect();
            self.bar.set_message(line);
        }
    }
}
