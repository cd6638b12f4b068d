//! Writing to standard output for the commands and the demo: a reader that goes away
//! (`casewarden events | head`) ends the command quietly instead of panicking.

/// Standard output's reader went away (`casewarden events | head`): the command stops there,
/// and `main` ends quietly, as the reader has what it wanted.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// Writes to standard output without panicking: a closed pipe gives [`StdoutClosed`], any other
/// failure its `io::Error`.
pub fn write_out(text: std::fmt::Arguments) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        r => Ok(r?),
    }
}

/// Whether a command ended because standard output's reader went away.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<StdoutClosed>().is_some()
}

/// `print!` that returns the write's result instead of panicking on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!($($arg)*)) };
}

/// `println!` that returns the write's result instead of panicking on a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use {out, outln};
