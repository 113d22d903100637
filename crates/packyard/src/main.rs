//! The `packyard` command.

/// mimalloc rather than glibc's allocator: glibc keeps memory freed by one thread in that
/// thread's arena, so a publish at a million packages, whose rows are decoded on the database's
/// threads and freed on the runtime's, left about 20 MiB more resident than it used.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    packyard::cli::main()
}
