//! The CPU threads a training process uses.
//!
//! Two pools compute candle's CPU ops: rayon's (matrix products, convolutions, this engine's
//! kernels) and candle's own barrier pool (element-wise ops on 64 Ki elements or more), whose
//! threads spin on a barrier after every op and which serves one caller at a time. Beside
//! rayon's threads its spinning threads take cores from the work (on two cores, a second
//! thread bought the digit CNN 3 % with it and 20 % without), and a step's parts computed side
//! by side ([`crate::parts`]) would wait on its lock in turn. So element-wise ops run on the
//! thread that asks for them, and every thread is rayon's.

/// Sets the threads training runs on (`None`: rayon's default, every core) and keeps
/// candle's element-wise ops on the calling thread (unless `CANDLE_NUM_THREADS` says
/// otherwise). Call before candle's first op: both pools read their size once.
pub fn configure(threads: Option<usize>) {
    if let Some(n) = threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}
