//! The `telespool` binary (a placeholder until the CLI lands).

fn main() {}
