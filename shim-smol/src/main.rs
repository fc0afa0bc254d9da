fn main() -> anyhow::Result<()> {
    rookery_host::cli::main("rookery-smol", rookery_smol::serve)
}
