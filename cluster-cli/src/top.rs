//! `cluster top`: a live view of the running cluster in the terminal, refreshed every second,
//! like `htop` or `pm2 monit`. A header with the `cluster status` summary, the worst p99, the
//! workers' memory and CPU and a clock; the workers table of `cluster status`; the last
//! lifecycle events from the events stream. `q`, Esc or Ctrl-C quits.
//!
//! # Why ratatui
//!
//! The screen is drawn with `ratatui` on its crossterm backend rather than with hand-written
//! escape codes: it enters and leaves the alternate screen and raw mode together (and its
//! `try_init` installs a panic hook that restores both before the panic message is printed),
//! it follows resizes, it lays out and clips to any terminal size, and it rewrites only the
//! cells that changed since the last frame, so a refresh every second does not flicker.
//!
//! # Threads
//!
//! The status poll and the events stream run on a tokio runtime of a thread of their own
//! ([`feed`]), and the terminal's keys are read on another ([`read_keys`]); the main thread
//! draws and waits for a key with a short timeout, so a slow or hung primary never keeps `q`
//! from working, and a terminal that has gone never keeps `top` from ending.
//!
//! # Exit codes and order of checks
//!
//! First whether a cluster runs (exit 1, "no cluster is running ..."), then whether stdout is
//! a terminal (exit 2: `top` does not fall back to printing the table every second, since
//! `cluster status` and `cluster status --json` already serve scripts and a pipe has no way
//! to quit), then the first status is fetched before the screen changes, so that a cluster
//! that does not answer is reported on the normal screen. 0 when quit with a key or a signal
//! (SIGTERM, SIGINT, SIGHUP: the terminal is restored first); 1 when the cluster stops while
//! `top` runs ("the cluster stopped"), always after the terminal is restored.

mod feed;
mod view;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, SystemTime};

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::client::Client;
use crate::target::Target;
use feed::Update;
use view::{End, View};

/// Longest the screen loop waits for a key before it looks at the feed and the clock again.
const KEY_WAIT: Duration = Duration::from_millis(100);

/// `cluster top`.
pub(crate) fn run(target: &Target) -> ExitCode {
    if let Err(e) = Client::of(&target.runtime) {
        eprintln!("cluster: {e}");
        return ExitCode::FAILURE;
    }
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "cluster: `cluster top` draws on a terminal and stdout is not one; use `cluster status` (or `cluster status --json`) in scripts"
        );
        return ExitCode::from(2);
    }
    let updates = match feed::start(target.runtime.clone()) {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("cluster: cannot start the status poll: {e}");
            return ExitCode::FAILURE;
        }
    };
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut view = View::new(target.runtime.dir.display().to_string(), color);
    // The first answer comes before the screen changes: a cluster that has just stopped is
    // reported on the normal screen (Ctrl-C, a SIGINT until then, ends `top` as usual).
    let first = match updates.recv() {
        Ok(update) => update,
        Err(_) => {
            eprintln!("cluster: the status poll stopped");
            return ExitCode::FAILURE;
        }
    };
    match view.apply(first, SystemTime::now()) {
        Some(End::Stopped(why)) => {
            eprintln!("cluster: {why}");
            return ExitCode::FAILURE;
        }
        Some(End::Terminated) => return ExitCode::SUCCESS,
        None => {}
    }
    let ended = match Screen::enter() {
        Ok(mut screen) => screen.run(&mut view, &updates),
        Err(e) => Err(e),
    };
    // The screen is restored here (dropped at the end of the match above), before any message.
    match ended {
        Ok(None | Some(End::Terminated)) => ExitCode::SUCCESS,
        Ok(Some(End::Stopped(why))) => {
            eprintln!("cluster: {why}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cluster: top: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The terminal in raw mode on the alternate screen, for as long as this lives: dropping it
/// restores the terminal, on every way out of [`run`]; a panic restores it through the hook
/// `ratatui::try_init` installs.
struct Screen {
    terminal: DefaultTerminal,
}

impl Screen {
    fn enter() -> std::io::Result<Screen> {
        match ratatui::try_init() {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                // Raw mode may be on already: undo what was done.
                ratatui::restore();
                Err(e)
            }
        }
    }

    /// Draws and reads keys until a quit key (`None`) or the feed ends `top`.
    fn run(&mut self, view: &mut View, updates: &Receiver<Update>) -> std::io::Result<Option<End>> {
        let keys = read_keys()?;
        let mut dirty = true;
        let mut shown = None;
        loop {
            loop {
                match updates.try_recv() {
                    Ok(update) => {
                        if let Some(end) = view.apply(update, SystemTime::now()) {
                            return Ok(Some(end));
                        }
                        dirty = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        return Err(std::io::Error::other("the status poll stopped"));
                    }
                }
            }
            // Redraw on news, and every second for the clock. Once the terminal has gone
            // (its window closed without a SIGHUP reaching `top`), the write fails here.
            let now = SystemTime::now();
            let second = view::clock(now);
            if dirty || shown.as_ref() != Some(&second) {
                self.terminal.draw(|frame| view.draw(frame, now))?;
                dirty = false;
                shown = Some(second);
            }
            match keys.recv_timeout(KEY_WAIT) {
                Ok(Event::Key(key)) if quits(&key) => return Ok(None),
                Ok(Event::Resize(..)) => dirty = true,
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(std::io::Error::other("the terminal's input ended"));
                }
            }
        }
    }
}

/// Reads the terminal's events on a thread of its own, for as long as the process lives.
///
/// # Caveats
///
/// Not on the drawing thread: once the terminal is gone, crossterm 0.29 retries the read
/// forever inside `event::poll`, whatever its timeout (crossterm-rs/crossterm#793), and the
/// screen loop must still get to its SIGHUP and its failing writes, restore and exit.
fn read_keys() -> std::io::Result<Receiver<Event>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new().name("top-keys".into()).spawn(move || {
        while let Ok(event) = event::read() {
            if tx.send(event).is_err() {
                return;
            }
        }
    })?;
    Ok(rx)
}

impl Drop for Screen {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// `q`, Esc or Ctrl-C (in raw mode Ctrl-C comes as a key, not as SIGINT).
fn quits(key: &KeyEvent) -> bool {
    if key.kind == KeyEventKind::Release {
        return false;
    }
    match key.code {
        KeyCode::Char('q') | KeyCode::Esc => true,
        KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
        _ => false,
    }
}
