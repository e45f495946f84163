fn main() {
    std::process::exit(strata::cli::main(std::env::args().skip(1).collect()));
}
