//! `hearth-rendezvous`: Hearth's relay. See README.md for the command line, the limits and their
//! defaults, and the log format; the code is the library next to this file.

fn main() -> std::process::ExitCode {
    hearth_rendezvous::main()
}
