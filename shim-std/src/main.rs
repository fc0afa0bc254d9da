fn main() -> anyhow::Result<()> {
    rookery_host::cli::main("rookery-std", rookery_std::serve)
}
