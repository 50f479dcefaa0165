//! Process-wide behaviour the `tensorgrid` and `tensorgrid-worker` binaries share.

/// Output piped into a reader that stopped reading (`tensorgrid job list | head -3`): the
/// process exits quietly with the shell's code for it (141, 128 + SIGPIPE), as a shell tool
/// does, instead of panicking with a backtrace (`println!` panics on a broken pipe, since Rust
/// ignores SIGPIPE). Every other panic is reported as before.
pub fn exit_quietly_on_broken_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_broken_pipe(message) {
            std::process::exit(141);
        }
        report(info);
    }));
}

/// The panic of a write to stdout or stderr whose reader has gone.
fn is_broken_pipe(message: &str) -> bool {
    message.starts_with("failed printing to std") && message.contains("Broken pipe")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_broken_pipe_on_stdout_or_stderr_is_quiet() {
        assert!(super::is_broken_pipe(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!super::is_broken_pipe("index out of bounds"));
        assert!(!super::is_broken_pipe(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
    }
}
