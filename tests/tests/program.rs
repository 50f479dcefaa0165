//! The program's test suite: one module per feature under `cases/`, each test self-contained.
mod cases;
