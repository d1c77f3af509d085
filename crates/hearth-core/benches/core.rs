//! `cargo bench -p hearth-core`: prints the core's figures as one JSON object; `cargo xtask
//! bench` collects it with the wasm run.

fn main() {
    match hearth_core::testing::run_core_bench(20_000, 7) {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => fail(&error.to_string()),
        },
        Err(error) => fail(&error.to_string()),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("benchmark failed: {message}");
    std::process::exit(1)
}
