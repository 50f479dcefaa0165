//! The CPU threads a training process uses.
//!
//! Two pools compute candle's CPU ops: rayon's (matrix products, convolutions, this engine's
//! kernels) and candle's own barrier pool (element-wise ops on 64 Ki elements or more), whose
//! threads spin on a barrier after every op and which serves one caller at a time. Beside
//! rayon's threads its spinning threads take cores from the work (on two cores, a second
//! thread bought the digit CNN 3 % with it and 20 % without), and a step's parts computed side
//! by side ([`crate::parts`]) would wait on its lock in turn. So element-wise ops run on the
//! thread that asks for them, and every thread is rayon's.

/// Stack of each of rayon's threads: training steps run on them ([`crate::trainer`]), and
/// candle's backward pass walks the graph recursively; the main thread's 8 MiB, not rayon's
/// default 2 MiB.
const STACK_BYTES: usize = 8 << 20;

/// Sets the threads training runs on (`None`: `RAYON_NUM_THREADS`, else every logical core)
/// and keeps candle's element-wise ops on the calling thread (unless `CANDLE_NUM_THREADS` says
/// otherwise). Call before candle's or rayon's first use: rayon's pool and candle's barrier
/// pool are sized once (candle reads `RAYON_NUM_THREADS` again at every matrix product, for
/// how many pieces to cut it in).
pub fn configure(threads: Option<usize>) {
    if let Some(n) = threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    // Fails only when the pool already exists (a second call): it keeps its threads.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(STACK_BYTES)
        .build_global();
}
