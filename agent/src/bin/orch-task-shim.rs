//! The per-task supervisor as a binary of its own, so this crate's tests
//! run the real shim. Production runs the same code as `orch shim SPEC`.

fn main() {
    std::process::exit(orch_agent::shim_main(std::env::args_os().skip(1).collect()));
}
