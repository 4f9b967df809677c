//! cwnn's importer side: model packages (what `cwnn import` will write) and the commands of
//! the `cwnn` CLI that read them.

pub mod package;

pub use package::{Package, PackageError};
