mod reader;

pub use reader::*;
